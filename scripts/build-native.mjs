#!/usr/bin/env node
/**
 * Builds the DTLS addon (dtls/binding.gyp) with node-gyp, against the headers the running Node ships
 * (<prefix>/include/node, OpenSSL's included): nothing is downloaded. `npm ci` runs it (the "install"
 * script); `npm run build:native` runs it again. Needs make and a C compiler.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = resolve(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : process.env.npm_config_nodedir;
if (!nodedir || !existsSync(join(nodedir, 'include', 'node', 'openssl', 'ssl.h'))) {
  console.error(`henge: cannot build the DTLS addon: Node's headers (include/node, with openssl/) are not under ${prefix}; set npm_config_nodedir`);
  process.exit(1);
}

function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally: npm's own copy above
  }
  return candidates.find((c) => c && existsSync(c));
}

const gyp = findNodeGyp();
if (!gyp) {
  console.error('henge: cannot build the DTLS addon: node-gyp not found (it comes with npm)');
  process.exit(1);
}
console.error(`henge: building the DTLS addon (node-gyp, headers from ${nodedir})`);
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--loglevel=warn', `--nodedir=${nodedir}`, '--directory', join(root, 'dtls')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  console.error('henge: the DTLS addon did not build; see the compiler output above');
  process.exit(r.status ?? 1);
}
console.error('henge: DTLS addon built: dtls/build/Release/henge_dtls.node');

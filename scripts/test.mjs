#!/usr/bin/env node
// `npm test`: type-check, then every *.test.ts beside the code, with node's test runner.
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=observe`, or a list of files and folders.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['node_modules', '.git', '.henge', 'scratch', 'build']);

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const args = process.argv.slice(2);
// A folder argument stands for every *.test.ts under it (e.g. `npm run test:faults` is test/faults).
const isDir = (a) => !a.startsWith('-') && statSync(join(root, a), { throwIfNoEntry: false })?.isDirectory() === true;
const files = args.flatMap((a) => (a.endsWith('.ts') ? [a] : isDir(a) ? findTests(join(root, a)).sort() : []));
const flags = args.filter((a) => !a.endsWith('.ts') && !isDir(a));
const tests = files.length > 0 ? files : findTests(root).sort();

if (!process.env.HENGE_SKIP_TYPECHECK) {
  console.log('> tsc --noEmit');
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) {
    console.error('type-check failed');
    process.exit(tsc.status ?? 1);
  }
}

// The fault scenarios (test/faults) hold timing bounds and load the machine: they run after the rest,
// one file at a time, with a longer per-file limit; everything else runs two at a time.
const FAULTS = `test${sep}faults${sep}`;
const passes = [
  { name: 'tests', files: tests.filter((f) => !f.startsWith(FAULTS)), concurrency: 2, timeoutMs: 120_000 },
  { name: 'fault scenarios', files: tests.filter((f) => f.startsWith(FAULTS)), concurrency: 1, timeoutMs: 300_000 },
];
let status = 0;
for (const pass of passes) {
  if (pass.files.length === 0) continue;
  console.log(`> node --test: ${pass.name} (${pass.files.length} files, ${pass.concurrency} at a time)`);
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${pass.concurrency}`, `--test-timeout=${pass.timeoutMs}`, ...flags, ...pass.files],
    { cwd: root, stdio: 'inherit' },
  );
  if (run.status !== 0) status = run.status ?? 1;
}
process.exit(status);

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FormatError } from './errors.ts';
import { envName, formatFromPath, readBack, render, shellQuote } from './formats.ts';

test('the format follows the file extension, else JSON', () => {
  assert.equal(formatFromPath('/etc/app/config.json'), 'json');
  assert.equal(formatFromPath('/etc/app/config.YAML'), 'yaml');
  assert.equal(formatFromPath('config.yml'), 'yaml');
  assert.equal(formatFromPath('/srv/app.env'), 'env');
  assert.equal(formatFromPath('/srv/.env'), 'env');
  assert.equal(formatFromPath('/srv/config'), 'json');
  assert.equal(formatFromPath('/srv/config.toml'), 'json');
});

const values = { zeta: 'last', alpha: 1, 'max-temp': 21.5, on: true, text: "it's $HOME `x` \\ \"q\"\nline2", empty: '' };

test('JSON: sorted keys, types kept, reads back to the same values', () => {
  const text = render('json', values);
  assert.ok(text.endsWith('\n'));
  assert.deepEqual(Object.keys(JSON.parse(text) as object), ['alpha', 'empty', 'max-temp', 'on', 'text', 'zeta']);
  assert.deepEqual(readBack('json', text), values);
  assert.equal(render('json', { b: 1, a: 2 }), render('json', { a: 2, b: 1 }), 'deterministic');
});

test('YAML: types kept, strings that look like other types stay strings', () => {
  const tricky = { ...values, t: 'true', n: 'null', num: '1e3', hash: '# not a comment', colon: 'a: b', trailing: 'x\n\n' };
  const text = render('yaml', tricky);
  assert.deepEqual(parseYaml(text), tricky);
  assert.deepEqual(readBack('yaml', text), tricky);
  assert.equal(render('yaml', {}), '{}\n');
  assert.deepEqual(readBack('yaml', render('yaml', {})), {});
});

test('env: upper-case names, every value single-quoted, and a shell reads back exactly the values', () => {
  const text = render('env', values);
  assert.equal(text.split('\n')[0], "ALPHA='1'");
  assert.ok(text.includes("MAX_TEMP='21.5'\n"));
  assert.ok(text.includes("ON='true'\n"));
  assert.ok(text.includes("EMPTY=''\n"));
  assert.equal(readBack('env', text), undefined, 'env keeps neither names nor types: bytes are compared instead');
  // The shell is the judge of "shell-safe".
  const dir = mkdtempSync(join(tmpdir(), 'henge-env-'));
  try {
    const file = join(dir, 'app.env');
    writeFileSync(file, text);
    const script = `set -e; . "$1"; printf '%s\\0' "$ALPHA" "$MAX_TEMP" "$ON" "$TEXT" "$EMPTY" "$ZETA"`;
    const printed = execFileSync('/bin/sh', ['-c', script, 'sh', file]).toString().split('\0').slice(0, -1);
    assert.deepEqual(printed, ['1', '21.5', 'true', values.text, '', 'last']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('env: names that collide or cannot be variables are a FormatError', () => {
  assert.throws(() => render('env', { mode: 'a', MODE: 'b' }), (e: unknown) => e instanceof FormatError && e.code === 'HENGE_E_FORMAT' && /MODE/.test(e.message));
  assert.throws(() => render('env', { 'a-b': 1, a_b: 2 }), FormatError);
  assert.throws(() => render('env', { k: 'nul\0' }), FormatError);
  assert.equal(envName('max-temp'), 'MAX_TEMP');
  assert.equal(shellQuote("a'b"), `'a'\\''b'`);
});

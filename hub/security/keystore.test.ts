import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keystore } from './keystore.ts';

async function withKeystore(fn: (dir: string, ks: Keystore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'henge-keystore-'));
  const ks = await Keystore.open(dir);
  try {
    await fn(dir, ks);
  } finally {
    await ks.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

test('keystore - a rotation with a grace period keeps both keys, the old one tried first, across a restart', async () => {
  await withKeystore(async (dir, ks) => {
    const first = await ks.issue('dev-1');
    const second = await ks.issue('dev-1', 60_000);
    assert.equal(second.previous?.keyId, first.keyId);
    assert.equal(ks.choose('dev-1')?.key.toString(), first.key);
    assert.equal(ks.choose('dev-1', false)?.key.toString(), second.key);
    await ks.close();
    const again = await Keystore.open(dir);
    try {
      assert.equal(again.choose('dev-1')?.key.toString(), first.key);
      assert.equal(again.choose('dev-1', true, Date.now() + 60_001)?.key.toString(), second.key, 'past the grace period only the new key');
    } finally {
      await again.close();
    }
  });
});

test('keystore - key changes run in order: retiring the old key never overwrites a newer key on disk', async () => {
  await withKeystore(async (dir, ks) => {
    await ks.issue('dev-2');
    await ks.issue('dev-2', 60_000);
    const retired: string[] = [];
    ks.onKeyRetired = (_d, keyId) => retired.push(keyId);
    // Both at once: an admin issues yet another key while the device proves the last one.
    const [third] = await Promise.all([ks.issue('dev-2'), ks.proved('dev-2')]);
    assert.equal(ks.choose('dev-2')?.key.toString(), third.key);
    await ks.close();
    const again = await Keystore.open(dir);
    try {
      assert.equal(again.choose('dev-2')?.key.toString(), third.key, 'the newest key is the one on disk');
      assert.equal(again.inGrace('dev-2'), false);
    } finally {
      await again.close();
    }
    assert.equal(retired.length, 1);
  });
});

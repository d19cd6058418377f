/** The hub never leaves its admins locked out: with no valid admin token left, the next start makes one. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventType } from './domain/index.ts';
import { startHub } from './hub.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('tokens - a start with no valid admin token left makes a new one and shows it; otherwise none', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'henge-lockout-'));
  dirs.push(dir);
  const first = await startHub({ data: dir, port: 0 });
  assert.match(first.firstToken ?? '', /^hgt_/);
  const id = /^hgt_([0-9a-f]{16})_/.exec(first.firstToken ?? '')?.[1] ?? '';
  await first.close();
  const again = await startHub({ data: dir, port: 0 });
  assert.equal(again.firstToken, null, 'a valid admin token exists: nothing new');
  // The admin token runs out (as if a year had passed): revoked here, the same for the start.
  await again.core.commit({ actor: 'test' }, [{ type: EventType.TokenRevoked, data: { token: id } }]);
  await again.close();
  const third = await startHub({ data: dir, port: 0 });
  try {
    assert.match(third.firstToken ?? '', /^hgt_/, 'a new admin token, shown once');
    const r = await fetch(`${third.url}/devices`, { headers: { authorization: `Bearer ${third.firstToken ?? ''}` } });
    assert.equal(r.status, 200);
  } finally {
    await third.close();
  }
});

/**
 * The in-process harness for the REST API tests (hub/api/api-*.test.ts): one hub on loopback in a temp
 * folder per test file, a `call()` that speaks JSON with the admin token, and checks for error bodies.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../../hub/hub.ts';
import type { RunningHub } from '../../hub/hub.ts';
import type { ErrorDetails } from '../../hub/errors.ts';

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details: ErrorDetails;
}
export interface Res<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}
export interface CallOptions {
  /** The bearer token; the admin token when left out, no authorization header when null. */
  readonly token?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** A body sent as is instead of the JSON of `body`. */
  readonly raw?: string;
  readonly contentType?: string;
}

export interface ApiHarness {
  /** Sends a request to the hub; a JSON reply is parsed, any other reply is returned as text. */
  call<T = unknown>(method: string, path: string, body?: unknown, opts?: CallOptions): Promise<Res<T>>;
  /** Checks that `res` is the error `status`/`code` with the shape {code, message, details}, and returns it. */
  expectError(res: Res<unknown>, status: number, code: string): ErrorBody;
  /** The [field, rule] pairs of a validation error's violations. */
  fieldsOf(e: ErrorBody): Array<[string, string]>;
  /** The running hub (only inside tests, after the `before` hook). */
  readonly hub: RunningHub;
  /** The token `call()` uses by default: the hub's first-run token until a test sets another one. */
  adminToken: string;
  /** The hub's temp data folder. */
  readonly dir: string;
}

/**
 * Registers top-level `before`/`after` hooks that start a hub in a fresh temp folder named `prefix…` and
 * remove both afterwards. Call it once, at the top level of a test file. Fixtures that need the hub are
 * best built lazily on first use rather than in a further `before` hook.
 */
export function useApiHub(prefix: string): ApiHarness {
  let hub: RunningHub | undefined;
  let dir = '';
  let adminToken = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    hub = await startHub({ data: dir, port: 0 });
    assert.ok(hub.firstToken);
    adminToken = hub.firstToken;
  });

  after(async () => {
    await hub?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function call<T = unknown>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Res<T>> {
    assert.ok(hub, 'the hub is running');
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? adminToken : opts.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    const payload = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const r = await fetch(hub.url + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await r.text();
    const json = (r.headers.get('content-type') ?? '').includes('application/json') && text !== '';
    return { status: r.status, body: (json ? JSON.parse(text) : text) as T, headers: r.headers };
  }

  function expectError(res: Res<unknown>, status: number, code: string): ErrorBody {
    assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
    const b = res.body as ErrorBody;
    assert.deepEqual(Object.keys(b).sort(), ['code', 'details', 'message'], 'errors are {code, message, details}');
    assert.equal(b.code, code);
    assert.ok(typeof b.message === 'string' && b.message.length > 0, 'the error has a message');
    assert.ok(typeof b.details === 'object' && b.details !== null, 'the error has details');
    return b;
  }

  const fieldsOf = (e: ErrorBody): Array<[string, string]> => (e.details.violations ?? []).map((v) => [v.field, v.rule]);

  return {
    call,
    expectError,
    fieldsOf,
    get hub(): RunningHub {
      assert.ok(hub, 'the hub is running');
      return hub;
    },
    get adminToken(): string {
      return adminToken;
    },
    set adminToken(token: string) {
      adminToken = token;
    },
    get dir(): string {
      return dir;
    },
  };
}

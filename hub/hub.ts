/**
 * A running hub: store + domain + REST API. `henge hub` and the tests start it through `startHub`.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { createApi } from './api/server.ts';
import { createMetrics } from './api/metrics.ts';
import { DEFAULT_KEEPALIVE_S, DeviceRuntime, HubCore, createToken, recordKeyIssued } from './domain/index.ts';
import { FIRST_TOKEN_DAYS } from './domain/tokens.ts';
import { CoapEndpoint } from './coap/endpoint.ts';
import { DtlsTransport } from './coap/dtls-transport.ts';
import { UdpTransport, WANTED_RECEIVE_BUFFER } from './coap/udp-transport.ts';
import { Keystore } from './security/keystore.ts';
import { Enrollments } from './security/enrollment.ts';
import { ENROLL_IDENTITY_PREFIX } from '../protocol/enroll.ts';
import { LevelStore } from './store/level-store.ts';

import { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR } from './defaults.ts';

export { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR };

export interface HubOptions {
  readonly data?: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly logger?: FastifyBaseLogger;
  /** The plain CoAP device endpoint (`--insecure`); off unless given. Port 0 picks a free one. */
  readonly coap?: {
    readonly port: number;
    readonly host?: string;
    readonly keepaliveS?: number;
    /** Advertise the endpoint over mDNS/DNS-SD (docs/protocol.md, "Discovery"). Off unless asked. */
    readonly advertise?: boolean;
  };
  /**
   * The secure device endpoint: CoAP over DTLS 1.2 with per-device pre-shared keys (docs/security.md).
   * Opens the keystore of the data folder; adding a device then issues its key. Off unless given.
   */
  readonly coaps?: {
    readonly port: number;
    readonly host?: string;
    /** A handshake not done after this long is dropped (default 20 s). */
    readonly handshakeMs?: number;
    /** A session without traffic for this long is closed (default 10 min). */
    readonly idleMs?: number;
    /** Advertise it over mDNS/DNS-SD as `_coaps._udp`. Off unless asked. */
    readonly advertise?: boolean;
    readonly keepaliveS?: number;
  };
}

export interface RunningHub {
  readonly core: HubCore;
  readonly app: FastifyInstance;
  readonly url: string;
  readonly dataDir: string;
  /** The admin token made on first start; shown once, stored only as a hash. */
  readonly firstToken: string | null;
  readonly startupMs: number;
  /** The CoAP endpoint, when started. */
  readonly coap: CoapEndpoint | null;
  readonly coapPort: number | null;
  /** The coaps endpoint and its DTLS transport, when started. */
  readonly coaps: CoapEndpoint | null;
  readonly dtls: DtlsTransport | null;
  readonly coapsPort: number | null;
  readonly keystore: Keystore | null;
  readonly enrollments: Enrollments | null;
  readonly runtime: DeviceRuntime;
  /** The hub is advertised over mDNS. */
  readonly advertised: boolean;
  close(): Promise<void>;
}

export async function startHub(opts: HubOptions = {}): Promise<RunningHub> {
  const t0 = performance.now();
  const dataDir = resolve(opts.data ?? DEFAULT_DATA_DIR);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const log = opts.logger;
  const core = await HubCore.open(new LevelStore(resolve(dataDir, 'store')), {
    ...metrics.observer,
    commandFailed(err) {
      metrics.observer.commandFailed?.(err);
      log?.error({ err }, 'a write failed; the command was refused and nothing of it was kept');
    },
    reloaded(err) {
      metrics.observer.reloaded?.(err);
      log?.warn({ err }, 'views reloaded from the store after a failed write');
    },
  });
  metrics.bind(core);
  const runtime = new DeviceRuntime(opts.coap?.keepaliveS ?? opts.coaps?.keepaliveS ?? DEFAULT_KEEPALIVE_S);
  // Before the endpoints subscribe: a notification's device already has its commit time when it acks.
  const unfollow = runtime.follow(core);
  let coap: CoapEndpoint | null = null;
  if (opts.coap) {
    const transport = await UdpTransport.open({
      port: opts.coap.port,
      ...(opts.coap.host ? { host: opts.coap.host } : {}),
      onError: (err) => log?.warn({ err }, 'CoAP socket error'),
    }).catch(async (err: unknown) => {
      await core.close();
      throw err;
    });
    if (transport.receiveBufferBytes < WANTED_RECEIVE_BUFFER) {
      log?.warn(
        { granted: transport.receiveBufferBytes, wanted: WANTED_RECEIVE_BUFFER },
        'the kernel granted a smaller UDP receive buffer than asked (net.core.rmem_max); notifications are paced to fit it',
      );
    }
    coap = new CoapEndpoint(transport, core, runtime, { keepaliveS: runtime.keepaliveS, ...(log ? { log } : {}) });
    metrics.bindCoap(coap);
  }
  let keystore: Keystore | null = null;
  let enrollments: Enrollments | null = null;
  let dtls: DtlsTransport | null = null;
  let coaps: CoapEndpoint | null = null;
  const closeDevices = async (): Promise<void> => {
    await coaps?.close();
    await coap?.close();
    await keystore?.close();
  };
  if (opts.coaps) {
    try {
      const ks = (keystore = await Keystore.open(dataDir));
      const en = (enrollments = await Enrollments.load(ks));
      dtls = await DtlsTransport.open({
        port: opts.coaps.port,
        ...(opts.coaps.host ? { host: opts.coaps.host } : {}),
        // A removed device's key is gone from the keystore too; its identity then fails the handshake.
        pskLookup: (identity) => en.pskFor(identity) ?? (core.state.devices.has(identity) ? ks.pskFor(identity) : null),
        ...(opts.coaps.handshakeMs !== undefined ? { handshakeMs: opts.coaps.handshakeMs } : {}),
        ...(opts.coaps.idleMs !== undefined ? { idleMs: opts.coaps.idleMs } : {}),
        onError: (err) => log?.warn({ err }, 'coaps socket error'),
        ...(log ? { log } : {}),
      });
    } catch (err) {
      await closeDevices();
      await core.close();
      throw err;
    }
    const ks = keystore;
    const en = enrollments;
    const transport = dtls;
    // A new key, or a removed device: the sessions that proved the old key end now.
    if (ks) ks.onKeyChanged = (device) => transport.closeIdentity(device);
    coaps = new CoapEndpoint(dtls, core, runtime, {
      keepaliveS: runtime.keepaliveS,
      ...(log ? { log } : {}),
      // The token is used up first: a second try with it fails even if the rest does.
      enroll: async (identity) => {
        if (!ks || !en) return undefined;
        const id = identity.slice(ENROLL_IDENTITY_PREFIX.length);
        const device = await en.consume(id);
        if (device === undefined || !core.state.devices.has(device) || !core.state.meta) return undefined;
        const issued = await ks.issue(device);
        await recordKeyIssued(core, { actor: `device:${device}`, reason: `enrolled with token ${id}` }, device, issued.keyId);
        log?.info({ device, enrollment: id, keyId: issued.keyId }, 'device enrolled');
        return { device, key: issued.key, hubId: core.state.meta.hubId };
      },
    });
    metrics.bindCoaps(coaps, dtls);
  }
  const app = await createApi(core, metrics, { runtime, insecure: coap !== null, ...(keystore ? { keystore } : {}), ...(enrollments ? { enrollments } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
  try {
    await app.listen({ host: opts.host ?? DEFAULT_API_HOST, port: opts.port ?? DEFAULT_API_PORT });
  } catch (err) {
    await closeDevices();
    await core.close();
    throw err;
  }
  // Only once everything listens: a start that fails must not leave a token nobody was shown.
  let firstToken: string | null = null;
  // First start, or every admin token has expired or been revoked: a new one, shown once (whoever can start
  // the hub on its data folder can read the store anyway); nobody is locked out for good.
  const now = Date.now();
  const validAdmin = [...core.state.tokens.values()].some((t) => t.role === 'admin' && t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now));
  if (!validAdmin) {
    firstToken = (await createToken(core, { actor: 'hub', reason: core.state.tokens.size === 0 ? 'first start' : 'no valid admin token left' }, 'admin', { days: FIRST_TOKEN_DAYS })).token;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? DEFAULT_API_PORT);
  const advertisements: Array<{ stop(): Promise<void> }> = [];
  const toAdvertise = [
    ...(coaps && opts.coaps?.advertise ? [{ coapPort: coaps.port, secure: true }] : []),
    ...(coap && opts.coap?.advertise ? [{ coapPort: coap.port, secure: false }] : []),
  ];
  if (toAdvertise.length > 0 && core.state.meta) {
    const { advertiseHub } = await import('../discovery/index.ts');
    for (const a of toAdvertise) {
      const ad = await advertiseHub({ hubId: core.state.meta.hubId, apiPort: port, ...a }).catch((err: unknown) => {
        // Devices can still be pointed at the hub by address; say so rather than refuse to start.
        log?.warn({ err, secure: a.secure }, 'cannot advertise the hub over mDNS; devices need --hub');
        return null;
      });
      if (ad) advertisements.push(ad);
    }
  }
  const host = opts.host ?? DEFAULT_API_HOST;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    core,
    app,
    url: `http://${urlHost}:${port}`,
    dataDir,
    firstToken,
    startupMs: performance.now() - t0,
    coap,
    coapPort: coap?.port ?? null,
    coaps,
    dtls,
    coapsPort: coaps?.port ?? null,
    keystore,
    enrollments,
    runtime,
    advertised: advertisements.length > 0,
    async close() {
      // Goodbyes first, so devices stop looking here before the endpoint goes.
      for (const a of advertisements) await a.stop();
      await app.close();
      await closeDevices();
      unfollow();
      await core.close();
    },
  };
}

/**
 * A running hub: store + domain + REST API. `henge hub` and the tests start it through `startHub`.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { createApi } from './api/server.ts';
import { createMetrics } from './api/metrics.ts';
import { DEFAULT_KEEPALIVE_S, DeviceRuntime, HubCore, createToken, recordKeyRetired } from './domain/index.ts';
import { FIRST_TOKEN_DAYS } from './domain/tokens.ts';
import { CoapEndpoint } from './coap/endpoint.ts';
import { DtlsTransport } from './coap/dtls-transport.ts';
import { UdpTransport, WANTED_RECEIVE_BUFFER } from './coap/udp-transport.ts';
import { Keystore } from './security/keystore.ts';
import { Enrollments } from './security/enrollment.ts';
import { Provisioning } from './security/provisioning.ts';
import { DeviceCredentials } from './security/credentials.ts';
import { LevelStore } from './store/level-store.ts';

import { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR } from './defaults.ts';

export { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR };

/** How often previous keys whose grace period is over are retired. */
const RETIRE_SWEEP_MS = 60_000;

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
    /** Enrollment handshakes one address may start per minute (default 10). */
    readonly enrollPerMinute?: number;
    /**
     * DTLS handshakes one IP address may have in progress (default 4). Raise it when many devices share
     * one address (behind NAT, or a simulator).
     */
    readonly handshakesPerAddress?: number;
  };
  /**
   * Serve the API over HTTPS: with the given PEM certificate and key, or else a self-signed pair made on the
   * first such start and kept in `<data>/tls` (hub/api/tls.ts). Plain HTTP when null or left out.
   */
  readonly tls?: { readonly certFile?: string; readonly keyFile?: string } | null;
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
  readonly provisioning: Provisioning | null;
  readonly credentials: DeviceCredentials | null;
  readonly runtime: DeviceRuntime;
  /** The hub is advertised over mDNS. */
  readonly advertised: boolean;
  /** The API's certificate when it serves HTTPS: its SHA-256 fingerprint (for clients to pin) and whether it was just made. */
  readonly tls: { readonly fingerprint: string; readonly certFile: string; readonly generated: boolean } | null;
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
  let provisioning: Provisioning | null = null;
  let credentials: DeviceCredentials | null = null;
  let retireSweep: NodeJS.Timeout | null = null;
  let dtls: DtlsTransport | null = null;
  let coaps: CoapEndpoint | null = null;
  const closeDevices = async (): Promise<void> => {
    if (retireSweep) clearInterval(retireSweep);
    await coaps?.close();
    await coap?.close();
    await keystore?.close();
  };
  if (opts.coaps) {
    try {
      const ks = (keystore = await Keystore.open(dataDir));
      enrollments = await Enrollments.load(ks);
      provisioning = await Provisioning.load(ks);
      const creds = (credentials = new DeviceCredentials(core, ks, enrollments, provisioning, log, opts.coaps.enrollPerMinute));
      dtls = await DtlsTransport.open({
        port: opts.coaps.port,
        ...(opts.coaps.host ? { host: opts.coaps.host } : {}),
        pskLookup: (identity, peer) => creds.pskLookup(identity, peer),
        onHandshake: (e) => creds.handshakeDone(e.identity, e.peer, e.outcome),
        ...(opts.coaps.handshakeMs !== undefined ? { handshakeMs: opts.coaps.handshakeMs } : {}),
        ...(opts.coaps.idleMs !== undefined ? { idleMs: opts.coaps.idleMs } : {}),
        ...(opts.coaps.handshakesPerAddress !== undefined ? { maxHandshakesPerAddress: opts.coaps.handshakesPerAddress } : {}),
        onError: (err) => log?.warn({ err }, 'coaps socket error'),
        ...(log ? { log } : {}),
      });
    } catch (err) {
      await closeDevices();
      await core.close();
      throw err;
    }
    const ks = keystore;
    const transport = dtls;
    if (ks) {
      // A new key, or a removed or rejected device: the sessions that proved the old key end now.
      ks.onKeyChanged = (device) => transport.closeIdentity(device);
      ks.onKeyRetired = (device, keyId, reason) => {
        recordKeyRetired(core, device, keyId, reason).catch((err: unknown) => log?.error({ err, device, keyId }, 'recording a retired key failed'));
      };
      // Grace periods end on time even for a device that never came back.
      retireSweep = setInterval(() => {
        ks.retireExpired().catch((err: unknown) => log?.error({ err }, 'retiring expired keys failed'));
      }, RETIRE_SWEEP_MS);
      retireSweep.unref();
      await ks.retireExpired();
    }
    const creds = credentials;
    coaps = new CoapEndpoint(dtls, core, runtime, {
      keepaliveS: runtime.keepaliveS,
      ...(log ? { log } : {}),
      ...(creds ? { enroll: (identity: string, payload: Buffer) => creds.enroll(identity, payload) } : {}),
    });
    metrics.bindCoaps(coaps, dtls);
  }
  // Loaded only for HTTPS: plain HTTP does not pay for the certificate code.
  const tls = opts.tls
    ? await import('./api/tls.ts')
        .then((m) => m.loadOrCreateCertificate(dataDir, { ...opts.tls, hosts: [opts.host ?? DEFAULT_API_HOST] }))
        .catch(async (err: unknown) => {
          await closeDevices();
          await core.close();
          throw err;
        })
    : null;
  const app = await createApi(core, metrics, { runtime, insecure: coap !== null, ...(keystore ? { keystore } : {}), ...(enrollments ? { enrollments } : {}), ...(provisioning ? { provisioning } : {}), ...(opts.logger ? { logger: opts.logger } : {}), ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}) });
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
    url: `${tls ? 'https' : 'http'}://${urlHost}:${port}`,
    tls: tls ? { fingerprint: tls.fingerprint, certFile: tls.certFile, generated: tls.generated } : null,
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
    provisioning,
    credentials,
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

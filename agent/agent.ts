/**
 * The agent loop (docs/protocol.md, "Observe lifecycle"): register, apply each newer snapshot atomically,
 * run the hook, ack; re-register before Max-Age runs out; when the hub is unreachable keep the last applied
 * config and retry with backoff; on start, restore `--out` from the state folder before contacting the hub.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ACK_STATUS_NAMES, AckStatus, MAX_ACK_MESSAGE, encodeTelemetry, truncateUtf8 as cutUtf8 } from '../protocol/ack.ts';
import type { Ack } from '../protocol/ack.ts';
import { ContentFormat, option, readUint } from '../protocol/coap.ts';
import type { CoapMessage } from '../protocol/coap.ts';
import { Resource, devicePath } from '../protocol/paths.ts';
import { decodeSnapshot } from '../protocol/snapshot.ts';
import type { ConfigValues, Snapshot } from '../protocol/snapshot.ts';
import { applySnapshotFile, hex, prepareFile, readIfExists, restoreFile, sameBytes, verifySnapshotHash, writeFileAtomic } from './apply.ts';
import { Backoff } from './backoff.ts';
import { fetchRepresentation } from './blockwise.ts';
import type { Psk } from '../dtls/client.ts';
import { CoapClient, describe } from './coap-client.ts';
import { AgentError, CoapAbortedError, CoapResponseError, ExecError, FormatError, HubMismatchError, SnapshotIntegrityError } from './errors.ts';
import { runHook } from './exec.ts';
import { AckSender } from './acks.ts';
import type { OutputFormat } from './formats.ts';
import type { HubEndpoint, HubLocator } from './hub-locator.ts';
import { EMPTY_STATE, StateStore } from './state.ts';
import type { AgentState } from './state.ts';
import { decide } from './version-rule.ts';
import type { VersionMark } from './version-rule.ts';

export const AGENT_NAME = 'henge-agent/0.1.0';

/** What the agent logs through; a pino logger fits. */
export interface AgentLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AgentOptions {
  readonly device: string;
  readonly locator: HubLocator;
  /** Absolute path of the config file. */
  readonly out: string;
  readonly format: OutputFormat;
  readonly exec?: string;
  readonly execTimeoutMs?: number;
  readonly stateDir: string;
  readonly backoffMaxMs: number;
  readonly logger: AgentLogger;
  readonly random?: () => number;
  /** coaps: the device's PSK identity and key; plain CoAP without it. */
  readonly psk?: Psk;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** Max-Age when a response has none (RFC 7252 §5.10.5). */
const DEFAULT_MAX_AGE_S = 60;
/** Deregistration on shutdown is best effort: this long at most. */
const DEREGISTER_WAIT_MS = 2_000;
/** How long stop() lets an apply in progress finish. */
const STOP_DRAIN_MS = 5_000;

/** Config keys that differ between two snapshots: names only (values may be secrets). */
export function changedKeys(before: ConfigValues, after: ConfigValues): { added: string[]; removed: string[]; changed: string[] } {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const k of Object.keys(after)) {
    if (!Object.hasOwn(before, k)) added.push(k);
    else if (!Object.is(before[k], after[k])) changed.push(k);
  }
  for (const k of Object.keys(before)) if (!Object.hasOwn(after, k)) removed.push(k);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

/** An ack message cut to `max` UTF-8 bytes on a character boundary, with `...` when it was cut. */
export function truncateUtf8(text: string, max = MAX_ACK_MESSAGE): string {
  if (Buffer.byteLength(text) <= max) return text;
  return `${cutUtf8(text, max - 3)}...`;
}

function errorSummary(err: unknown): { code?: string; message: string } {
  if (err instanceof AgentError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { ...(typeof code === 'string' ? { code } : {}), message: err.message };
  }
  return { message: String(err) };
}

interface FailedMark extends VersionMark {
  readonly hash: Uint8Array;
}

export class Agent {
  private readonly store: StateStore;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly log: AgentLogger;
  private readonly configPath: string[];
  private state: AgentState = EMPTY_STATE;
  private client: CoapClient | null = null;
  private clientKey = '';
  /** One token for the life of the process: a re-registration refreshes the same observation. */
  private readonly observeToken: Buffer;
  private stopping = false;
  private readonly stopSignal = new AbortController();
  /** Aborted when stopping has waited long enough for a hook: it is killed and the previous file restored. */
  private readonly hookStop = new AbortController();
  private stopPromise: Promise<void> | null = null;
  private runPromise: Promise<void> | null = null;
  private readonly sleepers = new Set<() => void>();
  /** A failure found outside the session loop (while handling a notification); the loop reconnects. */
  private sessionError: Error | null = null;
  /** Snapshot handling, one message at a time, in arrival order. */
  private tail: Promise<void> = Promise.resolve();
  private readonly acks: AckSender;
  /** The registration on its way; a re-registration (the relation held) yields to an ack. */
  private regFlight: { readonly controller: AbortController; readonly reRegistration: boolean } | null = null;
  /** The snapshot whose apply failed last: not retried until another one comes (or the agent restarts). */
  private lastFailed: FailedMark | null = null;
  private registrations = 0;
  private telemetrySent = false;
  private connected = false;
  /** Retransmissions since the last answered registration (the hub went quiet). */
  private unanswered = 0;

  constructor(private readonly opts: AgentOptions) {
    this.store = new StateStore(opts.stateDir, opts.device);
    this.random = opts.random ?? Math.random;
    this.backoff = new Backoff({ capMs: opts.backoffMaxMs, random: this.random });
    this.log = opts.logger;
    this.configPath = devicePath(opts.device, Resource.Config);
    this.observeToken = randomBytes(4);
    this.acks = new AckSender({
      log: this.log,
      path: devicePath(opts.device, Resource.Ack),
      // Newest ack first: a re-registration in flight is abandoned and sent again after the ack.
      beforeSend: () => {
        if (this.regFlight?.reRegistration) this.regFlight.controller.abort();
      },
      delivered: (ack) => this.delivered(ack),
      failed: (err) => this.failSession(err),
    });
  }

  /** The last applied snapshot (from this run or the state folder). */
  get applied(): Snapshot | null {
    return this.state.applied?.snapshot ?? null;
  }

  /**
   * Takes the state folder, restores `--out` from it when needed (offline start), and starts the loop in
   * the background. Throws StateLockedError / StateError when the folder cannot be used.
   */
  async start(): Promise<void> {
    await this.store.open();
    await mkdir(dirname(this.opts.out), { recursive: true });
    try {
      this.state = await this.store.load();
      if (this.state.applied) verifySnapshotHash(this.state.applied.snapshot);
    } catch (err) {
      this.log.warn({ err: errorSummary(err), state: this.store.file }, 'state folder unreadable; starting without a last applied config');
      this.state = EMPTY_STATE;
    }
    await this.restoreOut();
    this.runPromise = this.run();
  }

  /** Resolves when the loop has ended (after stop()). */
  get done(): Promise<void> {
    return this.runPromise ?? Promise.resolve();
  }

  /** Re-register now (SIGHUP): fetches the current config and renews the relation. */
  refresh(): void {
    this.log.info({}, 're-registering now');
    this.wakeAll();
  }

  /** Deregisters (best effort), closes the socket and the state folder. */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort(new Error('the agent is stopping'));
    this.wakeAll();
    // Let an apply in progress finish (it is atomic either way), and its ack go, but not for ever: a hook
    // still running then is killed with its process group and the previous file put back.
    const drained = await Promise.race([this.tail.then(() => this.acks.settled).then(() => true), delay(STOP_DRAIN_MS).then(() => false)]);
    if (!drained) {
      this.hookStop.abort();
      await Promise.race([this.tail, delay(STOP_DRAIN_MS)]);
    }
    const client = this.client;
    if (client) {
      client.abortAll('the agent is stopping');
      client.unobserve(this.observeToken);
      if (this.connected) {
        try {
          const res = await client.request({
            method: 'GET',
            path: this.configPath,
            observe: 1,
            token: this.observeToken,
            ...(this.state.applied ? { etag: this.state.applied.snapshot.hash } : {}),
            deadlineMs: DEREGISTER_WAIT_MS,
          });
          this.log.info({ code: res.code }, 'deregistered');
        } catch (err) {
          this.log.warn({ err: errorSummary(err) }, 'deregistration got no answer');
        }
      }
      await client.close();
    }
    await this.runPromise?.catch(() => undefined);
    await this.store.close();
  }

  // --- offline start ---

  private async restoreOut(): Promise<void> {
    const a = this.state.applied;
    if (!a) return;
    let file;
    try {
      file = prepareFile(this.opts.format, a.snapshot);
    } catch (err) {
      this.log.warn({ err: errorSummary(err), version: a.snapshot.version }, 'cannot render the saved snapshot in this format; --out left as it is');
      return;
    }
    const current = await readIfExists(this.opts.out);
    if (current && sameBytes(current, file.bytes)) return;
    await writeFileAtomic(this.opts.out, file.bytes, { verify: (read) => file.verify(read) });
    this.log.info({ version: a.snapshot.version, out: this.opts.out, was: current ? 'different' : 'missing' }, 'restored --out from the state folder');
  }

  // --- the loop ---

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.session();
      } catch (err) {
        if (this.stopping) break;
        this.connected = false;
        const wait = this.backoff.next();
        const refused = err instanceof CoapResponseError;
        this.log[refused && err.responseCode === '4.04' ? 'error' : 'warn'](
          { err: errorSummary(err), attempt: this.backoff.attempts, retryInMs: wait, appliedVersion: this.state.applied?.snapshot.version ?? null },
          refused ? 'the hub refused or ended the observation; keeping the last applied config and retrying' : 'hub unreachable; keeping the last applied config and retrying',
        );
        await this.sleep(wait);
      }
    }
  }

  private async session(): Promise<void> {
    // Stopping aborts a search for the hub (mDNS may wait seconds) rather than waiting it out.
    const endpoint = await this.opts.locator(this.stopSignal.signal, this.state.hubId ?? undefined);
    if (this.stopping) return;
    await this.checkPin(endpoint);
    const client = await this.clientFor(endpoint);
    if (this.stopping) {
      await client.close();
      return;
    }
    for (;;) {
      const maxAgeS = await this.register(client);
      if (this.stopping) return;
      if (this.connected && this.unanswered > 0) this.log.info({ retransmissions: this.unanswered }, 'the hub answers again');
      this.unanswered = 0;
      if (!this.connected) {
        this.log.info(
          { hub: `${endpoint.address} port ${endpoint.port}`, source: endpoint.source, localPort: client.localPort, keepaliveS: maxAgeS, afterAttempts: this.backoff.attempts },
          this.registrations === 1 ? 'connected' : 'reconnected',
        );
      }
      this.connected = true;
      this.backoff.reset();
      // A fresh registration supersedes failures seen while handling earlier notifications: its response
      // carried the current snapshot and any unconfirmed ack went again.
      this.sessionError = null;
      await this.sendTelemetryOnce(client);
      // Re-register before Max-Age runs out, with room for a retransmission or two.
      const keepaliveMs = Math.max(1000, maxAgeS * 1000 * (0.7 + 0.15 * this.random()));
      await this.sleep(keepaliveMs);
      if (this.stopping) return;
      const e = this.sessionError;
      if (e) {
        this.sessionError = null;
        throw e;
      }
    }
  }

  private async checkPin(endpoint: HubEndpoint): Promise<void> {
    if (endpoint.hubId === undefined) return;
    if (this.state.hubId === null) {
      this.state = { ...this.state, hubId: endpoint.hubId };
      await this.store.save(this.state);
      this.log.info({ hubId: endpoint.hubId }, 'pinned hub');
    } else if (this.state.hubId !== endpoint.hubId) {
      throw new HubMismatchError(`found hub ${endpoint.hubId}, but this device is pinned to ${this.state.hubId}`);
    }
  }

  private async clientFor(endpoint: HubEndpoint): Promise<CoapClient> {
    const key = `${endpoint.address}|${endpoint.port}`;
    if (this.client && !this.client.isClosed && this.clientKey === key) return this.client;
    if (this.client) await this.client.close();
    const client = await CoapClient.open(endpoint, {
      random: this.random,
      ...(this.opts.psk ? { psk: this.opts.psk } : {}),
      onRetransmit: (spec, n) => {
        this.unanswered++;
        this.log.debug({ request: describe(spec), retransmission: n }, 'no answer yet; retransmitting');
      },
      onDrop: (why) => this.log.debug({ why }, 'datagram ignored'),
    });
    client.observe(this.observeToken, (msg) => this.onNotification(msg));
    this.client = client;
    this.clientKey = key;
    return client;
  }

  /** Step 1 of the lifecycle; returns the keepalive (Max-Age) the hub gave. */
  private async register(client: CoapClient): Promise<number> {
    let res: CoapMessage;
    for (;;) {
      const applied = this.state.applied;
      const controller = new AbortController();
      const flight = { controller, reRegistration: this.connected };
      this.regFlight = flight;
      try {
        res = await client.request({
          method: 'GET',
          path: this.configPath,
          observe: 0,
          token: this.observeToken,
          ...(applied ? { etag: applied.snapshot.hash } : {}),
          signal: controller.signal,
        });
        break;
      } catch (err) {
        // Abandoned for an ack (newest ack first): register again once that ack's exchange is over.
        if (!controller.signal.aborted || this.stopping) throw err;
        this.log.debug({}, 're-registration abandoned for an ack; registering again after it');
        await this.acks.settled;
        // Stopping meanwhile (shutdown waits on that same ack): no registration now, just before the deregistration.
        if (this.stopping) throw err;
      } finally {
        if (this.regFlight === flight) this.regFlight = null;
      }
    }
    if (res.code !== '2.05' && res.code !== '2.03') {
      throw new CoapResponseError(
        res.code === '4.04' ? `the hub does not know device ${this.opts.device} (add it with: henge device add ${this.opts.device})` : `registration answered ${res.code}`,
        res.code,
      );
    }
    this.registrations++;
    const observing = option(res, 'Observe') !== undefined;
    const maxAge = option(res, 'Max-Age');
    const maxAgeS = maxAge === undefined ? DEFAULT_MAX_AGE_S : readUint(maxAge);
    this.log.debug({ code: res.code, observing, maxAgeS }, 'registered');
    await this.enqueue(res, 'registration');
    this.acks.flush(client);
    if (!observing) throw new CoapResponseError('the hub answered the registration without Observe: no relation', res.code);
    return maxAgeS;
  }

  private onNotification(msg: CoapMessage): void {
    if (this.stopping) return;
    const obs = option(msg, 'Observe');
    this.log.debug({ code: msg.code, mid: msg.messageId, observe: obs === undefined ? null : readUint(obs), bytes: msg.payload.length }, 'notification');
    if (!msg.code.startsWith('2.') || option(msg, 'Observe') === undefined) {
      // RFC 7641 §3.2: a notification without Observe, or an error, ends the relation.
      this.failSession(new CoapResponseError(`the hub ended the observation (${msg.code})`, msg.code));
      return;
    }
    this.enqueue(msg, 'notification').catch((err: unknown) => this.failSession(err instanceof Error ? err : new Error(String(err))));
  }

  private failSession(err: Error): void {
    if (err instanceof CoapAbortedError && this.stopping) return;
    this.sessionError ??= err;
    this.wakeAll();
  }

  private enqueue(msg: CoapMessage, via: 'registration' | 'notification'): Promise<void> {
    const p = this.tail.then(() => this.handle(msg, via));
    this.tail = p.catch(() => undefined);
    return p;
  }

  // --- snapshots ---

  private async handle(msg: CoapMessage, via: 'registration' | 'notification'): Promise<void> {
    const client = this.client;
    if (!client || this.stopping) return;
    if (msg.code === '2.03') {
      this.log.debug({ version: this.state.applied?.snapshot.version ?? null, via }, 'config is current');
      await this.ackAppliedIfUnconfirmed(client);
      return;
    }
    const rep = await fetchRepresentation(client, this.configPath, msg);
    let snapshot: Snapshot;
    try {
      snapshot = decodeSnapshot(rep.payload);
    } catch (err) {
      // Without a version there is nothing to ack; the next registration fetches it again.
      this.log.error({ err: errorSummary(err), via, bytes: rep.payload.length }, 'snapshot not decodable; ignored');
      return;
    }
    const base = { version: snapshot.version, via, ...(rep.blocks > 1 ? { blocks: rep.blocks, bytes: rep.payload.length, restarts: rep.restarts } : {}) };
    try {
      verifySnapshotHash(snapshot);
      if (rep.etag && !sameBytes(rep.etag, snapshot.hash)) throw new SnapshotIntegrityError(`ETag ${rep.etag.toString('hex')} is not the snapshot hash ${hex(snapshot.hash)}`);
    } catch (err) {
      if (!(err instanceof SnapshotIntegrityError)) throw err;
      this.log.error({ ...base, err: errorSummary(err) }, 'snapshot rejected');
      await this.sendAck(client, snapshot, AckStatus.Rejected, err.message);
      return;
    }
    const applied = this.state.applied?.snapshot;
    const decision = decide(applied, snapshot);
    if (!decision.apply) {
      this.log.debug({ ...base, appliedVersion: applied?.version ?? null, reason: decision.reason }, 'snapshot not newer than the applied one; ignored');
      if (decision.reason === 'same') await this.ackAppliedIfUnconfirmed(client);
      return;
    }
    const f = this.lastFailed;
    if (f && f.version === snapshot.version && sameBytes(f.incarnation, snapshot.incarnation) && sameBytes(f.hash, snapshot.hash)) {
      this.log.debug(base, 'this snapshot failed to apply already; waiting for a newer one');
      return;
    }
    await this.applyAndAck(client, snapshot, new Uint8Array(rep.payload), decision.reason, base);
  }

  private async applyAndAck(client: CoapClient, snapshot: Snapshot, bytes: Uint8Array, reason: string, base: object): Promise<void> {
    const before = this.state.applied?.snapshot;
    const out = this.opts.out;
    const fail = async (status: AckStatus, err: unknown, message: string): Promise<void> => {
      this.lastFailed = { version: snapshot.version, incarnation: snapshot.incarnation, hash: snapshot.hash };
      this.log.error({ ...base, err: errorSummary(err), status: ACK_STATUS_NAMES[status], keptVersion: before?.version ?? null }, 'snapshot not applied; previous config kept');
      await this.sendAck(client, snapshot, status, message);
    };
    let previous: Buffer | null;
    try {
      ({ previous } = await applySnapshotFile(out, this.opts.format, snapshot));
    } catch (err) {
      const status = err instanceof FormatError ? AckStatus.Rejected : AckStatus.Failed;
      return fail(status, err, err instanceof Error ? err.message : String(err));
    }
    if (this.opts.exec !== undefined) {
      try {
        const r = await runHook(this.opts.exec, { file: out, version: snapshot.version, device: this.opts.device }, this.opts.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, undefined, this.hookStop.signal);
        this.log.debug({ version: snapshot.version, ms: Math.round(r.ms), stdoutTail: r.stdoutTail.slice(-200) }, '--exec succeeded');
      } catch (err) {
        try {
          await restoreFile(out, previous);
        } catch (restoreErr) {
          this.log.error({ err: errorSummary(restoreErr), out }, 'could not restore the previous config file');
        }
        if (this.hookStop.signal.aborted) {
          // Stopped mid-hook: the file is the previous one again, as state.json says; no ack (the hub sends
          // this snapshot again at the next registration).
          this.log.warn({ ...base, err: errorSummary(err), keptVersion: before?.version ?? null }, 'stopped during --exec; the previous config is back');
          return;
        }
        const e = err instanceof ExecError ? err : undefined;
        const tail = e?.stderrTail.trim().split('\n').slice(-3).join(' | ') ?? '';
        return fail(AckStatus.Failed, err, `${e?.message ?? String(err)}${tail ? `: ${tail}` : ''}`);
      }
    }
    this.lastFailed = null;
    this.state = { ...this.state, applied: { bytes, snapshot, acked: false, appliedAt: Date.now() } };
    try {
      await this.store.save(this.state);
    } catch (err) {
      this.log.error({ err: errorSummary(err) }, 'could not save the state folder; the config file is applied');
    }
    const keys = changedKeys(before?.values ?? {}, snapshot.values);
    this.log.info(
      {
        ...base,
        previousVersion: before?.version ?? null,
        reason,
        ...(reason === 'new-incarnation' ? { incarnation: hex(snapshot.incarnation) } : {}),
        ...keys,
      },
      'applied',
    );
    await this.sendAck(client, snapshot, AckStatus.Applied);
  }

  // --- acks ---

  /** Acks `snapshot` (in the background: the next snapshot need not wait for this exchange). */
  private async sendAck(client: CoapClient, snapshot: Snapshot, status: AckStatus, message?: string): Promise<void> {
    const ack: Ack = {
      version: snapshot.version,
      status,
      ...(message !== undefined ? { message: truncateUtf8(message) } : {}),
      hash: snapshot.hash,
      incarnation: snapshot.incarnation,
    };
    this.acks.send(client, ack);
  }

  /** The applied snapshot was never confirmed by the hub (lost ack, or a restart in between): ack it. */
  private async ackAppliedIfUnconfirmed(client: CoapClient): Promise<void> {
    const a = this.state.applied;
    if (this.acks.pending) this.acks.flush(client);
    else if (a && !a.acked) await this.sendAck(client, a.snapshot, AckStatus.Applied);
  }

  /** The hub recorded `ack`: if it confirms the applied snapshot, the state folder says so. */
  private async delivered(ack: Ack): Promise<void> {
    const a = this.state.applied;
    if (ack.status !== AckStatus.Applied || !a || a.acked || a.snapshot.version !== ack.version || !ack.hash || !sameBytes(a.snapshot.hash, ack.hash)) return;
    this.state = { ...this.state, applied: { ...a, acked: true } };
    await this.store.save(this.state).catch((err: unknown) => this.log.warn({ err: errorSummary(err) }, 'could not save the state folder'));
  }

  private async sendTelemetryOnce(client: CoapClient): Promise<void> {
    if (this.telemetrySent) return;
    this.telemetrySent = true;
    try {
      const res = await client.request({ method: 'POST', path: devicePath(this.opts.device, Resource.Telemetry), contentFormat: ContentFormat.Cbor, payload: encodeTelemetry({ _agent: `${AGENT_NAME} node/${process.versions.node}` }) });
      this.log.debug({ code: res.code }, 'telemetry sent');
    } catch (err) {
      this.log.debug({ err: errorSummary(err) }, 'telemetry not sent');
    }
  }

  // --- timers ---

  /** Waits `ms`, or less when woken (stop, refresh, a failure in notification handling). */
  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private wakeAll(): void {
    for (const wake of [...this.sleepers]) wake();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * The hub's CoAP endpoint (docs/protocol.md): routes requests to `/d/{id}/c|a|t` and `/.well-known/core`,
 * answers with the codes the spec gives, keeps observe relations through the registry, and notifies the
 * devices whose snapshot a commit changed. Speaks through the DatagramTransport port only.
 */
import { ACK_STATUS_NAMES, PayloadDecodeError, decodeAck, decodeTelemetry } from '../../protocol/ack.ts';
import {
  ContentFormat,
  MAX_REQUEST_PAYLOAD,
  MessageKind,
  Method,
  emptyMessageKind,
  isCritical,
  messageIdOf,
  option,
  parseMessage,
  readBlock,
  readUint,
  uriPath,
  uriQuery,
} from '../../protocol/coap.ts';
import type { CoapMessage } from '../../protocol/coap.ts';
import { ENROLL_PATH, encodeEnrolled, isEnrollmentIdentity } from '../../protocol/enroll.ts';
import type { EnrollOutcome } from '../security/credentials.ts';
import { Resource, parseDevicePath } from '../../protocol/paths.ts';
import { HengeError, NotFoundError, StoreUnavailableError } from '../errors.ts';
import { flagDuplicate, recordAcks } from '../domain/commands.ts';
import type { HubCore } from '../domain/core.ts';
import type { DeviceRuntime } from '../domain/runtime.ts';
import { AckBatcher } from './ack-batcher.ts';
import type { AckOutcome } from './ack-batcher.ts';
import { OwedAnswers } from './owed-answers.ts';
import { newCoapCounters } from './counters.ts';
import type { CoapCounters } from './counters.ts';
import { DuplicateIdentityWatch } from './duplicate-identity.ts';
import { AnswerCache } from './answer-cache.ts';
import { MessageType, configResponse, emptyAck, plainResponse, wellKnownResponse } from './messages.ts';
import { EndReason, ObserveRegistry } from './observers.ts';
import { peerKey } from './transport.ts';
import type { DatagramTransport, Peer } from './transport.ts';

export type { CoapCounters } from './counters.ts';


export interface EndpointLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EndpointOptions {
  readonly keepaliveS: number;
  /**
   * Enrollment (coaps): a session of an enrollment identity (`enroll.<id>` or `provision.<id>`) POSTs
   * /enroll; this returns what the device gets, or why not (hub/security/credentials.ts).
   */
  readonly enroll?: (identity: string, payload: Buffer) => Promise<EnrollOutcome>;
  readonly log?: EndpointLog;
  readonly maxInflight?: number;
}


interface Exchange {
  readonly type: MessageType;
  readonly messageId: number;
  readonly token: Buffer;
}

/** How long close() waits for the answers still owed (acks and enrollments being made durable). */
const CLOSE_WAIT_MS = 5_000;

/** Critical options (odd numbers) that coap-packet names but henge does not implement: 4.02. */
const CRITICAL_UNSUPPORTED = new Set(['OSCORE', 'Proxy-Uri', 'Proxy-Scheme', 'Q-Block1', 'Q-Block2']);

const KNOWN_OPTIONS = new Set(['Uri-Path', 'Uri-Query', 'Uri-Host', 'Uri-Port', 'Observe', 'ETag', 'Block2', 'Block1', 'Size1', 'Size2', 'Content-Format', 'Accept', 'If-Match', 'If-None-Match', 'Max-Age', 'No-Response']);

export class CoapEndpoint {
  readonly counters: CoapCounters = newCoapCounters();
  readonly registry: ObserveRegistry;
  private readonly acks: AckBatcher;
  private readonly answered = new AnswerCache();
  private readonly owed = new OwedAnswers();
  private closing = false;
  /** The socket is closed (or closing): an answer still owed then is dropped, as close() warned. */
  private closed = false;
  private readonly duplicates: DuplicateIdentityWatch;
  private readonly unsubscribe: () => void;
  private nonMid = Math.floor(Math.random() * 0x10000);

  constructor(
    private readonly transport: DatagramTransport,
    private readonly core: HubCore,
    private readonly runtime: DeviceRuntime,
    private readonly opts: EndpointOptions,
  ) {
    this.duplicates = new DuplicateIdentityWatch(opts.keepaliveS * 1000);
    this.registry = new ObserveRegistry({
      transport,
      snapshotOf: (d) => this.core.state.snapshots.get(d),
      maxAgeS: opts.keepaliveS,
      ...(opts.maxInflight !== undefined ? { maxInflight: opts.maxInflight } : {}),
      onEnded: (d, reason) => {
        this.counters.relationsEnded[reason]++;
        this.runtime.setObserving(d, false);
      },
      onSent: (_d, re) => {
        if (re) this.counters.retransmissions++;
        else this.counters.notificationsSent++;
      },
    });
    this.acks = new AckBatcher((acks) => {
      this.counters.ackBatches++;
      return recordAcks(core, acks);
    });
    transport.onDatagram((bytes, from) => this.receive(bytes, from));
    // Notify after the commit is durable; snapshots were encoded once by the commit itself.
    // (The runtime follows the same commits itself: see DeviceRuntime.follow.)
    this.unsubscribe = core.onCommit((c) => {
      for (const device of c.changedSnapshots) {
        if (!core.state.snapshots.has(device)) {
          this.registry.deregister(device, EndReason.Removed);
          this.duplicates.forget(device);
        }
        this.registry.notify(device);
      }
    });
  }

  get port(): number {
    return this.transport.port;
  }

  /**
   * Stops taking datagrams, ends every observation, then waits for the answers still owed (acks and
   * enrollments being made durable: the core is still open) before the socket closes.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe();
    this.registry.close();
    // Not for ever: a store that never finishes a write must not keep the hub from stopping.
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([this.owed.settled().then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    if (!settled) this.opts.log?.warn({ owed: this.owed.count, waitedMs: CLOSE_WAIT_MS }, 'closing with answers still owed (their requests were not answered)');
    this.closed = true;
    await this.transport.close();
  }

  /**
   * Answers an asynchronous request once `work` settles, with `done` or `failed`; the answer is owed until
   * then (close waits for it), and a bug in either is a request error, never an unhandled rejection.
   */
  private answerLater<T>(work: Promise<T>, from: Peer, done: (value: T) => void, failed: (err: unknown) => void): void {
    const given = this.owed.begin();
    const guarded =
      <A>(answer: (a: A) => void) =>
      (a: A): void => {
        try {
          answer(a);
        } catch (err) {
          this.counters.requestErrors++;
          this.opts.log?.error({ err, peer: peerKey(from) }, 'CoAP request failed');
        } finally {
          given();
        }
      };
    work.then(guarded(done), guarded(failed));
  }

  private receive(bytes: Buffer, from: Peer): void {
    this.counters.received++;
    if (this.closing) {
      // Closing: nothing new is taken on (a device retransmits to the next hub); owed answers still go out.
      this.counters.ignored++;
      return;
    }
    // Most of what a hub receives in a fan-out is the 4-byte ACK of a notification: no parse needed.
    const empty = emptyMessageKind(bytes);
    if (empty === MessageKind.Ack) {
      if (!this.registry.acknowledged(from, messageIdOf(bytes))) this.counters.ignored++;
      return;
    }
    if (empty === MessageKind.Rst) {
      if (!this.registry.reset(from, messageIdOf(bytes))) this.counters.ignored++;
      return;
    }
    let msg: CoapMessage;
    try {
      msg = parseMessage(bytes);
    } catch {
      this.counters.malformed++;
      return;
    }
    try {
      this.handle(msg, from);
    } catch (err) {
      // A bug must not take the endpoint down; the request gets 5.00 and the error is logged.
      this.counters.requestErrors++;
      this.opts.log?.error({ err, peer: peerKey(from) }, 'CoAP request failed');
      if (msg.confirmable) this.transport.send(plainResponse(this.exchangeOf(msg), '5.00'), from);
    }
  }

  private exchangeOf(msg: CoapMessage): Exchange {
    return msg.confirmable
      ? { type: MessageType.Ack, messageId: msg.messageId, token: msg.token }
      : { type: MessageType.Non, messageId: (this.nonMid = (this.nonMid + 1) & 0xffff), token: msg.token };
  }

  /** Sends a request's answer, kept for repeating it to a duplicate of a CON request. */
  private reply(dedupKey: string | null, bytes: Buffer | undefined, to: Peer): void {
    if (!bytes || this.closed) return;
    if (dedupKey) this.answered.remember(dedupKey, bytes);
    this.transport.send(bytes, to);
  }

  private refuse(dedupKey: string | null, ex: Exchange, to: Peer, code: string, why: string): void {
    this.counters.badRequests++;
    this.reply(dedupKey, plainResponse(ex, code, Buffer.from(why)), to);
  }

  private forbid(dedupKey: string | null, ex: Exchange, to: Peer): void {
    this.counters.forbidden++;
    this.reply(dedupKey, plainResponse(ex, '4.03', Buffer.from('only your own device')), to);
  }

  private handle(msg: CoapMessage, from: Peer): void {
    if (msg.code === '0.00') {
      // (Empty ACK/RST of 4 bytes never get here; these carry a token or options, which RFC 7252 §4.1 forbids.)
      let known = false;
      if (msg.ack) known = this.registry.acknowledged(from, msg.messageId);
      else if (msg.reset) known = this.registry.reset(from, msg.messageId);
      else if (msg.confirmable) {
        this.transport.send(emptyAck(msg.messageId), from); // CoAP ping -> RST is also fine; ACK keeps NATs open
        known = true;
      }
      if (!known) this.counters.ignored++;
      return;
    }
    if (msg.ack || msg.reset || !msg.code.startsWith('0.')) {
      this.counters.ignored++; // a response to something we never asked, or a response/reserved code as a request
      return;
    }
    // The identity is part of the exchange: a session that replaced another at the same address must never
    // be answered from the other one's cache.
    const dedupKey = msg.confirmable ? `${peerKey(from)}#${from.identity ?? ''}#${msg.messageId}` : null;
    if (dedupKey) {
      const prior = this.answered.lookup(dedupKey);
      if (prior !== undefined) {
        this.counters.duplicatesAnswered++;
        if (prior) this.transport.send(prior, from);
        return;
      }
    }
    const ex = this.exchangeOf(msg);
    for (const o of msg.options) {
      const name = String(o.name);
      if (KNOWN_OPTIONS.has(name)) continue;
      // coap-packet names options it does not know by their number, as text.
      const critical = /^\d+$/.test(name) ? isCritical(Number(name)) : CRITICAL_UNSUPPORTED.has(name);
      if (critical) return this.refuse(dedupKey, ex, from, '4.02', `unsupported critical option ${name}`);
    }
    const path = uriPath(msg);
    if (from.identity !== undefined && isEnrollmentIdentity(from.identity)) {
      // An enrollment session may do one thing: POST /enroll.
      if (path.length !== 1 || path[0] !== ENROLL_PATH || msg.code !== Method.Post || !this.opts.enroll) return this.forbid(dedupKey, ex, from);
      if (msg.payload.length > MAX_REQUEST_PAYLOAD) return this.refuse(dedupKey, ex, from, '4.13', `at most ${MAX_REQUEST_PAYLOAD} bytes`);
      return this.enroll(dedupKey, ex, from, from.identity, msg.payload);
    }
    if (path.length === 2 && path[0] === '.well-known' && path[1] === 'core') {
      if (msg.code !== Method.Get) return this.refuse(dedupKey, ex, from, '4.05', 'GET only');
      const d = uriQuery(msg).get('d');
      if (d !== undefined && from.identity !== undefined && d !== from.identity) return this.forbid(dedupKey, ex, from);
      return this.reply(dedupKey, wellKnownResponse(ex, d, d !== undefined && this.core.state.devices.has(d)), from);
    }
    const target = parseDevicePath(path);
    // Under DTLS a device may touch only its own resources (docs/protocol.md, "Security").
    if (target && from.identity !== undefined && target.device !== from.identity) return this.forbid(dedupKey, ex, from);
    if (!target || !this.core.state.devices.has(target.device)) {
      this.counters.notFound++;
      return this.reply(dedupKey, plainResponse(ex, '4.04'), from);
    }
    this.runtime.seen(target.device, peerKey(from));
    if (target.resource === Resource.Config) {
      if (msg.code !== Method.Get) return this.refuse(dedupKey, ex, from, '4.05', 'GET (with or without Observe) only');
      return this.reply(dedupKey, this.config(msg, ex, target.device, from), from);
    }
    if (msg.code !== Method.Post) return this.refuse(dedupKey, ex, from, '4.05', 'POST only');
    if (msg.payload.length > MAX_REQUEST_PAYLOAD) return this.refuse(dedupKey, ex, from, '4.13', `at most ${MAX_REQUEST_PAYLOAD} bytes`);
    const cf = option(msg, 'Content-Format');
    if (cf && readUint(cf) !== ContentFormat.Cbor) return this.refuse(dedupKey, ex, from, '4.15', 'send application/cbor (60)');
    if (target.resource === Resource.Telemetry) {
      try {
        this.runtime.recordTelemetry(target.device, decodeTelemetry(msg.payload));
      } catch (err) {
        if (err instanceof PayloadDecodeError) return this.refuse(dedupKey, ex, from, '4.00', err.message);
        throw err;
      }
      return this.reply(dedupKey, plainResponse(ex, '2.04'), from);
    }
    let ack;
    try {
      ack = decodeAck(msg.payload);
    } catch (err) {
      if (err instanceof PayloadDecodeError) return this.refuse(dedupKey, ex, from, '4.00', err.message);
      throw err;
    }
    this.counters.acksReceived++;
    // Answer once the ack is durable; until then a retransmitted request is a duplicate with no answer yet.
    if (dedupKey) this.answered.remember(dedupKey, null);
    const device = target.device;
    const latencyMs = this.runtime.latencyOf(device, ack.version);
    const recorded = new Promise<AckOutcome>((resolve) =>
      this.acks.add(
        {
          device,
          version: ack.version,
          status: ACK_STATUS_NAMES[ack.status] ?? 'failed',
          ...(ack.message !== undefined ? { message: ack.message } : {}),
          ...(latencyMs !== undefined ? { latencyMs } : {}),
        },
        resolve,
      ),
    );
    this.answerLater(recorded, from, (err) => {
      if (err === null) return this.reply(dedupKey, plainResponse(ex, '2.04'), from);
      if (!(err instanceof StoreUnavailableError) && !(err instanceof NotFoundError)) this.opts.log?.error({ err, device }, 'recording an ack failed');
      const code = err instanceof HengeError && err.status === 503 ? '5.03' : err instanceof HengeError && err.status === 404 ? '4.04' : '5.00';
      if (code === '4.04') this.counters.notFound++; // removed meanwhile
      else if (code === '5.00') this.counters.requestErrors++; // 5.03 (the store refuses writes) shows in /readyz
      this.reply(dedupKey, plainResponse(ex, code), from);
    }, (err) => {
      throw err; // the batcher resolves every ack with an outcome; a rejection here is a bug
    });
  }

  private enroll(dedupKey: string | null, ex: Exchange, from: Peer, identity: string, payload: Buffer): void {
    const enroll = this.opts.enroll;
    if (!enroll) return;
    // Answered once the key is durable; a retransmission meanwhile waits for that answer.
    if (dedupKey) this.answered.remember(dedupKey, null);
    this.answerLater(
      enroll(identity, payload),
      from,
      (outcome) => {
        if ('refuse' in outcome) {
          if (outcome.refuse === '4.03') this.counters.forbidden++;
          return this.reply(dedupKey, plainResponse(ex, outcome.refuse, Buffer.from(outcome.message)), from);
        }
        this.reply(dedupKey, plainResponse(ex, '2.04', Buffer.from(encodeEnrolled(outcome)), ContentFormat.Cbor), from);
      },
      (err: unknown) => {
        this.opts.log?.error({ err, identity }, 'enrollment failed');
        this.reply(dedupKey, plainResponse(ex, err instanceof HengeError && err.status === 503 ? '5.03' : '5.00'), from);
      },
    );
  }

  private config(msg: CoapMessage, ex: Exchange, device: string, from: Peer): Buffer | undefined {
    const snap = this.core.state.snapshots.get(device);
    if (!snap) {
      this.counters.notFound++;
      return plainResponse(ex, '4.04');
    }
    const observeOpt = option(msg, 'Observe');
    const observe = observeOpt === undefined ? undefined : readUint(observeOpt);
    const blockOpt = option(msg, 'Block2');
    const block = blockOpt ? readBlock(blockOpt) : undefined;
    if (block?.szx === 7) {
      this.counters.badRequests++;
      return plainResponse(ex, '4.00', Buffer.from('Block2 SZX 7 is reserved'));
    }
    const etag = option(msg, 'ETag');
    // 2.03 only when the ETag is current AND the hub has the device's ack for this version: after the
    // store was rebuilt (new incarnation, same values) the device must still get the new snapshot.
    const current =
      etag !== undefined &&
      Buffer.compare(etag, Buffer.from(snap.snapshot.hash)) === 0 &&
      this.core.state.reports.get(device)?.appliedVersion === snap.snapshot.version;
    let observeValue: number | undefined;
    if (observe === 0 && (!block || block.num === 0)) {
      const { previous } = this.registry.register(device, from, msg.token);
      if (previous) this.counters.relationsEnded.replaced++;
      this.runtime.setObserving(device, true);
      this.checkDuplicate(device, peerKey(from));
      observeValue = this.registry.observeValue();
    } else if (observe === 1) {
      // Only the relation's own endpoint may end it: a replaced device stopping must not cut off the one
      // that now holds the relation. (RFC 7641 §3.6 also names the token; clients that use a fresh token
      // for the deregistering GET are common, so the endpoint decides.)
      const r = this.registry.relationOf(device);
      if (r && peerKey(r.peer) === peerKey(from)) this.registry.deregister(device, EndReason.Deregistered);
    }
    const response = configResponse({
      type: ex.type,
      messageId: ex.messageId,
      token: ex.token,
      snapshot: snap,
      maxAgeS: this.opts.keepaliveS,
      ...(observeValue !== undefined ? { observe: observeValue } : {}),
      ...(current && (!block || block.num === 0) ? { valid: true } : {}),
      ...(block ? { block: { num: block.num, szx: block.szx } } : {}),
    });
    if (response) return response;
    this.counters.badRequests++;
    return plainResponse(ex, '4.02', Buffer.from('block past the end'));
  }

  /** Two endpoints alternating for one device: recorded in its state and the log (DuplicateIdentityWatch). */
  private checkDuplicate(device: string, endpoint: string): void {
    const endpoints = this.duplicates.registered(device, endpoint);
    if (!endpoints) return;
    flagDuplicate(this.core, device, endpoints).catch((err: unknown) => {
      this.opts.log?.error({ err, device }, 'recording a duplicate identity failed');
    });
    this.opts.log?.warn({ device, endpoints }, 'two endpoints alternate for one device identity');
  }
}

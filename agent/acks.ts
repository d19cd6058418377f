/**
 * The agent's acks (docs/protocol.md, "Ack"): each is POSTed in the background, so the next snapshot is
 * handled while it is on its way, and newest ack first: a new ack abandons one of another version or
 * outcome still unanswered (and, through the host, a re-registration in flight). The last ack the hub has
 * not confirmed stays pending and goes again after the next registration.
 */
import { ACK_STATUS_NAMES, encodeAck } from '../protocol/ack.ts';
import type { Ack } from '../protocol/ack.ts';
import { ContentFormat } from '../protocol/coap.ts';
import { sameBytes } from './apply.ts';
import type { CoapClient } from './coap-client.ts';

export interface AckLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AckHost {
  readonly log: AckLog;
  /** `/d/{id}/a`. */
  readonly path: readonly string[];
  /** Called just before an ack goes out: a re-registration in flight yields to it. */
  beforeSend(): void;
  /** The hub answered 2.04 (the ack is recorded). */
  delivered(ack: Ack): Promise<void>;
  /** The exchange failed (no answer at all, an RST): the session ends and the agent reconnects. */
  failed(err: Error): void;
}

interface Flight {
  readonly ack: Ack;
  readonly controller: AbortController;
  done: Promise<void>;
}

export class AckSender {
  /** The last ack the hub has not confirmed yet. */
  private pendingAck: Ack | null = null;
  private flight: Flight | null = null;

  constructor(private readonly host: AckHost) {}

  get pending(): Ack | null {
    return this.pendingAck;
  }

  /** Settles once the ack on its way (if any) is answered, given up or abandoned. */
  get settled(): Promise<void> {
    return this.flight?.done ?? Promise.resolve();
  }

  /** Sends `ack` now; it is pending until the hub answers 2.04 (or refuses it with a 4.xx). */
  send(client: CoapClient, ack: Ack): void {
    this.pendingAck = ack;
    this.post(client, ack);
  }

  /** Sends the pending ack again, if there is one. */
  flush(client: CoapClient): void {
    if (this.pendingAck) this.post(client, this.pendingAck);
  }

  private post(client: CoapClient, ack: Ack): void {
    const prev = this.flight;
    if (prev && sameAck(prev.ack, ack)) return; // this very ack is on its way
    this.host.beforeSend();
    prev?.controller.abort();
    const controller = new AbortController();
    const flight: Flight = { ack, controller, done: Promise.resolve() };
    flight.done = (async () => {
      try {
        await this.exchange(client, ack, controller.signal);
      } catch (err) {
        if (!controller.signal.aborted) this.host.failed(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (this.flight === flight) this.flight = null;
      }
    })();
    this.flight = flight;
  }

  private async exchange(client: CoapClient, ack: Ack, signal: AbortSignal): Promise<void> {
    const { log } = this.host;
    const res = await client.request({ method: 'POST', path: [...this.host.path], contentFormat: ContentFormat.Cbor, payload: encodeAck(ack), signal });
    const fields = { version: ack.version, status: ACK_STATUS_NAMES[ack.status], code: res.code };
    if (res.code === '2.04') {
      if (this.pendingAck === ack) this.pendingAck = null;
      log.info(fields, 'ack delivered');
      await this.host.delivered(ack);
    } else if (res.code.startsWith('5.')) {
      log.warn(fields, 'the hub could not record the ack; sending it again after the next registration');
    } else {
      if (this.pendingAck === ack) this.pendingAck = null;
      log.error({ ...fields, why: res.payload.toString('utf8') }, 'the hub refused the ack');
    }
  }
}

/** The same ack: version, outcome, message and snapshot. */
function sameAck(a: Ack, b: Ack): boolean {
  const none = new Uint8Array(0);
  return a.version === b.version && a.status === b.status && a.message === b.message && sameBytes(a.hash ?? none, b.hash ?? none) && sameBytes(a.incarnation ?? none, b.incarnation ?? none);
}

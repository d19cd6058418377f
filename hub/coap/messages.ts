/** The CoAP messages the hub builds: config responses and notifications, plain responses. */
import { ContentFormat, MAX_BLOCK_SZX, MessageKind, OptionNumber, blockOption, blockSize, emptyMessage, encodeMessage } from '../../protocol/coap.ts';
import type { OptionValue } from '../../protocol/coap.ts';
import type { BuiltSnapshot } from '../domain/state.ts';

export const MessageType = {
  Con: 'con',
  Non: 'non',
  Ack: 'ack',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

interface Envelope {
  readonly type: MessageType;
  readonly messageId: number;
  readonly token: Buffer;
}

const kindOf = (t: MessageType): MessageKind => (t === MessageType.Con ? MessageKind.Con : t === MessageType.Ack ? MessageKind.Ack : MessageKind.Non);

const NO_OPTIONS: ReadonlyArray<readonly [number, OptionValue]> = [];

export function plainResponse(env: Envelope, code: string, payload?: Buffer, contentFormat?: number): Buffer {
  return encodeMessage({
    kind: kindOf(env.type),
    code,
    messageId: env.messageId,
    token: env.token,
    options: contentFormat !== undefined ? [[OptionNumber.ContentFormat, contentFormat]] : NO_OPTIONS,
    ...(payload ? { payload } : {}),
  });
}

export const emptyAck = (messageId: number): Buffer => emptyMessage(MessageKind.Ack, messageId);

export interface ConfigResponse extends Envelope {
  readonly snapshot: BuiltSnapshot;
  /** Observe sequence value, on registrations and notifications. */
  readonly observe?: number;
  readonly maxAgeS: number;
  /** 2.03 Valid (no payload) when the client's ETag is current. */
  readonly valid?: boolean;
  /** Which block to send, and in which size exponent (default: block 0 at the largest size). */
  readonly block?: { readonly num: number; readonly szx: number };
}

/** 2.05 (or 2.03) with the snapshot, block-wise (RFC 7959) when it does not fit one block. */
export function configResponse(r: ConfigResponse): Buffer | undefined {
  // Options in number order (ETag 4, Observe 6, Content-Format 12, Max-Age 14, Block2 23, Size2 28): no sort.
  const options: Array<readonly [number, OptionValue]> = [[OptionNumber.ETag, r.snapshot.snapshot.hash]];
  if (r.observe !== undefined) options.push([OptionNumber.Observe, r.observe]);
  const kind = kindOf(r.type);
  if (r.valid) {
    options.push([OptionNumber.MaxAge, r.maxAgeS]);
    return encodeMessage({ kind, messageId: r.messageId, token: r.token, code: '2.03', options });
  }
  options.push([OptionNumber.ContentFormat, ContentFormat.Cbor], [OptionNumber.MaxAge, r.maxAgeS]);
  const bytes = r.snapshot.bytes;
  const szx = Math.min(r.block?.szx ?? MAX_BLOCK_SZX, MAX_BLOCK_SZX);
  const size = blockSize(szx);
  const num = r.block?.num ?? 0;
  let payload: Uint8Array = bytes;
  if (bytes.length > size || num > 0 || r.block) {
    const start = num * size;
    if (start >= bytes.length && !(start === 0 && bytes.length === 0)) return undefined;
    const more = start + size < bytes.length;
    options.push([OptionNumber.Block2, blockOption({ num, more, szx })], [OptionNumber.Size2, bytes.length]);
    payload = bytes.subarray(start, start + size);
  }
  return encodeMessage({ kind, messageId: r.messageId, token: r.token, code: '2.05', options, payload });
}

/**
 * `/.well-known/core` (RFC 6690): the henge root, or with `?d=<id>` the device's three resources (4.04
 * for a device the hub does not know: `known` false).
 */
export function wellKnownResponse(env: Envelope, device: string | undefined, known: boolean): Buffer {
  if (device === undefined) return plainResponse(env, '2.05', Buffer.from('</d>;rt="henge.v1"'), ContentFormat.LinkFormat);
  if (!known) return plainResponse(env, '4.04');
  const links = [
    `</d/${device}/c>;rt="henge.config";obs;ct=${ContentFormat.Cbor}`,
    `</d/${device}/a>;rt="henge.ack";ct=${ContentFormat.Cbor}`,
    `</d/${device}/t>;rt="henge.telemetry";ct=${ContentFormat.Cbor}`,
  ].join(',');
  return plainResponse(env, '2.05', Buffer.from(links), ContentFormat.LinkFormat);
}

/** The CoAP messages the hub builds: config responses and notifications, plain responses. */
import { ContentFormat, MAX_BLOCK_SZX, MessageKind, OptionNumber, blockOption, blockSize, emptyMessage, encodeMessage, uintOption } from '../../protocol/coap.ts';
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
const CBOR_FORMAT = uintOption(ContentFormat.Cbor);

export function plainResponse(env: Envelope, code: string, payload?: Buffer, contentFormat?: number): Buffer {
  return encodeMessage({
    kind: kindOf(env.type),
    code,
    messageId: env.messageId,
    token: env.token,
    options: contentFormat !== undefined ? [[OptionNumber.ContentFormat, uintOption(contentFormat)]] : [],
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
  const options: Array<[number, Uint8Array]> = [];
  if (r.observe !== undefined) options.push([OptionNumber.Observe, uintOption(r.observe)]);
  options.push([OptionNumber.ETag, r.snapshot.snapshot.hash]);
  options.push([OptionNumber.MaxAge, uintOption(r.maxAgeS)]);
  const base = { kind: kindOf(r.type), messageId: r.messageId, token: r.token };
  if (r.valid) return encodeMessage({ ...base, code: '2.03', options });
  options.push([OptionNumber.ContentFormat, CBOR_FORMAT]);
  const bytes = r.snapshot.bytes;
  const szx = Math.min(r.block?.szx ?? MAX_BLOCK_SZX, MAX_BLOCK_SZX);
  const size = blockSize(szx);
  const num = r.block?.num ?? 0;
  let payload: Uint8Array = bytes;
  if (bytes.length > size || num > 0 || r.block) {
    const start = num * size;
    if (start >= bytes.length && !(start === 0 && bytes.length === 0)) return undefined;
    const more = start + size < bytes.length;
    options.push([OptionNumber.Block2, blockOption({ num, more, szx })]);
    options.push([OptionNumber.Size2, uintOption(bytes.length)]);
    payload = bytes.subarray(start, start + size);
  }
  return encodeMessage({ ...base, code: '2.05', options, payload });
}

/** The CoAP messages the hub builds: config responses and notifications, plain responses. */
import { ContentFormat, MAX_BLOCK_SZX, blockOption, blockSize, generateMessage, uintOption } from '../../protocol/coap.ts';
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

const flags = (t: MessageType) => ({ confirmable: t === MessageType.Con, ack: t === MessageType.Ack });

export function plainResponse(env: Envelope, code: string, payload?: Buffer, contentFormat?: number): Buffer {
  return generateMessage({
    ...flags(env.type),
    code,
    messageId: env.messageId,
    token: env.token,
    options: contentFormat !== undefined ? [{ name: 'Content-Format', value: uintOption(contentFormat) }] : [],
    ...(payload ? { payload } : {}),
  });
}

export function emptyAck(messageId: number): Buffer {
  return generateMessage({ code: '0.00', ack: true, messageId, token: Buffer.alloc(0) });
}

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
  const options: Array<{ name: string; value: Buffer }> = [];
  if (r.observe !== undefined) options.push({ name: 'Observe', value: uintOption(r.observe) });
  options.push({ name: 'ETag', value: Buffer.from(r.snapshot.snapshot.hash) });
  options.push({ name: 'Max-Age', value: uintOption(r.maxAgeS) });
  if (r.valid) return generateMessage({ ...flags(r.type), code: '2.03', messageId: r.messageId, token: r.token, options });
  options.push({ name: 'Content-Format', value: uintOption(ContentFormat.Cbor) });
  const bytes = r.snapshot.bytes;
  const szx = Math.min(r.block?.szx ?? MAX_BLOCK_SZX, MAX_BLOCK_SZX);
  const size = blockSize(szx);
  const num = r.block?.num ?? 0;
  let payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length > size || num > 0 || r.block) {
    const start = num * size;
    if (start >= bytes.length && !(start === 0 && bytes.length === 0)) return undefined;
    const more = start + size < bytes.length;
    options.push({ name: 'Block2', value: blockOption({ num, more, szx }) });
    options.push({ name: 'Size2', value: uintOption(bytes.length) });
    payload = payload.subarray(start, start + size);
  }
  return generateMessage({ ...flags(r.type), code: '2.05', messageId: r.messageId, token: r.token, options, payload });
}

/**
 * The CoAP datagrams a simulated device sends (docs/protocol.md), built with protocol/coap.ts: the
 * registration, its end, block requests, the ack POST, and empty ACK / RST.
 */
import { encodeAck } from '../protocol/ack.ts';
import type { Ack } from '../protocol/ack.ts';
import { ContentFormat, MessageKind, Method, blockOption, emptyMessage, generateMessage, uintOption } from '../protocol/coap.ts';
import { DEVICE_PREFIX, Resource } from '../protocol/paths.ts';

const PREFIX = Buffer.from(DEVICE_PREFIX);
const CONFIG = Buffer.from(Resource.Config);
const ACK = Buffer.from(Resource.Ack);
const CBOR = uintOption(ContentFormat.Cbor);

type Opt = { name: string; value: Buffer };

function path(id: string, resource: Buffer): Opt[] {
  return [
    { name: 'Uri-Path', value: PREFIX },
    { name: 'Uri-Path', value: Buffer.from(id) },
    { name: 'Uri-Path', value: resource },
  ];
}

/** `GET /d/{id}/c` with `Observe: 0` (register) or `1` (deregister), CON; the ETag of what it holds. */
export function observeRequest(id: string, mid: number, token: Buffer, observe: 0 | 1, etag: Uint8Array | null): Buffer {
  const options: Opt[] = [{ name: 'Observe', value: uintOption(observe) }, ...path(id, CONFIG)];
  if (etag) options.push({ name: 'ETag', value: Buffer.from(etag.buffer, etag.byteOffset, etag.byteLength) });
  return generateMessage({ confirmable: true, code: Method.Get, messageId: mid, token, options });
}

/** `GET /d/{id}/c` with `Block2: NUM=num, SZX=szx` and no Observe: the next block of a snapshot. */
export function blockRequest(id: string, mid: number, token: Buffer, num: number, szx: number): Buffer {
  const options: Opt[] = [...path(id, CONFIG), { name: 'Block2', value: blockOption({ num, more: false, szx }) }];
  return generateMessage({ confirmable: true, code: Method.Get, messageId: mid, token, options });
}

/** `POST /d/{id}/a` with the CBOR ack, CON. */
export function ackRequest(id: string, mid: number, token: Buffer, ack: Ack): Buffer {
  const payload = encodeAck(ack);
  const options: Opt[] = [...path(id, ACK), { name: 'Content-Format', value: CBOR }];
  return generateMessage({
    confirmable: true,
    code: Method.Post,
    messageId: mid,
    token,
    options,
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
  });
}

export const emptyAck = (mid: number): Buffer => emptyMessage(MessageKind.Ack, mid);

export const reset = (mid: number): Buffer => emptyMessage(MessageKind.Rst, mid);

/**
 * Block2 reassembly (RFC 7959, docs/protocol.md "Block-wise transfer"): the first block comes in a
 * response or notification; the rest are fetched with GET + Block2 (no Observe), and every block's ETag
 * must equal the first one's. When it differs the representation changed meanwhile: start again from
 * block 0 of the current one.
 */
import { blockSize, option, readBlock } from '../protocol/coap.ts';
import type { CoapMessage } from '../protocol/coap.ts';
import { BlockTransferError, CoapResponseError } from './errors.ts';
import type { CoapClient } from './coap-client.ts';

/** A snapshot is at most 256 fields of at most 4 KB: anything far larger is not one. */
export const MAX_REPRESENTATION_BYTES = 2 * 1024 * 1024;
export const MAX_RESTARTS = 5;

export interface Representation {
  readonly payload: Buffer;
  readonly etag: Buffer | undefined;
  /** The message that carried block 0 (the first one, or the one of the last restart). */
  readonly first: CoapMessage;
  readonly blocks: number;
  readonly restarts: number;
}

function sameEtag(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}

/** The whole representation whose first part `first` carries; fetches the other blocks from `path`. */
export async function fetchRepresentation(client: CoapClient, path: readonly string[], first: CoapMessage): Promise<Representation> {
  let head = first;
  let restarts = 0;
  for (;;) {
    const b2 = option(head, 'Block2');
    if (!b2) return { payload: head.payload, etag: option(head, 'ETag'), first: head, blocks: 1, restarts };
    const block0 = readBlock(b2);
    if (block0.num !== 0) {
      head = await fetchBlock(client, path, 0, block0.szx);
      if (++restarts > MAX_RESTARTS) throw new BlockTransferError(`block-wise transfer of /${path.join('/')} did not start at block 0`);
      continue;
    }
    const etag = option(head, 'ETag');
    const parts: Buffer[] = [head.payload];
    let offset = head.payload.length;
    let more = block0.more;
    let szx = block0.szx;
    if (more && head.payload.length !== blockSize(szx)) throw new BlockTransferError(`block 0 holds ${head.payload.length} bytes, not ${blockSize(szx)}`);
    let blocks = 1;
    let changed = false;
    while (more) {
      const num = offset / blockSize(szx);
      const res = await fetchBlock(client, path, num, szx);
      if (!sameEtag(option(res, 'ETag'), etag)) {
        changed = true;
        // The representation changed meanwhile: start again from block 0 of the current one.
        head = await fetchBlock(client, path, 0, szx);
        break;
      }
      const rb = option(res, 'Block2');
      if (!rb) throw new BlockTransferError(`block ${num} of /${path.join('/')} came without a Block2 option`);
      const b = readBlock(rb);
      // The hub may answer with a smaller block than asked (RFC 7959 §2.3); it must start where we are.
      if (b.num * blockSize(b.szx) !== offset) throw new BlockTransferError(`asked for the block at byte ${offset}, got block ${b.num} of ${blockSize(b.szx)} bytes`);
      if (b.more && res.payload.length !== blockSize(b.szx)) throw new BlockTransferError(`block ${b.num} holds ${res.payload.length} bytes, not ${blockSize(b.szx)}`);
      szx = b.szx;
      parts.push(res.payload);
      offset += res.payload.length;
      more = b.more;
      blocks++;
      if (offset > MAX_REPRESENTATION_BYTES) throw new BlockTransferError(`/${path.join('/')} is larger than ${MAX_REPRESENTATION_BYTES} bytes`);
    }
    if (!changed) return { payload: Buffer.concat(parts), etag, first: head, blocks, restarts };
    if (++restarts > MAX_RESTARTS) throw new BlockTransferError(`/${path.join('/')} kept changing during a block-wise transfer (${MAX_RESTARTS} restarts)`);
  }
}

async function fetchBlock(client: CoapClient, path: readonly string[], num: number, szx: number): Promise<CoapMessage> {
  const res = await client.request({ method: 'GET', path, block2: { num, more: false, szx } });
  // 4.02 for a block past the end: the representation shrank; block 0 of the new one is what we need.
  if (res.code === '4.02' && num > 0) return fetchBlock(client, path, 0, szx);
  if (res.code !== '2.05') throw new CoapResponseError(`GET /${path.join('/')} block ${num}: ${res.code}`, res.code);
  return res;
}

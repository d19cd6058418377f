/**
 * Hostile datagrams for fault scenario 4, built byte by byte (not through a CoAP library, which would
 * refuse to write most of them). Each has a kind, and each kind the counter of /metrics that must count
 * it. Deterministic for a seed.
 */

export const HostileKind = {
  /** Fewer than 4 bytes, or a version other than 1: not CoAP. */
  Short: 'short',
  BadVersion: 'bad-version',
  /** Token length 9-15 (reserved). */
  BadTokenLength: 'bad-token-length',
  /** An option header with delta or length nibble 15 that is not the payload marker. */
  ReservedNibble: 'reserved-nibble',
  /** An option whose length runs past the end of the datagram. */
  TruncatedOption: 'truncated-option',
  /** Delta 14 with an extension that carries the option number past 65535. */
  HugeDelta: 'huge-delta',
  /** An ack POST whose payload is not CBOR. */
  BadCbor: 'bad-cbor',
  /** GET with Block2 past the snapshot's end, or SZX 7. */
  OversizedBlock2: 'oversized-block2',
  /** A well-formed GET with a token of 0-8 bytes for a device the hub does not have. */
  UnknownDevice: 'unknown-device',
  /** An ACK, RST or response the hub never asked for. */
  Stray: 'stray',
  /** A valid request with random bytes changed: any outcome but a crash. */
  Mutated: 'mutated',
  /** Random bytes: any outcome but a crash. */
  Random: 'random',
} as const;
export type HostileKind = (typeof HostileKind)[keyof typeof HostileKind];

/** The counter (a suffix of henge_coap_*) that must count each datagram of a kind, or null when any outcome goes. */
export const COUNTED_BY: Readonly<Record<HostileKind, 'malformed' | 'bad_requests' | 'not_found' | 'ignored' | null>> = {
  short: 'malformed',
  'bad-version': 'malformed',
  'bad-token-length': 'malformed',
  'reserved-nibble': 'malformed',
  'truncated-option': 'malformed',
  'huge-delta': 'malformed',
  'bad-cbor': 'bad_requests',
  'oversized-block2': 'bad_requests',
  'unknown-device': 'not_found',
  stray: 'ignored',
  mutated: null,
  random: null,
};

const KINDS = Object.values(HostileKind);

function optionHeader(delta: number, length: number): number[] {
  const nib = (n: number): [number, number[]] => (n < 13 ? [n, []] : n < 269 ? [13, [n - 13]] : [14, [((n - 269) >> 8) & 0xff, (n - 269) & 0xff]]);
  const [d, dx] = nib(delta);
  const [l, lx] = nib(length);
  return [(d << 4) | l, ...dx, ...lx];
}

/** Uri-Path options for segments, from option number 0. */
function uriPath(segments: readonly string[]): { bytes: number[]; last: number } {
  const out: number[] = [];
  let last = 0;
  for (const s of segments) {
    const b = [...Buffer.from(s)];
    out.push(...optionHeader(11 - last, b.length), ...b);
    last = 11;
  }
  return { bytes: out, last };
}

export class HostileGenerator {
  private mid = 1;

  constructor(
    private readonly random: () => number,
    /** A device the hub has and no real device uses: target of the well-formed hostile requests. */
    private readonly target: string,
  ) {}

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private bytes(n: number): number[] {
    return Array.from({ length: n }, () => this.int(256));
  }

  private header(type: number, tkl: number, code: number): number[] {
    this.mid = (this.mid + 1) & 0xffff;
    return [0x40 | (type << 4) | tkl, code, this.mid >> 8, this.mid & 0xff, ...this.bytes(Math.min(tkl, 8))];
  }

  /** A well-formed GET /d/{target}/c (Observe 0), for mutation. */
  private validGet(): number[] {
    const tkl = this.int(9);
    const path = uriPath(['d', this.target, 'c']);
    return [...this.header(0, tkl, 0x01), ...optionHeader(6, 1), 0, ...path.bytes];
  }

  next(): { kind: HostileKind; bytes: Buffer } {
    const kind = KINDS[this.int(KINDS.length)] ?? HostileKind.Random;
    return { kind, bytes: Buffer.from(this.build(kind)) };
  }

  private build(kind: HostileKind): number[] {
    switch (kind) {
      case HostileKind.Short:
        return this.bytes(this.int(4));
      case HostileKind.BadVersion: {
        const b = this.validGet();
        b[0] = ((b[0] ?? 0) & 0x3f) | ([0, 2, 3][this.int(3)] ?? 0) << 6;
        return b;
      }
      case HostileKind.BadTokenLength:
        return [0x40 | (this.int(2) << 4) | (9 + this.int(7)), 0x01, this.int(256), this.int(256), ...this.bytes(this.int(20))];
      case HostileKind.ReservedNibble: {
        const h = this.header(0, this.int(9), 0x01);
        // 0xF? with ? != F is a reserved delta; 0x?F with ? < 15 a reserved length.
        const bad = this.random() < 0.5 ? 0xf0 | this.int(15) : (this.int(15) << 4) | 0x0f;
        return [...h, bad, ...this.bytes(this.int(8))];
      }
      case HostileKind.TruncatedOption: {
        const h = this.header(0, this.int(9), 0x01);
        const claimed = 20 + this.int(1000);
        return [...h, ...optionHeader(11, claimed), ...this.bytes(this.int(claimed))];
      }
      case HostileKind.HugeDelta: {
        const h = this.header(0, this.int(9), 0x01);
        // Delta 14 with an extension past 0xfef2: an option number over 65535 (RFC 7252 §3.1 numbers are 16 bits).
        const ext = 0xfef3 + this.int(0xffff - 0xfef3 + 1);
        const len = this.int(3);
        return [...h, 0xe0 | len, ext >> 8, ext & 0xff, ...this.bytes(len)];
      }
      case HostileKind.BadCbor: {
        const h = this.header(0, this.int(9), 0x02); // POST
        const path = uriPath(['d', this.target, 'a']);
        // Content-Format 60 (option 12), then a payload starting with a reserved CBOR head (additional info 28-30).
        const payload = [(this.int(8) << 5) | (28 + this.int(3)), ...this.bytes(this.int(40))];
        return [...h, ...path.bytes, ...optionHeader(12 - path.last, 1), 60, 0xff, ...payload];
      }
      case HostileKind.OversizedBlock2: {
        const h = this.header(0, this.int(9), 0x01);
        const path = uriPath(['d', this.target, 'c']);
        const szx = this.random() < 0.3 ? 7 : this.int(7);
        const num = 4096 + this.int((1 << 20) - 4096); // far past any snapshot of this device; NUM has 20 bits in 3 bytes
        const v = (num << 4) | szx;
        // Block2 is option 23: a 3-byte value.
        return [...h, ...path.bytes, ...optionHeader(23 - path.last, 3), (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
      }
      case HostileKind.UnknownDevice: {
        const h = this.header(this.int(2), this.int(9), 0x01);
        return [...h, ...uriPath(['d', `ghost-${this.int(1e6)}`, 'c']).bytes];
      }
      case HostileKind.Stray: {
        const r = this.int(3);
        if (r === 0) return this.header(2, 0, 0x00).slice(0, 4); // empty ACK, unknown message id
        if (r === 1) return this.header(3, 0, 0x00).slice(0, 4); // empty RST
        return [...this.header(this.int(4), this.int(9), 0x45), 0xff, ...this.bytes(1 + this.int(30))]; // a 2.05 response
      }
      case HostileKind.Mutated: {
        const b = this.validGet();
        for (let i = 0, n = 1 + this.int(4); i < n; i++) b[this.int(b.length)] = this.int(256);
        if (this.random() < 0.3) b.length = Math.max(0, b.length - 1 - this.int(b.length));
        return b;
      }
      case HostileKind.Random:
        return this.bytes(this.int(200));
    }
  }
}

/**
 * Random and mutated DTLS records: handshake-looking headers with random bodies, short ones, empty ones;
 * and, given a real ClientHello, that ClientHello as is (the hub must answer it with a cookie and keep
 * nothing) or with a few bytes changed.
 */
export function hostileDtls(random: () => number, clientHello: Buffer | null = null): Buffer {
  const int = (n: number): number => Math.floor(random() * n);
  const r = int(clientHello ? 6 : 4);
  if (clientHello && r >= 4) {
    const b = Buffer.from(clientHello);
    if (r === 5) for (let i = 0, n = 1 + int(3); i < n; i++) b[int(b.length)] = int(256);
    return b;
  }
  if (r === 0) return Buffer.alloc(0);
  if (r === 1) return Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256)));
  // A record header: content type (handshake 22 mostly), DTLS 1.2 or 1.0, epoch, sequence, a length that may lie.
  const body = Array.from({ length: int(400) }, () => int(256));
  const len = random() < 0.5 ? body.length : int(0x10000);
  const version = random() < 0.8 ? [0xfe, 0xfd] : [0xfe, 0xff];
  return Buffer.from([[22, 20, 21, 23][int(4)] ?? 22, ...version, 0, int(2), 0, 0, 0, 0, int(256), int(256), len >> 8, len & 0xff, ...(r === 2 ? [1, 0, 0, int(256)] : []), ...body]);
}

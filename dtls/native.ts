/**
 * The DTLS addon (native/henge_dtls.c): OpenSSL's DTLS 1.2 with pre-shared keys, bound through N-API. It is
 * built by `npm ci` (scripts/build-native.mjs, node-gyp against the headers Node ships) and resolves
 * OpenSSL from the node binary itself. This module only loads it and types it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const SessionState = {
  Handshaking: 0,
  Open: 1,
  Closed: 2,
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

/** An opaque native handle. */
export interface NativeHandle {
  readonly __native: unique symbol;
}

export interface SessionResult {
  /** Datagrams to send to the peer, in order. */
  readonly out: Buffer[];
  /** Application data received (one CoAP datagram each). */
  readonly data: Buffer[];
  readonly state: SessionState;
  /** When the handshake wants `timeout()` called, ms from now; -1 for never. */
  readonly timeoutMs: number;
  /** The PSK identity the peer proved, once open. */
  readonly identity: string | null;
  /** Why the session failed or closed, from OpenSSL. */
  readonly error: string | null;
}

export interface ListenResult {
  readonly out: Buffer[];
  /** Only for a ClientHello carrying a cookie this server made for that peer. */
  readonly session: NativeHandle | null;
  readonly state?: SessionState;
  readonly timeoutMs?: number;
  readonly error?: string | null;
}

export interface ServerOptions {
  /** OpenSSL cipher list, e.g. `PSK-AES128-CCM8:PSK-AES128-GCM-SHA256`. */
  readonly ciphers: string;
  /** The key for a PSK identity, or null when there is none (the handshake then fails). Called synchronously. */
  readonly pskLookup: (identity: string) => Buffer | null;
  /** Link MTU, bytes (default 1280). */
  readonly mtu?: number;
}

export interface ClientOptions {
  readonly ciphers: string;
  /** The PSK identity (a device id). */
  readonly identity: string;
  /** The PSK: the ASCII bytes of the device's key text. */
  readonly key: Buffer;
  readonly mtu?: number;
}

export interface DtlsAddon {
  readonly openssl: string;
  createServer(opts: ServerOptions): NativeHandle;
  listen(server: NativeHandle, peerKey: string, datagram: Buffer): ListenResult;
  /** The plaintext alone (a Buffer) for the usual datagram of one record on an open session; else the full result. */
  feed(session: NativeHandle, datagram: Buffer): SessionResult | Buffer;
  /** The datagram alone (a Buffer) for the usual one-record write; else the full result (an error, several datagrams). */
  write(session: NativeHandle, plaintext: Buffer): SessionResult | Buffer;
  timeout(session: NativeHandle): SessionResult;
  close(session: NativeHandle): Buffer[];
  /** A client session; `out` holds its ClientHello. */
  createClient(opts: ClientOptions): SessionResult & { readonly session: NativeHandle };
}

export class DtlsUnavailableError extends Error {
  readonly code = 'HENGE_E_DTLS_UNAVAILABLE';
}

const ADDON_PATH = fileURLToPath(new URL('./build/Release/henge_dtls.node', import.meta.url));

let addon: DtlsAddon | undefined;

/** The addon, loaded once; throws DtlsUnavailableError when it was not built. */
export function loadDtls(): DtlsAddon {
  if (addon) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new DtlsUnavailableError(`the DTLS addon is not built (${ADDON_PATH}): run \`npm run build:native\` (needs make and a C compiler)`);
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as DtlsAddon;
  } catch (cause) {
    throw new DtlsUnavailableError(`the DTLS addon at ${ADDON_PATH} does not load: ${(cause as Error).message}`, { cause });
  }
  return addon;
}

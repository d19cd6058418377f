/**
 * A small client for the hub's REST API; every failure becomes a CliError with an exit code.
 *
 * Over https the hub's certificate is checked before a byte of any request (and so the token) is sent:
 * the agent makes the TLS connection itself, verifies it on `secureConnect`, and only then hands the
 * socket to the request. Trust is a CA file (`--ca`), a pinned SHA-256 fingerprint (`--fingerprint`, or
 * the one `henge hub` wrote to the CLI config), or else the system's CAs.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequestArgs, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { ExitCode } from './exit.ts';
import { CliError } from './exit.ts';

/** How the CLI decides that an https hub is the right one. */
export type Trust =
  /** A CA (or the hub's own certificate) in PEM; the usual chain and hostname checks apply. */
  | { readonly kind: 'ca'; readonly pem: string; readonly source: string }
  /** Exactly the certificate with this SHA-256 fingerprint, whatever its chain or names. */
  | { readonly kind: 'fingerprint'; readonly fingerprint: string; readonly source: string }
  /** The system's CAs, with the hostname check. */
  | { readonly kind: 'system' };

export interface Connection {
  readonly url: string;
  readonly token: string | undefined;
  readonly reason?: string;
  /** For https URLs; the system's CAs when left out. */
  readonly trust?: Trust;
}

interface ApiErrorBody {
  code?: string;
  message?: string;
  details?: { violations?: Array<{ field: string; rule: string; message: string; device?: string }>; total?: number };
}

/**
 * `AB:CD:…` (64 hex digits, upper case, colons), as `openssl x509 -fingerprint -sha256` and the hub's banner
 * print it; accepts it with or without colons, in any case, with an optional `sha256:` prefix. Null if malformed.
 */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.trim().replace(/^sha-?256[:=]/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)?.join(':') ?? null;
}

function exitCodeFor(status: number, code: string | undefined): number {
  if (status === 401 || status === 403) return ExitCode.Unauthorized;
  if (status === 404) return ExitCode.NotFound;
  if (status === 503) return ExitCode.Unavailable;
  if (status >= 400 && status < 500) return code === 'HENGE_E_ALREADY_EXISTS' || code === 'HENGE_E_SCHEMA_CONFLICT' ? ExitCode.Conflict : ExitCode.Invalid;
  return ExitCode.Failure;
}

const CONNECT_TIMEOUT_MS = 10_000;

const HOW_TO_TRUST = 'compare it with the fingerprint the hub printed at start (or `openssl x509 -noout -fingerprint -sha256 -in <data>/tls/cert.pem` on the hub); then trust it with --fingerprint <sha256> (or HENGE_FINGERPRINT), or --ca <the hub\'s cert.pem or its CA> (or HENGE_CA)';

/**
 * An https agent whose connections are verified before the request gets them. With keep-alive, later requests
 * reuse a verified connection.
 */
class VerifyingAgent extends HttpsAgent {
  constructor(
    private readonly url: string,
    private readonly trust: Trust,
  ) {
    super({ keepAlive: true });
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const host = options.host ?? options.hostname ?? 'localhost';
    const port = Number(options.port ?? 443);
    const socket = tlsConnect({
      host,
      port,
      // SNI takes names only; the hostname check still uses `host`.
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['http/1.1'],
      // Checked below, before the request is written, so that a refusal can name what the hub presented.
      rejectUnauthorized: false,
      ...(this.trust.kind === 'ca' ? { ca: this.trust.pem } : {}),
    });
    const failed = (err: Error): void => callback?.(err, socket);
    socket.once('error', failed);
    // A hub that takes the connection but never finishes the handshake is given up on, as fetch did.
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error(`no TLS handshake within ${CONNECT_TIMEOUT_MS / 1000} s`)));
    socket.once('secureConnect', () => {
      socket.off('error', failed);
      socket.setTimeout(0);
      const refusal = this.refusal(socket.getPeerCertificate().fingerprint256 ?? '(none)', socket.authorized, socket.authorizationError);
      if (refusal) {
        socket.destroy();
        callback?.(refusal, socket);
        return;
      }
      callback?.(null, socket);
    });
    return undefined;
  }

  private refusal(seen: string, authorized: boolean, why: Error | null): CliError | null {
    const t = this.trust;
    if (t.kind === 'fingerprint') {
      if (seen === t.fingerprint) return null;
      return new CliError(
        `the hub at ${this.url} presented a certificate with SHA-256 fingerprint ${seen}, not the one pinned by ${t.source} (${t.fingerprint}); ` +
          `nothing was sent. If the hub's certificate changed on purpose, ${HOW_TO_TRUST}`,
        ExitCode.Unavailable,
      );
    }
    if (authorized) return null;
    const reason = why === null ? 'unknown reason' : String((why as Error & { code?: string }).code ?? why.message ?? why);
    return new CliError(
      `the hub at ${this.url} presented a certificate that ${t.kind === 'ca' ? `${t.source} does not vouch for` : 'no system CA vouches for'} (${reason}); SHA-256 fingerprint ${seen}. ` +
        `Nothing was sent. If this is your hub, ${HOW_TO_TRUST}`,
      ExitCode.Unavailable,
    );
  }
}

interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  readonly text: string;
}

export class HubClient {
  private readonly agent: HttpAgent;
  private readonly base: URL;

  constructor(readonly conn: Connection) {
    let base: URL;
    try {
      base = new URL(conn.url);
    } catch {
      throw new CliError(`not a URL: ${conn.url} (use http://host:port or https://host:port)`, ExitCode.Usage);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError(`the hub URL must be http:// or https://, got ${conn.url}`, ExitCode.Usage);
    this.base = base;
    this.agent = base.protocol === 'https:' ? new VerifyingAgent(conn.url, conn.trust ?? { kind: 'system' }) : new HttpAgent({ keepAlive: true });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.conn.token) headers['authorization'] = `Bearer ${this.conn.token}`;
    if (this.conn.reason) headers['x-henge-reason'] = encodeURIComponent(this.conn.reason);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    let res: RawResponse;
    try {
      res = await this.send(method, new URL(path, this.base), headers, payload);
    } catch (cause) {
      if (cause instanceof CliError) throw cause;
      throw new CliError(`cannot reach the hub at ${this.conn.url} (${(cause as Error).message})${this.hint(cause as NodeJS.ErrnoException)}`, ExitCode.Unavailable);
    }
    let json: unknown;
    try {
      json = res.text === '' ? {} : JSON.parse(res.text);
    } catch {
      json = { message: res.text };
    }
    if (res.status < 200 || res.status > 299) {
      const e = json as ApiErrorBody;
      const lines = [`${e.code ?? `HTTP ${res.status}`}: ${e.message ?? res.statusText}`];
      for (const v of e.details?.violations ?? []) lines.push(`  ${v.device ? `${v.device}: ` : ''}${v.field} [${v.rule}] ${v.message}`);
      if (e.details?.total !== undefined && e.details.total > (e.details.violations?.length ?? 0)) {
        lines.push(`  ... ${e.details.total - (e.details.violations?.length ?? 0)} more`);
      }
      if (res.status === 401 && !this.conn.token) lines.push('  no token: pass --token, set HENGE_TOKEN, or run on the hub machine (henge hub writes the CLI config)');
      throw new CliError(lines.join('\n'), exitCodeFor(res.status, e.code), json);
    }
    return json as T;
  }

  private send(method: string, url: URL, headers: Record<string, string>, payload: string | undefined): Promise<RawResponse> {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.agent }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.once('error', reject);
      req.end(payload);
    });
  }

  private hint(err: NodeJS.ErrnoException): string {
    if (this.base.protocol === 'https:' && (err.code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))) {
      return '; the hub seems to serve plain HTTP here: use an http:// URL';
    }
    if (this.base.protocol === 'http:' && err.code === 'ECONNRESET') return '; if the hub serves HTTPS, use an https:// URL';
    return '; is `henge hub` running? Set --url or HENGE_URL';
  }
}

/** A small HTTP client for the hub's REST API; every failure becomes a CliError with an exit code. */
import { ExitCode } from './exit.ts';
import { CliError } from './exit.ts';

export interface Connection {
  readonly url: string;
  readonly token: string | undefined;
  readonly reason?: string;
}

interface ApiErrorBody {
  code?: string;
  message?: string;
  details?: { violations?: Array<{ field: string; rule: string; message: string; device?: string }>; total?: number };
}

function exitCodeFor(status: number, code: string | undefined): number {
  if (status === 401 || status === 403) return ExitCode.Unauthorized;
  if (status === 404) return ExitCode.NotFound;
  if (status === 503) return ExitCode.Unavailable;
  if (status >= 400 && status < 500) return code === 'HENGE_E_ALREADY_EXISTS' || code === 'HENGE_E_SCHEMA_CONFLICT' ? ExitCode.Conflict : ExitCode.Invalid;
  return ExitCode.Failure;
}

export class HubClient {
  constructor(readonly conn: Connection) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.conn.token) headers['authorization'] = `Bearer ${this.conn.token}`;
    if (this.conn.reason) headers['x-henge-reason'] = encodeURIComponent(this.conn.reason);
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.conn.url), { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (cause) {
      throw new CliError(`cannot reach the hub at ${this.conn.url} (${(cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message}); is \`henge hub\` running? Set --url or HENGE_URL`, ExitCode.Unavailable);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = { message: text };
    }
    if (!res.ok) {
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
}

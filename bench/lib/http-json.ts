/** JSON requests over one keep-alive node:http connection (no fetch: its lazy undici load would skew timings). */
import { Agent, request } from 'node:http';

export interface JsonReply<T> {
  readonly status: number;
  readonly body: T;
}

export class JsonClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly base: URL;

  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = new URL(url);
  }

  request<T>(method: string, path: string, body?: unknown): Promise<JsonReply<T>> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (text !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(text);
    }
    return new Promise((resolve, reject) => {
      const req = request({ agent: this.agent, host: this.base.hostname, port: this.base.port, method, path, headers }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: (data === '' ? {} : JSON.parse(data)) as T });
          } catch (err) {
            reject(new Error(`${method} ${path}: reply is not JSON (${String(res.statusCode)}): ${data.slice(0, 200)}`, { cause: err }));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(text);
    });
  }

  /** Like request(), but a non-2xx reply is an error naming the status and body. */
  async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request<T>(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}

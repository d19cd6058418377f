/** Bearer-token auth for every route but the health checks and the API description. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError, ValidationError } from '../errors.ts';
import { verifyToken } from '../domain/index.ts';
import type { CommandContext, HubCore } from '../domain/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the token that authenticated the request. */
    actor: string;
  }
}

const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json']);
const isPublic = (url: string): boolean => {
  const path = url.split('?')[0] ?? '';
  return PUBLIC_PATHS.has(path) || path === '/docs' || path.startsWith('/docs/');
};

/**
 * Tokens already verified, so a client's every request does not pay for SHA-256: presented token ->
 * token id. Revocation is still checked on every request against the live token record.
 */
const VERIFIED_CACHE_MAX = 1024;

export function installAuth(app: FastifyInstance, core: HubCore): void {
  const verified = new Map<string, string>();
  const lookup = (id: string) => core.state.tokens.get(id);
  const authenticate = (presented: string) => {
    const id = verified.get(presented);
    if (id !== undefined) {
      const record = lookup(id);
      if (record && record.revokedAt === null) return record;
      verified.delete(presented);
      return undefined;
    }
    const record = verifyToken(presented, lookup);
    if (record) {
      if (verified.size >= VERIFIED_CACHE_MAX) verified.clear();
      verified.set(presented, record.id);
    }
    return record;
  };
  app.decorateRequest('actor', '');
  app.addHook('onRequest', async (req) => {
    if (isPublic(req.url)) return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const record = m?.[1] ? authenticate(m[1]) : undefined;
    if (!record) {
      req.log.warn({ reason: header ? 'invalid or revoked token' : 'no token', ip: req.ip }, 'authentication failed');
      throw new UnauthorizedError(header ? 'the token is invalid or revoked' : 'send an admin token: Authorization: Bearer <token>');
    }
    req.actor = record.name;
  });
}

/** The reason header, recorded with the events a request makes. */
export const REASON_HEADER = 'x-henge-reason';

export function commandContext(req: FastifyRequest): CommandContext {
  const raw = req.headers[REASON_HEADER];
  const reason = Array.isArray(raw) ? raw.join(' ') : raw;
  if (reason !== undefined && reason.length > 500) {
    throw new ValidationError(`${REASON_HEADER} is longer than 500 characters`, {
      violations: [{ field: `headers.${REASON_HEADER}`, rule: 'maxLength', message: 'at most 500 characters' }],
    });
  }
  if (!reason) return { actor: req.actor };
  // Clients percent-encode the header (it may hold any text); a bare `%` is kept as sent.
  let text = reason;
  try {
    text = decodeURIComponent(reason);
  } catch {
    text = reason;
  }
  return { actor: req.actor, reason: text };
}

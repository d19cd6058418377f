/** Bearer-token auth for every route but the health checks and the API description. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, RateLimitedError, UnauthorizedError, ValidationError } from '../errors.ts';
import type { FailureBudget } from '../security/failure-budget.ts';
import { verifyToken } from '../domain/index.ts';
import { recordAuthFailure } from '../domain/index.ts';
import type { CommandContext, HubCore } from '../domain/index.ts';
import type { TokenRecord } from '../domain/state.ts';
import { TokenRole } from '../domain/tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the token that authenticated the request. */
    actor: string;
    /** Its role. */
    role: TokenRole;
  }
}

const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json']);
export const isPublic = (url: string): boolean => {
  const path = url.split('?')[0] ?? '';
  return PUBLIC_PATHS.has(path) || path === '/docs' || path.startsWith('/docs/');
};

/**
 * Tokens already verified, so a client's every request does not pay for SHA-256: presented token ->
 * token id. Revocation is still checked on every request against the live token record.
 */
const VERIFIED_CACHE_MAX = 1024;

export interface TokenVerifier {
  /** The token record for a presented token, when valid and not revoked (expiry is checked by the caller). */
  authenticate(presented: string): TokenRecord | undefined;
}

const bearerOf = (header: string | undefined): string | undefined => (header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined);

export function createVerifier(core: HubCore): TokenVerifier {
  const verified = new Map<string, string>();
  const lookup = (id: string) => core.state.tokens.get(id);
  const authenticate = (presented: string): TokenRecord | undefined => {
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
  return { authenticate };
}

/** Records an auth failure as an event (never the presented token); the failure budget bounds how many. */
function audit(core: HubCore, req: FastifyRequest, reason: string): void {
  recordAuthFailure(core, { ip: req.ip, reason, method: req.method, path: (req.url.split('?')[0] ?? '').slice(0, 200) }).catch((err: unknown) => {
    req.log.error({ err }, 'recording an auth failure failed');
  });
}

export function installAuth(app: FastifyInstance, core: HubCore, verifier: TokenVerifier, budget: FailureBudget): void {
  const { authenticate } = verifier;
  /** A failure: counted against the address and audited; returns `err` for the caller to throw. */
  const refuse = (req: FastifyRequest, reason: string, err: Error): Error => {
    budget.fail(req.ip);
    audit(core, req, reason);
    return err;
  };
  app.decorateRequest('actor', '');
  app.decorateRequest('role', TokenRole.Viewer);
  // preParsing, not onRequest: the rate limiter's per-route onRequest hook must count the request first
  // (global hooks run before route hooks of the same stage); still before any body is parsed.
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (isPublic(req.url)) return payload;
    const waitMs = budget.waitMs(req.ip);
    if (waitMs > 0) {
      const s = Math.ceil(waitMs / 1000);
      throw new RateLimitedError(`too many failed authentications from this address; try again in ${s} s`, { retryAfterS: s });
    }
    const header = req.headers.authorization;
    const presented = bearerOf(header);
    const record = presented ? authenticate(presented) : undefined;
    if (!record) {
      const reason = header ? 'invalid or revoked token' : 'no token';
      req.log.warn({ reason, ip: req.ip }, 'authentication failed');
      throw refuse(req, reason, new UnauthorizedError(header ? 'the token is invalid or revoked' : 'send a token: Authorization: Bearer <token>'));
    }
    if (record.expiresAt !== null && record.expiresAt <= Date.now()) {
      req.log.warn({ reason: 'expired token', token: record.id, ip: req.ip }, 'authentication failed');
      throw refuse(req, `expired token ${record.id}`, new UnauthorizedError(`token ${record.id} (${record.name}) expired on ${new Date(record.expiresAt).toISOString()}: ask an admin for a new one`, { token: record.id }));
    }
    req.actor = record.name;
    req.role = record.role;
    return payload;
  });
  app.addHook('preHandler', async (req) => {
    if (isPublic(req.url)) return;
    const needed = roleFor(req.method, req.routeOptions.url ?? req.url);
    if (!allows(req.role, needed)) {
      req.log.warn({ token: req.actor, role: req.role, needed, method: req.method, route: req.routeOptions.url }, 'forbidden');
      throw refuse(req, `a ${req.role} token (${req.actor}) needs ${needed}`, new ForbiddenError(`a ${req.role} token may not ${req.method} ${req.routeOptions.url ?? req.url}: it needs ${needed}`, { role: req.role, needed }));
    }
  });
}

const RANK: Readonly<Record<TokenRole, number>> = { viewer: 0, operator: 1, admin: 2 };
const allows = (have: TokenRole, need: TokenRole): boolean => RANK[have] >= RANK[need];

/** Value changes (operators' work): the device and group value routes. */
const VALUE_ROUTES = new Set(['/devices/:id/values', '/groups/:id/values']);

/** The least role a route needs: reads are viewer's, value changes operator's, the rest (and tokens, provisioning tokens) admin's. */
export function roleFor(method: string, route: string): TokenRole {
  if (route === '/tokens' || route.startsWith('/tokens/') || route === '/provisioning' || route.startsWith('/provisioning/')) return TokenRole.Admin;
  if (method === 'GET' || method === 'HEAD') return TokenRole.Viewer;
  if (VALUE_ROUTES.has(route)) return TokenRole.Operator;
  return TokenRole.Admin;
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

/** Admin bearer tokens: `hgt_<id>_<secret>`; only a SHA-256 of the secret is ever stored. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenRecord } from './state.ts';

const TOKEN_RE = /^hgt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/**
 * What a token may do: `admin` everything; `operator` read, and change values (devices' and groups');
 * `viewer` read only. Tokens (and the audit of them) are admin's.
 */
export const TokenRole = {
  Admin: 'admin',
  Operator: 'operator',
  Viewer: 'viewer',
} as const;
export type TokenRole = (typeof TokenRole)[keyof typeof TokenRole];
export const TOKEN_ROLES: readonly TokenRole[] = Object.values(TokenRole);

/** New tokens expire after this long unless asked otherwise; the first-start admin token after a year. */
export const DEFAULT_TOKEN_DAYS = 90;
export const FIRST_TOKEN_DAYS = 365;
export const MAX_TOKEN_DAYS = 3650;

export interface NewToken {
  readonly id: string;
  readonly token: string;
  readonly hash: string;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function generateToken(): NewToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `hgt_${id}_${secret}`, hash: hashSecret(secret) };
}

/** The record when `presented` is well formed, valid and not revoked (expiry is the caller's check); otherwise undefined. */
export function verifyToken(presented: string, lookup: (id: string) => TokenRecord | undefined): TokenRecord | undefined {
  const m = TOKEN_RE.exec(presented);
  if (!m) return undefined;
  const [, id = '', secret = ''] = m;
  const record = lookup(id);
  if (!record || record.revokedAt !== null) return undefined;
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(record.hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b) ? record : undefined;
}

/**
 * Every failure the hub reports has its own class and a stable code. The codes are API: clients and
 * scripts match on them, and errors.test.ts pins the list so that a rename is a visible break.
 */

export const ErrorCode = {
  Validation: 'HENGE_E_VALIDATION',
  MalformedBody: 'HENGE_E_MALFORMED_BODY',
  BodyTooLarge: 'HENGE_E_BODY_TOO_LARGE',
  UnsupportedMediaType: 'HENGE_E_UNSUPPORTED_MEDIA_TYPE',
  InvalidId: 'HENGE_E_INVALID_ID',
  InvalidSelector: 'HENGE_E_INVALID_SELECTOR',
  InvalidSchema: 'HENGE_E_INVALID_SCHEMA',
  SchemaViolation: 'HENGE_E_SCHEMA_VIOLATION',
  SchemaConflict: 'HENGE_E_SCHEMA_CONFLICT',
  NotFound: 'HENGE_E_NOT_FOUND',
  AlreadyExists: 'HENGE_E_ALREADY_EXISTS',
  Unauthorized: 'HENGE_E_UNAUTHORIZED',
  Forbidden: 'HENGE_E_FORBIDDEN',
  RateLimited: 'HENGE_E_RATE_LIMITED',
  LastToken: 'HENGE_E_LAST_TOKEN',
  StoreUnavailable: 'HENGE_E_STORE_UNAVAILABLE',
  StoreLocked: 'HENGE_E_STORE_LOCKED',
  Keystore: 'HENGE_E_KEYSTORE',
  NotPending: 'HENGE_E_NOT_PENDING',
  TlsConfig: 'HENGE_E_TLS_CONFIG',
  Internal: 'HENGE_E_INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One broken rule, named by the field it concerns. */
export interface Violation {
  /** Dotted path of the field, e.g. `values.setpoint` or `properties.mode.enum`. */
  readonly field: string;
  /** The rule that was broken: `type`, `minimum`, `pattern`, `required`, `unknown`, ... */
  readonly rule: string;
  readonly message: string;
  /** The device concerned, when the rule was checked against a device's effective config. */
  readonly device?: string;
}

export interface ErrorDetails {
  readonly violations?: readonly Violation[];
  readonly [key: string]: unknown;
}

export abstract class HengeError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly status: number;
  readonly details: ErrorDetails;

  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** The request does not have the shape the route takes (wrong type, unknown field, missing field). */
export class ValidationError extends HengeError {
  readonly code = ErrorCode.Validation;
  readonly status = 400;
}

export class MalformedBodyError extends HengeError {
  readonly code = ErrorCode.MalformedBody;
  readonly status = 400;
}

export class BodyTooLargeError extends HengeError {
  readonly code = ErrorCode.BodyTooLarge;
  readonly status = 413;
}

export class UnsupportedMediaTypeError extends HengeError {
  readonly code = ErrorCode.UnsupportedMediaType;
  readonly status = 415;
}

/** A device, group or token id breaks the id rules. */
export class InvalidIdError extends HengeError {
  readonly code = ErrorCode.InvalidId;
  readonly status = 400;
}

export class InvalidSelectorError extends HengeError {
  readonly code = ErrorCode.InvalidSelector;
  readonly status = 400;
}

/** A schema document that cannot be published as it is (unsupported keyword, bad default, ...). */
export class InvalidSchemaError extends HengeError {
  readonly code = ErrorCode.InvalidSchema;
  readonly status = 400;
}

/** A value breaks a device's schema: out of range, wrong type, unknown field, missing required field. */
export class SchemaViolationError extends HengeError {
  readonly code = ErrorCode.SchemaViolation;
  readonly status = 422;
}

/** A new schema version would leave bound devices with an invalid config. */
export class SchemaConflictError extends HengeError {
  readonly code = ErrorCode.SchemaConflict;
  readonly status = 409;
}

export class NotFoundError extends HengeError {
  readonly code = ErrorCode.NotFound;
  readonly status = 404;
}

export class AlreadyExistsError extends HengeError {
  readonly code = ErrorCode.AlreadyExists;
  readonly status = 409;
}

export class UnauthorizedError extends HengeError {
  readonly code = ErrorCode.Unauthorized;
  readonly status = 401;
}

/** Revoking the last valid admin token would lock everybody out. */
export class LastTokenError extends HengeError {
  readonly code = ErrorCode.LastToken;
  readonly status = 409;
}

/** The store refused a write (disk full, I/O error, closed). Nothing of the command was kept. */
/** The token is valid but its role may not do this. */
export class ForbiddenError extends HengeError {
  readonly code = ErrorCode.Forbidden;
  readonly status = 403;
}

/** Too many failed authentications from one address: it waits. */
export class RateLimitedError extends HengeError {
  readonly code = ErrorCode.RateLimited;
  readonly status = 429;
}

/** Admission decides only about a device that waits for it (`pending`); a rejected one must be removed and enroll again. */
export class NotPendingError extends HengeError {
  readonly code = ErrorCode.NotPending;
  readonly status = 409;
}

/** The API's certificate or key cannot be used: a missing file, not PEM, a key of another certificate, expired. */
export class TlsConfigError extends HengeError {
  readonly code = ErrorCode.TlsConfig;
  readonly status = 500;

  /** The file at fault (`details.file`). */
  get file(): string {
    const f = this.details['file'];
    return typeof f === 'string' ? f : '';
  }
}

/** The device keystore cannot be read (a master key others can read, a key that does not decrypt). */
export class KeystoreError extends HengeError {
  readonly code = ErrorCode.Keystore;
  readonly status = 500;
}

export class StoreUnavailableError extends HengeError {
  readonly code = ErrorCode.StoreUnavailable;
  readonly status = 503;
}

/** Another process holds the data folder. */
export class StoreLockedError extends HengeError {
  readonly code = ErrorCode.StoreLocked;
  readonly status = 503;
}

export class InternalError extends HengeError {
  readonly code = ErrorCode.Internal;
  readonly status = 500;
}

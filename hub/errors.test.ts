import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AlreadyExistsError,
  BodyTooLargeError,
  ErrorCode,
  HengeError,
  InternalError,
  InvalidIdError,
  InvalidSchemaError,
  InvalidSelectorError,
  LastTokenError,
  MalformedBodyError,
  NotFoundError,
  SchemaConflictError,
  SchemaViolationError,
  StoreLockedError,
  KeystoreError,
  NotPendingError,
  TlsConfigError,
  ForbiddenError,
  RateLimitedError,
  StoreUnavailableError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.ts';
import type { ErrorDetails } from './errors.ts';
import * as errors from './errors.ts';

type ErrorClass = new (message: string, details?: ErrorDetails, options?: { cause?: unknown }) => HengeError;

/** Every concrete error class, the code it carries and the HTTP status it answers with. */
const EXPECTED: ReadonlyArray<readonly [ErrorClass, string, number]> = [
  [ValidationError, 'HENGE_E_VALIDATION', 400],
  [MalformedBodyError, 'HENGE_E_MALFORMED_BODY', 400],
  [BodyTooLargeError, 'HENGE_E_BODY_TOO_LARGE', 413],
  [UnsupportedMediaTypeError, 'HENGE_E_UNSUPPORTED_MEDIA_TYPE', 415],
  [InvalidIdError, 'HENGE_E_INVALID_ID', 400],
  [InvalidSelectorError, 'HENGE_E_INVALID_SELECTOR', 400],
  [InvalidSchemaError, 'HENGE_E_INVALID_SCHEMA', 400],
  [SchemaViolationError, 'HENGE_E_SCHEMA_VIOLATION', 422],
  [SchemaConflictError, 'HENGE_E_SCHEMA_CONFLICT', 409],
  [NotFoundError, 'HENGE_E_NOT_FOUND', 404],
  [AlreadyExistsError, 'HENGE_E_ALREADY_EXISTS', 409],
  [UnauthorizedError, 'HENGE_E_UNAUTHORIZED', 401],
  [LastTokenError, 'HENGE_E_LAST_TOKEN', 409],
  [StoreUnavailableError, 'HENGE_E_STORE_UNAVAILABLE', 503],
  [StoreLockedError, 'HENGE_E_STORE_LOCKED', 503],
  [KeystoreError, 'HENGE_E_KEYSTORE', 500],
  [NotPendingError, 'HENGE_E_NOT_PENDING', 409],
  [TlsConfigError, 'HENGE_E_TLS_CONFIG', 500],
  [ForbiddenError, 'HENGE_E_FORBIDDEN', 403],
  [RateLimitedError, 'HENGE_E_RATE_LIMITED', 429],
  [InternalError, 'HENGE_E_INTERNAL', 500],
];

test('errors - the list of error codes is pinned (a rename is a visible break)', () => {
  assert.deepStrictEqual(
    { ...ErrorCode },
    {
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
    },
  );
});

test('errors - every code is unique and has the HENGE_E_ prefix', () => {
  const codes = Object.values(ErrorCode);
  assert.equal(new Set(codes).size, codes.length);
  for (const c of codes) assert.match(c, /^HENGE_E_[A-Z_]+$/);
});

test('errors - each error class has its code and HTTP status', () => {
  for (const [Cls, code, status] of EXPECTED) {
    const e = new Cls('boom');
    assert.equal(e.code, code, Cls.name);
    assert.equal(e.status, status, Cls.name);
  }
});

test('errors - every code belongs to exactly one error class, and every exported class is listed here', () => {
  const codes = EXPECTED.map(([, code]) => code).sort();
  assert.deepEqual(codes, Object.values(ErrorCode).sort());
  const exportedClasses: string[] = [];
  for (const v of Object.values(errors) as unknown[]) {
    if (typeof v === 'function' && v.prototype instanceof HengeError) exportedClasses.push(v.name);
  }
  assert.deepEqual(
    exportedClasses.sort(),
    EXPECTED.map(([Cls]) => Cls.name).sort(),
  );
});

test('errors - an error is an Error and a HengeError named after its class', () => {
  for (const [Cls] of EXPECTED) {
    const e = new Cls('boom');
    assert.ok(e instanceof Error, Cls.name);
    assert.ok(e instanceof HengeError, Cls.name);
    assert.ok(e instanceof Cls, Cls.name);
    assert.equal(e.name, Cls.name);
    assert.equal(e.message, 'boom');
    assert.equal(typeof e.stack, 'string');
  }
});

test('errors - details default to an empty object', () => {
  const e = new NotFoundError('no device pico-1');
  assert.deepStrictEqual(e.details, {});
  assert.deepStrictEqual(e.toJSON(), { code: 'HENGE_E_NOT_FOUND', message: 'no device pico-1', details: {} });
});

test('errors - toJSON gives code, message and details', () => {
  const details = {
    violations: [{ field: 'values.setpoint', rule: 'maximum', message: 'setpoint must be <= 30, got 31', device: 'pico-1' }],
    schema: 'thermostat',
  };
  const e = new SchemaViolationError('invalid config', details);
  assert.deepStrictEqual(e.toJSON(), { code: 'HENGE_E_SCHEMA_VIOLATION', message: 'invalid config', details });
  assert.deepStrictEqual(JSON.parse(JSON.stringify(e)), { code: 'HENGE_E_SCHEMA_VIOLATION', message: 'invalid config', details });
});

test('errors - toJSON leaves out the status, name, stack and cause', () => {
  const e = new StoreUnavailableError('disk full', {}, { cause: new Error('ENOSPC') });
  assert.deepEqual(Object.keys(e.toJSON()).sort(), ['code', 'details', 'message']);
  assert.doesNotMatch(JSON.stringify(e), /ENOSPC|stack|StoreUnavailableError/);
});

test('errors - the cause is kept on the error', () => {
  const cause = new Error('EIO');
  const e = new StoreUnavailableError('write failed', {}, { cause });
  assert.equal(e.cause, cause);
});

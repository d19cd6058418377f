/** The REST API: fastify, a JSON Schema on every route, OpenAPI at /openapi.json and a docs page at /docs. */
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import type { AnySchema } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { DeviceRuntime, HubCore } from '../domain/index.ts';
import { createVerifier, installAuth } from './auth.ts';
import { FailureBudget } from '../security/failure-budget.ts';
import { installErrorHandling } from './errors.ts';
import type { HubMetrics } from './metrics.ts';
import { deviceRoutes } from './routes/devices.ts';
import type { Keystore } from '../security/keystore.ts';
import type { Enrollments } from '../security/enrollment.ts';
import type { Provisioning } from '../security/provisioning.ts';
import { provisioningRoutes } from './routes/provisioning.ts';
import { eventRoutes } from './routes/events.ts';
import { groupRoutes } from './routes/groups.ts';
import { healthRoutes } from './routes/health.ts';
import { schemaRoutes } from './routes/schemas.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { valueRoutes } from './routes/values.ts';
import { ErrorT } from './types.ts';

export const API_VERSION = '1';
/** Largest request body accepted: a schema with 256 fields fits with room to spare. */
const BODY_LIMIT = 256 * 1024;

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * Bodies are validated strictly: a wrong type is an error, never coerced, and unknown fields are refused
 * rather than silently dropped (fastify's defaults do both). Query strings and params are text, so
 * they are coerced to the declared types.
 */
function validatorCompiler(): (args: { schema: AnySchema; httpPart?: string }) => (data: unknown) => boolean {
  const strict = addFormats(new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: false }));
  const coercing = addFormats(new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false }));
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}

export interface ApiOptions {
  /** A pino logger; none by default (tests, benchmarks). */
  readonly logger?: FastifyBaseLogger;
  /** Liveness and telemetry from the CoAP endpoint, for device state. */
  readonly runtime?: DeviceRuntime;
  /** Failed authentications allowed per address and minute (default 30). */
  readonly authFailuresPerMinute?: number;
  /** Devices are also served plain CoAP (`--insecure`): /healthz says so. */
  readonly insecure?: boolean;
  /** Device keys for the coaps endpoint: adding a device issues one. */
  readonly keystore?: Keystore;
  /** One-time enrollment tokens (coaps). */
  readonly enrollments?: Enrollments;
  /** Fleet provisioning tokens (coaps). */
  readonly provisioning?: Provisioning;
  /** Serve HTTPS with this PEM certificate (chain) and key (see tls.ts); plain HTTP when left out. */
  readonly https?: { readonly cert: string; readonly key: string };
}

/** Failed authentications (or authorizations) one address may make per minute. */
export const AUTH_FAILURES_PER_MINUTE = 30;

export async function createApi(core: HubCore, metrics: HubMetrics, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT,
    // One line per request at 10,000 writes/s is noise and CPU; errors and auth failures are logged.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // Spread, so the instance keeps the one server type the routes are written against: an https.Server is an http.Server to them.
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' as const } } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler());
  // Bodies are JSON only: anything else is 415, not a confusing validation error.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'henge hub API', version: API_VERSION, description: 'Configuration and fleet management for embedded devices' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.addSchema(ErrorT);
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Guessing tokens costs time: failed authentications are limited per address (see hub/security/failure-budget.ts).
  installAuth(app, core, createVerifier(core), new FailureBudget(opts.authFailuresPerMinute ?? AUTH_FAILURES_PER_MINUTE));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes, { core, metrics, insecure: opts.insecure ?? false });
  await app.register(deviceRoutes, { core, ...(opts.runtime ? { runtime: opts.runtime } : {}), ...(opts.keystore ? { keystore: opts.keystore } : {}), ...(opts.enrollments ? { enrollments: opts.enrollments } : {}) });
  await app.register(valueRoutes, { core });
  await app.register(groupRoutes, { core });
  await app.register(schemaRoutes, { core });
  await app.register(eventRoutes, { core });
  await app.register(tokenRoutes, { core });
  await app.register(provisioningRoutes, { core, ...(opts.provisioning ? { provisioning: opts.provisioning } : {}) });
  return app;
}

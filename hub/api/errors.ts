/** Maps every failure to the API's error form `{ code, message, details }` with the right status. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  BodyTooLargeError,
  HengeError,
  InternalError,
  MalformedBodyError,
  NotFoundError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.ts';
import type { Violation } from '../errors.ts';

interface AjvIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function pathOf(context: string, instancePath: string): string {
  const parts = instancePath.split('/').filter((p) => p !== '').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return [context, ...parts].join('.');
}

function violationsOf(err: FastifyError & { validation?: AjvIssue[]; validationContext?: string }): Violation[] {
  const context = err.validationContext ?? 'body';
  return (err.validation ?? []).map((v) => {
    let field = pathOf(context, v.instancePath);
    let rule = v.keyword;
    let message = v.message ?? v.keyword;
    if (v.keyword === 'additionalProperties') {
      field = `${field}.${String(v.params['additionalProperty'])}`;
      rule = 'unknown';
      message = 'is not a known field';
    } else if (v.keyword === 'required') {
      field = `${field}.${String(v.params['missingProperty'])}`;
      message = 'is required';
    } else if (v.keyword === 'anyOf') {
      rule = 'type';
      message = 'has the wrong type';
    }
    return { field, rule, message: `${field} ${message}` };
  });
}

/** Converts anything thrown in a route into a HengeError. */
export function toHengeError(err: unknown): HengeError {
  if (err instanceof HengeError) return err;
  const e = err as FastifyError & { validation?: AjvIssue[] };
  if (e.validation) {
    const violations = violationsOf(e);
    return new ValidationError(violations.map((v) => v.message).join('; ') || 'invalid request', { violations });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new MalformedBodyError(`the request body is not valid JSON: ${e.message}`, {}, { cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BodyTooLargeError('the request body is too large', {}, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new UnsupportedMediaTypeError('send the body as application/json', {}, { cause: err });
  }
  if (e.statusCode === 400 && e instanceof SyntaxError) return new MalformedBodyError(`the request body is not valid JSON: ${e.message}`, {}, { cause: err });
  return new InternalError('internal error; see the hub log', {}, { cause: err });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const h = toHengeError(err);
    if (h.status >= 500) req.log.error({ err, code: h.code }, h.message);
    else req.log.info({ code: h.code, status: h.status }, h.message);
    if (h.status === 401) void reply.header('www-authenticate', 'Bearer realm="henge"');
    return reply.status(h.status).send(h.toJSON());
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const e = new NotFoundError(`no route ${req.method} ${req.url.split('?')[0] ?? ''}`, { method: req.method });
    return reply.status(404).send(e.toJSON());
  });
}

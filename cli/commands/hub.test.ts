import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError, ExitCode } from '../exit.ts';
import { apiTls, isLoopback } from './hub.ts';

const usage = (message: RegExp) => (err: unknown): boolean => err instanceof CliError && err.exitCode === ExitCode.Usage && message.test(err.message);

test('hub flags - loopback is 127.0.0.0/8, ::1 and localhost; wildcards and LAN addresses are not', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '::', '192.168.1.10', 'fe80::1', 'hub.local', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
});

test('hub flags - HTTPS is on beyond loopback, with --https or a certificate, and off by default on loopback', () => {
  assert.equal(apiTls({ host: '127.0.0.1', insecure: false }), null);
  assert.deepEqual(apiTls({ host: '127.0.0.1', https: true, insecure: false }), {});
  assert.deepEqual(apiTls({ host: '0.0.0.0', insecure: false }), {});
  assert.deepEqual(apiTls({ host: '192.168.1.10', insecure: true }), {}, '--insecure alone does not turn HTTPS off');
  assert.deepEqual(apiTls({ host: '127.0.0.1', tlsCert: 'c.pem', tlsKey: 'k.pem', insecure: false }), { certFile: 'c.pem', keyFile: 'k.pem' });
  assert.equal(apiTls({ host: '127.0.0.1', https: false, insecure: false }), null);
  assert.equal(apiTls({ host: '0.0.0.0', https: false, insecure: true }), null);
});

test('hub flags - --no-https beyond loopback needs --insecure; a lone --tls-cert or --tls-key, or one with --no-https, is refused', () => {
  assert.throws(() => apiTls({ host: '0.0.0.0', https: false, insecure: false }), usage(/--no-https on 0\.0\.0\.0/));
  assert.throws(() => apiTls({ host: '127.0.0.1', tlsCert: 'c.pem', insecure: false }), usage(/go together/));
  assert.throws(() => apiTls({ host: '127.0.0.1', tlsKey: 'k.pem', insecure: false }), usage(/go together/));
  assert.throws(() => apiTls({ host: '127.0.0.1', https: false, tlsCert: 'c.pem', tlsKey: 'k.pem', insecure: false }), usage(/choose one/));
});

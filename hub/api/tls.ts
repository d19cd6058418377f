/**
 * The API's TLS certificate: the pair the user names (`--tls-cert`/`--tls-key`), or a self-signed one made on
 * the first HTTPS start and kept in `<data>/tls` (folder 0700, key 0600), so that its fingerprint stays the
 * same across restarts and clients can pin it. The certificate is built with pkijs on WebCrypto (ECDSA P-256);
 * node:crypto reads it back, checks the key and computes the fingerprint.
 */
import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ErrorCode, TlsConfigError } from '../errors.ts';

/** Kept for callers that match on the code; the class is TlsConfigError in hub/errors.ts. */
export const TLS_CONFIG_ERROR = ErrorCode.TlsConfig;
export { TlsConfigError };

export interface CertificateOptions {
  /** A PEM certificate (the chain may follow the leaf); with keyFile, used instead of a generated one. */
  readonly certFile?: string;
  /** Its PEM private key (unencrypted). */
  readonly keyFile?: string;
  /** Extra names for a generated certificate, e.g. the address the API listens on (wildcards are skipped). */
  readonly hosts?: readonly string[];
  /** The clock, for tests. */
  readonly now?: Date;
}

export interface ApiCertificate {
  /** PEM, as read or generated (a user's file may hold the chain after the leaf). */
  readonly cert: string;
  /** PEM private key. Never log it. */
  readonly key: string;
  /** SHA-256 of the leaf certificate, uppercase hex with colons (as `openssl x509 -fingerprint -sha256`). */
  readonly fingerprint: string;
  /** The certificate was made just now (first HTTPS start, or the previous one had expired). */
  readonly generated: boolean;
  readonly certFile: string;
}

/** Where a generated pair lives in the data folder. */
export const TLS_DIR = 'tls';
export const GENERATED_CERT_FILE = 'cert.pem';
export const GENERATED_KEY_FILE = 'key.pem';
/** A generated certificate is valid this long; it is remade (a new fingerprint) once expired. */
export const GENERATED_VALIDITY_DAYS = 5 * 365;
const DAY_MS = 86_400_000;

export async function loadOrCreateCertificate(dataDir: string, opts: CertificateOptions = {}): Promise<ApiCertificate> {
  const now = opts.now ?? new Date();
  if (opts.certFile !== undefined || opts.keyFile !== undefined) {
    if (opts.certFile === undefined || opts.keyFile === undefined) {
      throw new TlsConfigError('a certificate and its key go together: give both files, or neither for a generated one', { file: opts.certFile ?? opts.keyFile ?? '' });
    }
    const certFile = resolve(opts.certFile);
    const cert = await readPem(certFile, 'certificate');
    const key = await readPem(resolve(opts.keyFile), 'private key');
    return { ...checkPair(cert, certFile, key, resolve(opts.keyFile), now), generated: false };
  }
  const dir = join(resolve(dataDir), TLS_DIR);
  const certFile = join(dir, GENERATED_CERT_FILE);
  const keyFile = join(dir, GENERATED_KEY_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // An existing folder keeps its mode with mkdir: tighten it, the key is inside.
  await chmod(dir, 0o700);
  const [cert, key] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (cert !== null && key === null) {
    throw new TlsConfigError(`${certFile} has no key beside it (${keyFile}): restore the key, or remove the certificate to have a new pair made (a new fingerprint)`, { file: keyFile });
  }
  if (cert !== null && key !== null) {
    const mode = (await stat(keyFile)).mode;
    if ((mode & 0o077) !== 0) {
      throw new TlsConfigError(`${keyFile} can be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`, { file: keyFile });
    }
    const x509 = parseCertificate(cert, certFile);
    // Ours, so remade rather than refused once expired; the banner then says a new one was generated.
    if (Date.parse(x509.validTo) > now.getTime()) return { ...checkPair(cert, certFile, key, keyFile, now), generated: false };
  }
  // None yet, a key without its certificate (a first run cut short), or an expired one: a new pair.
  const made = await generateSelfSigned(namesFor(opts.hosts ?? []), now);
  // The key first: a certificate on disk always has its key.
  await writeFileAtomic(keyFile, made.key, 0o600);
  await writeFileAtomic(certFile, made.cert, 0o644);
  return { ...checkPair(made.cert, certFile, made.key, keyFile, now), generated: true };
}

/** SHA-256 fingerprint of a PEM or DER certificate, in the form `loadOrCreateCertificate` reports. */
export function fingerprintOf(cert: string | Buffer): string {
  return new X509Certificate(cert).fingerprint256;
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TlsConfigError(`cannot read ${file}: ${(err as Error).message}`, { file: file }, { cause: err });
  }
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsConfigError(e.code === 'ENOENT' ? `the ${what} file ${file} does not exist` : `cannot read the ${what} file ${file}: ${e.message}`, { file: file }, { cause: err });
  }
}

function parseCertificate(pem: string, file: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new TlsConfigError(`${file} is not a PEM certificate (no BEGIN CERTIFICATE block)`, { file: file });
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsConfigError(`${file} is not a valid PEM certificate: ${(err as Error).message}`, { file: file }, { cause: err });
  }
}

/** Both parse, the key is the certificate's, and the certificate is valid now. */
function checkPair(cert: string, certFile: string, key: string, keyFile: string, now: Date): { cert: string; key: string; fingerprint: string; certFile: string } {
  const x509 = parseCertificate(cert, certFile);
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    // The key's text is never part of the message.
    const encrypted = key.includes('ENCRYPTED');
    throw new TlsConfigError(
      encrypted ? `${keyFile} is an encrypted private key: give it unencrypted (readable by the hub's user only)` : `${keyFile} is not a valid PEM private key`, { file: keyFile },
      { cause: err },
    );
  }
  if (!x509.checkPrivateKey(keyObject)) {
    throw new TlsConfigError(`${keyFile} is not the private key of ${certFile} (certificate ${x509.fingerprint256})`, { file: keyFile });
  }
  const notAfter = Date.parse(x509.validTo);
  const notBefore = Date.parse(x509.validFrom);
  if (notAfter <= now.getTime()) throw new TlsConfigError(`${certFile} expired on ${x509.validTo}`, { file: certFile });
  if (notBefore > now.getTime()) throw new TlsConfigError(`${certFile} is not valid before ${x509.validFrom}`, { file: certFile });
  return { cert, key, fingerprint: x509.fingerprint256, certFile };
}

/** The names a generated certificate covers: loopback, this machine's name, and the listen address when specific. */
function namesFor(hosts: readonly string[]): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname()];
  for (const raw of hosts) {
    const host = raw.replace(/^\[|\]$/g, '');
    if (host === '' || host === '0.0.0.0' || host === '::') continue;
    names.push(host);
  }
  return [...new Set(names.filter((n) => n !== ''))];
}

async function generateSelfSigned(names: readonly string[], now: Date): Promise<{ cert: string; key: string }> {
  const subtle = webcrypto.subtle;
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const engine = new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'] });
  const cert = new pkijs.Certificate();
  cert.version = 2;
  // 16 random bytes, first byte in 0x40..0x7f: positive (top bit clear) and minimally encoded (not zero:
  // DER forbids a leading zero byte before one with its top bit clear, and OpenSSL refuses the whole
  // certificate then; that used to happen to one start in 128).
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  const commonName = `henge hub ${hostname()}`.slice(0, 64);
  // Self-signed: the issuer is the subject.
  cert.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: commonName }) }));
  cert.issuer.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: commonName }) }));
  // A little in the past: a client whose clock runs behind still accepts it.
  cert.notBefore.value = new Date(now.getTime() - DAY_MS);
  cert.notAfter.value = new Date(now.getTime() + GENERATED_VALIDITY_DAYS * DAY_MS);
  const altNames = new pkijs.AltName({ altNames: names.map(generalName) });
  const keyUsage = new asn1js.BitString({ valueHex: new Uint8Array([0x80]).buffer, unusedBits: 7 }); // digitalSignature
  cert.extensions = [
    new pkijs.Extension({ extnID: '2.5.29.19', critical: true, extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER(false) }),
    new pkijs.Extension({ extnID: '2.5.29.15', critical: true, extnValue: keyUsage.toBER(false) }),
    new pkijs.Extension({ extnID: '2.5.29.37', critical: false, extnValue: new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.1'] }).toSchema().toBER(false) }),
    new pkijs.Extension({ extnID: '2.5.29.17', critical: false, extnValue: altNames.toSchema().toBER(false) }),
  ];
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey, engine);
  await cert.sign(keys.privateKey, 'SHA-256', engine);
  const der = Buffer.from(cert.toSchema(true).toBER(false));
  const pem = new X509Certificate(der).toString();
  const key = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { cert: pem, key };
}

function generalName(name: string): pkijs.GeneralName {
  if (isIP(name) === 0) return new pkijs.GeneralName({ type: 2, value: name }); // dNSName
  const g = new pkijs.GeneralName();
  g.type = 7; // iPAddress: 4 or 16 bytes
  g.value = new asn1js.OctetString({ valueHex: ipBytes(name) });
  return g;
}

/** The bytes of an IPv4 or IPv6 address (a zone id is dropped). */
export function ipBytes(address: string): Uint8Array {
  const ip = address.replace(/%.*$/, '');
  if (isIP(ip) === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6) throw new TypeError(`not an IP address: ${address}`);
  let text = ip;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4 !== undefined) {
    const b = v4.split('.').map(Number);
    text = `${text.slice(0, -v4.length)}${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** Temp file in the same folder, synced, then renamed over `file`: a reader sees the old file or the new one. */
async function writeFileAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch((cleanup: unknown) => {
      if ((cleanup as NodeJS.ErrnoException).code !== 'ENOENT') throw new AggregateError([err, cleanup], `writing ${file} failed, and so did removing ${tmp}`);
    });
    throw new TlsConfigError(`cannot write ${file}: ${(err as Error).message}`, { file: file }, { cause: err });
  }
}

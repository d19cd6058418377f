/**
 * Figure c: the same fan-out through Mosquitto (Debian package `mosquitto`), the baseline of DESIGN.md.
 * The broker runs on a free loopback port with a temporary config; N mqtt.js subscribers in a separate
 * process (one TCP connection each, QoS 1, one shared topic); this process publishes one retained
 * 200-byte message with QoS 1 and times until the last subscriber got it.
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { resolve } from 'node:path';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { monoNow } from '../../sim/clock.ts';
import { exited, isMessage, nextMessage } from '../lib/child.ts';
import { freeTcpPort } from '../lib/ports.ts';
import { fmt, progress } from '../lib/progress.ts';
import { median, round } from '../lib/stats.ts';
import { spawnTsWith, spawnWithLimit } from '../lib/spawn.ts';
import { scratchDir } from '../store/fixtures.ts';
import { MQTT_PAYLOAD_BYTES, MQTT_TOPIC } from './fixtures.ts';
import { sleep } from './procs.ts';

export interface MqttOptions {
  readonly sizes: readonly number[];
  readonly repeats: number;
}

export const mqttOptions = (quick: boolean): MqttOptions => ({ sizes: quick ? [200, 1000] : [1000, 5000], repeats: quick ? 3 : 10 });

const SUB_FILE = new URL('./mqtt-subscribers.ts', import.meta.url).pathname;

/** The broker binary, or null when the Debian package is not installed. */
export function findMosquitto(): { path: string; version: string } | null {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto']) {
    if (!existsSync(p)) continue;
    const out = spawnSync(p, ['-h'], { encoding: 'utf8' });
    const version = /mosquitto version (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown';
    return { path: p, version };
  }
  return null;
}

export function mqttMethod(o: MqttOptions, broker: { path: string; version: string } | null): string[] {
  if (!broker) return ['c) Mosquitto baseline: SKIPPED, mosquitto is not installed (Debian package `mosquitto`: apt-get install mosquitto).'];
  return [
    `c) the same fan-out through Mosquitto ${broker.version} (${broker.path}), N = ${o.sizes.map(fmt).join(' and ')}: a fresh broker per N on a free`,
    `  loopback port, temp config: listener <port> 127.0.0.1, allow_anonymous true, max_queued_messages 1000000,`,
    `  persistence false, set_tcp_nodelay true (open-file limit raised with ulimit -n). N subscribers in a separate process`,
    `  (mqtt.js, one TCP connection each, MQTT 3.1.1, clean session, QoS 1), all on ONE shared topic, as DESIGN.md's anchor.`,
    `  This process publishes one retained ${MQTT_PAYLOAD_BYTES}-byte message with QoS 1; timed from the publish call to the last`,
    `  subscriber's 'message' event (same monotonic clock). ${o.repeats} publishes per N; median and max. henge / Mosquitto =`,
    `  henge's commit → all notified over Mosquitto's publish → all received (also given from henge's API call).`,
  ];
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolveP, reject) => {
    const attempt = (): void => {
      const s = tcpConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolveP();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen on port ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

interface Received {
  readonly id: number;
  readonly count: number;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly complete: boolean;
  readonly cpuMs: number;
}

async function runSize(broker: { path: string }, n: number, o: MqttOptions): Promise<Record<string, unknown>> {
  const dir = await scratchDir(`push-mqtt-${n}`);
  const port = await freeTcpPort();
  const conf = resolve(dir.path, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'max_queued_messages 1000000',
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  let mosq: ChildProcess | undefined;
  let subs: ChildProcess | undefined;
  let pub: MqttClient | undefined;
  try {
    mosq = spawnWithLimit(broker.path, ['-c', conf], Math.max(65_536, n * 2 + 1024));
    await waitForPort(port, 10_000);
    progress('mosquitto', `N=${fmt(n)}: broker on port ${port}; connecting ${fmt(n)} subscribers`);
    subs = spawnTsWith(SUB_FILE, [], { openFiles: Math.max(65_536, n * 2 + 1024) });
    const child = subs;
    const startedP = nextMessage(child, (m) => (isMessage(m, 'started') ? m : undefined), 300_000);
    child.send({ type: 'start', port, count: n, window: 100 });
    const started = await startedP;
    progress('mosquitto', `N=${fmt(n)}: ${fmt(n)} subscribers in ${Math.round(Number(started['ms']))} ms`);
    const client = await new Promise<MqttClient>((res, rej) => {
      const c = connect({ host: '127.0.0.1', port, protocolVersion: 4, clean: true, keepalive: 600, reconnectPeriod: 0, clientId: 'henge-bench-pub' });
      c.once('connect', () => res(c));
      c.once('error', rej);
    });
    pub = client;
    const reps: Array<{ rep: number; allReceivedMs: number; firstReceivedMs: number; pubackMs: number; count: number; complete: boolean; subscriberCpuUsPerClient: number }> = [];
    for (let rep = 0; rep < o.repeats; rep++) {
      await sleep(200);
      const armed = nextMessage(child, (m) => (isMessage(m, 'armed') && m['id'] === rep ? true : undefined), 10_000);
      const received = nextMessage(child, (m) => (isMessage(m, 'received') && m['id'] === rep ? (m as unknown as Received) : undefined), 60_000);
      child.send({ type: 'arm', id: rep, expect: n });
      await armed;
      const head = `${rep}:`;
      const payload = Buffer.alloc(MQTT_PAYLOAD_BYTES, 0x6d);
      payload.write(head, 0, 'latin1');
      const t0 = monoNow();
      const puback = new Promise<number>((res, rej) => client.publish(MQTT_TOPIC, payload, { qos: 1, retain: true }, (err) => (err ? rej(err) : res(monoNow()))));
      const [r, pubackAt] = await Promise.all([received, puback]);
      reps.push({
        rep,
        allReceivedMs: round(r.lastAt - t0, 2),
        firstReceivedMs: round(r.firstAt - t0, 2),
        pubackMs: round(pubackAt - t0, 2),
        count: r.count,
        complete: r.complete,
        subscriberCpuUsPerClient: round((r.cpuMs * 1000) / n, 1),
      });
      progress('mosquitto', `N=${fmt(n)} #${rep + 1}: publish → all ${fmt(r.count)} received ${round(r.lastAt - t0, 2)} ms${r.complete ? '' : ' INCOMPLETE'}`);
    }
    const all = reps.map((r) => r.allReceivedMs);
    return {
      subscribers: n,
      topic: 'one shared topic',
      qos: 1,
      payloadBytes: MQTT_PAYLOAD_BYTES,
      retained: true,
      allComplete: reps.every((r) => r.complete),
      allReceivedMs: { median: round(median(all), 2), max: round(Math.max(...all), 2), all },
      subscriberCpuUsPerClient: round(median(reps.map((r) => r.subscriberCpuUsPerClient)), 1),
      connectMs: round(Number(started['ms']), 0),
      subscriberOpenFileLimit: started['openFiles'],
      reps,
    };
  } finally {
    pub?.end(true);
    if (subs) {
      if (subs.connected) subs.disconnect();
      const done = await Promise.race([exited(subs).then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        subs.kill();
        await exited(subs);
      }
    }
    if (mosq && mosq.exitCode === null) {
      mosq.kill('SIGTERM');
      await exited(mosq);
    }
    await dir.remove();
  }
}

export async function runMosquitto(o: MqttOptions, broker: { path: string; version: string }): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { broker: `mosquitto ${broker.version}` };
  for (const n of o.sizes) out[String(n)] = await runSize(broker, n, o);
  return out;
}

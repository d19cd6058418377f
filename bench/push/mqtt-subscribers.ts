/**
 * The MQTT baseline's subscribers, in their own process (like the simulated devices): N mqtt.js clients,
 * one TCP connection each, all subscribed with QoS 1 to one shared topic. A collector times one publish:
 * when the first and the last client got the message (read on the machine-wide monotonic clock).
 *
 * IPC with bench/push/run.ts:
 *   parent → { type: 'start', port, count, window }   child → { type: 'started', ms, openFiles, rssBytes }
 *   parent → { type: 'arm', id, expect }              child → { type: 'armed', id }, later { type: 'received', id, count, firstAt, lastAt, complete, cpuMs }
 */
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { performance } from 'node:perf_hooks';
import { monoNow } from '../../sim/clock.ts';
import { isMessage, sendToParent } from '../lib/child.ts';
import { openFileLimit } from '../lib/spawn.ts';
import { MQTT_TOPIC } from './fixtures.ts';

const clients: MqttClient[] = [];

interface Armed {
  readonly id: string;
  readonly expect: number;
  readonly got: Uint8Array;
  count: number;
  firstAt: number;
  lastAt: number;
  readonly cpu0: NodeJS.CpuUsage;
  readonly timer: NodeJS.Timeout;
}
let armed: Armed | null = null;

function finish(a: Armed, complete: boolean): void {
  clearTimeout(a.timer);
  armed = null;
  const cpu = process.cpuUsage(a.cpu0);
  sendToParent({ type: 'received', id: Number(a.id), count: a.count, firstAt: a.firstAt, lastAt: a.lastAt, complete, cpuMs: (cpu.user + cpu.system) / 1000 });
}

function onMessage(i: number, payload: Buffer): void {
  const at = monoNow();
  const a = armed;
  if (!a || a.got[i] === 1) return;
  const colon = payload.indexOf(0x3a);
  if (colon < 0 || payload.toString('latin1', 0, colon) !== a.id) return;
  a.got[i] = 1;
  a.count++;
  if (a.count === 1) a.firstAt = at;
  if (at > a.lastAt) a.lastAt = at;
  if (a.count === a.expect) finish(a, true);
}

function connectOne(port: number, i: number): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port, protocolVersion: 4, clean: true, keepalive: 600, reconnectPeriod: 0, clientId: `henge-bench-sub-${i}` });
    c.on('message', (_topic, payload) => onMessage(i, payload));
    c.once('error', reject);
    c.once('connect', () => {
      c.subscribe(MQTT_TOPIC, { qos: 1 }, (err) => {
        if (err) reject(err);
        else {
          c.off('error', reject);
          c.on('error', () => undefined);
          resolve(c);
        }
      });
    });
  });
}

async function start(port: number, count: number, window: number): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < count; i += window) {
    const batch: Array<Promise<MqttClient>> = [];
    for (let j = i; j < Math.min(count, i + window); j++) batch.push(connectOne(port, j));
    clients.push(...(await Promise.all(batch)));
  }
  sendToParent({ type: 'started', ms: performance.now() - t0, openFiles: openFileLimit(), rssBytes: process.memoryUsage().rss });
}

const fail = (err: unknown): never => {
  process.stderr.write(`mqtt subscribers process: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
};

process.on('message', (m: unknown) => {
  if (isMessage(m, 'start')) {
    start(Number(m['port']), Number(m['count']), Number(m['window'] ?? 100)).catch(fail);
  } else if (isMessage(m, 'arm')) {
    const expect = Number(m['expect']);
    const a: Armed = {
      id: String(m['id']),
      expect,
      got: new Uint8Array(clients.length),
      count: 0,
      firstAt: 0,
      lastAt: 0,
      cpu0: process.cpuUsage(),
      timer: setTimeout(() => {
        if (armed === a) finish(a, false);
      }, 30_000),
    };
    armed = a;
    sendToParent({ type: 'armed', id: Number(a.id) });
  }
});
process.on('disconnect', () => {
  for (const c of clients) c.end(true);
  process.exit(0);
});

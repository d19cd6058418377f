/**
 * Many simulated devices in one process, each with its own UDP socket (so the hub sees one endpoint per
 * device, as it would on a real network), one shared timer for every retransmission and re-registration,
 * and events with monotonic timestamps for benchmarks and `henge sim`.
 *
 *   const sim = new Simulator({ hub: '127.0.0.1:5683' });
 *   sim.on('acked', (e) => ...);
 *   await sim.start(['dev-1', 'dev-2']);
 *   await sim.registration();         // every device's first registration answered (or given up)
 *   ...
 *   await sim.stop({ deregister: true });
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { AckStatus } from '../protocol/ack.ts';
import { bindAddressFor, parseHubAddress, resolveHub } from './address.ts';
import type { HubAddress } from './address.ts';
import { monoNow } from './clock.ts';
import { SimDevice, TimerKind, newCounters } from './device.ts';
import type { AckedEvent, DeviceHost, Inbound, NotifiedEvent, RegisteredEvent, SimCounters } from './device.ts';
import { TimerWheel } from '../hub/coap/timer-wheel.ts';
import { DtlsClient } from '../dtls/client.ts';
import { DEVICE_ID_PATTERN } from '../protocol/paths.ts';

export interface SimOptions {
  /** The hub's CoAP endpoint: "host:port", "[v6]:port", or already parsed. */
  readonly hub: string | HubAddress;
  /** Local address of the devices' sockets (default: 127.0.0.1 for a loopback hub, else any). */
  readonly bind?: string;
  /** SO_RCVBUF per socket; the kernel default when left out (a device receives a few datagrams at a time). */
  readonly receiveBufferBytes?: number;
  /**
   * The status every ack reports (default applied); null: devices apply snapshots but send no ack POST
   * (a benchmark measuring the notification path alone). May be changed while running.
   */
  readonly ackStatus?: AckStatus | null;
  /**
   * coaps: the key of each device (its text; the PSK identity is the device id). With it every device talks
   * DTLS to the hub through its own session; without it, plain CoAP.
   */
  readonly keyOf?: (device: string) => string | undefined;
  /** Registrations in flight at once while devices start (default 200). */
  readonly startWindow?: number;
  readonly random?: () => number;
}

export interface SimEventMap {
  registered: RegisteredEvent;
  notified: NotifiedEvent;
  acked: AckedEvent;
}

export interface SimStats {
  readonly devices: number;
  /** Devices whose last registration was answered with a relation. */
  readonly observing: number;
  /** Devices that have applied a snapshot. */
  readonly applied: number;
  /** Devices with nothing in flight or waiting. */
  readonly idle: number;
}

export interface RegistrationSummary {
  readonly devices: number;
  readonly observing: number;
  readonly failed: number;
  /** From start() to the last first registration settling (or to now, when stopped before). */
  readonly ms: number;
}

export class SimError extends Error {
  readonly code = 'HENGE_E_SIM';
}

const OPEN_CHUNK = 256;

type Listener<K extends keyof SimEventMap> = (e: SimEventMap[K]) => void;

export class Simulator implements DeviceHost {
  readonly counters: SimCounters = newCounters();
  /** See SimOptions.ackStatus; devices read it each time they would send an ack. */
  ackStatus: AckStatus | null;
  private readonly devices: SimDevice[] = [];
  private readonly sockets: Socket[] = [];
  /** Each device's DTLS session (coaps), by slot. */
  private readonly dtls: DtlsClient[] = [];
  private readonly ids = new Set<string>();
  /** One wheel for every device's retransmission and re-registration deadline (the hub's own wheel). */
  private readonly timer: TimerWheel<{ readonly d: SimDevice; readonly kind: TimerKind; readonly gen: number }>;
  private readonly listeners: { [K in keyof SimEventMap]: Array<Listener<K>> } = { registered: [], notified: [], acked: [] };
  private hub: (HubAddress & { readonly family: 4 | 6 }) | null = null;
  private pendingFirst = 0;
  private settledFirst = 0;
  private failedFirst = 0;
  private startedAt = 0;
  private lastSettledAt = 0;
  private waiting: Array<() => void> = [];
  private stopped = false;
  /** Notifications read and ACKed, waiting for their device to handle them (see DeviceHost.defer): devices and messages side by side. */
  private deferredDevices: SimDevice[] = [];
  private deferredMessages: Inbound[] = [];
  private drainScheduled = false;
  /** Created once: a closure made per burst would cost an allocation (and, under tsx, a defineProperty) each time. */
  private readonly drainDeferred = (): void => this.drain();
  readonly random: () => number;

  constructor(private readonly opts: SimOptions) {
    this.ackStatus = opts.ackStatus === undefined ? AckStatus.Applied : opts.ackStatus;
    this.random = opts.random ?? Math.random;
    this.timer = new TimerWheel(10, 512, (t) => {
      if (!this.stopped) t.d.onTimer(t.kind, t.gen);
    });
  }

  now(): number {
    return monoNow();
  }

  on<K extends keyof SimEventMap>(event: K, fn: Listener<K>): () => void {
    const list = this.listeners[event] as Array<Listener<K>>;
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  get size(): number {
    return this.devices.length;
  }

  /** Where the devices send, once started. */
  get hubAddress(): HubAddress | null {
    return this.hub;
  }

  /**
   * Opens one socket per device and starts registering them, at most `startWindow` at a time. Resolves
   * once every socket is open; `registration()` tells when the registrations are through. May be called
   * again with more ids.
   */
  async start(ids: readonly string[]): Promise<void> {
    if (this.stopped) throw new SimError('this simulator was stopped');
    const seen = new Set<string>();
    for (const id of ids) {
      if (!DEVICE_ID_PATTERN.test(id)) throw new SimError(`device id ${JSON.stringify(id)}: 1-63 of a-z, 0-9 and -, starting with a letter or digit`);
      if (this.ids.has(id) || seen.has(id)) throw new SimError(`device ${id} is simulated twice`);
      seen.add(id);
    }
    this.hub ??= await resolveHub(typeof this.opts.hub === 'string' ? parseHubAddress(this.opts.hub) : this.opts.hub);
    const hub = this.hub;
    const bind = this.opts.bind ?? bindAddressFor(hub);
    const fresh: SimDevice[] = [];
    for (let i = 0; i < ids.length; i += OPEN_CHUNK) {
      const chunk = ids.slice(i, i + OPEN_CHUNK);
      const opened = await Promise.all(chunk.map((id) => this.open(id, bind, hub)));
      fresh.push(...opened);
    }
    if (this.pendingFirst === this.settledFirst) this.startedAt = monoNow();
    this.pendingFirst += fresh.length;
    const window = Math.max(1, this.opts.startWindow ?? 200);
    let next = 0;
    let inflight = 0;
    const launch = (): void => {
      while (inflight < window && next < fresh.length && !this.stopped) {
        const d = fresh[next++];
        if (!d) break;
        inflight++;
        d.onRegistrationSettled = (ok) => {
          inflight--;
          this.settledFirst++;
          if (!ok) this.failedFirst++;
          this.lastSettledAt = monoNow();
          if (this.settledFirst === this.pendingFirst) this.wakeWaiting();
          launch();
        };
        d.register();
      }
    };
    launch();
  }

  /** Resolves once every started device's first registration was answered or given up. */
  registration(): Promise<RegistrationSummary> {
    const summary = (): RegistrationSummary => ({
      devices: this.pendingFirst,
      observing: this.settledFirst - this.failedFirst,
      failed: this.failedFirst,
      ms: (this.settledFirst >= this.pendingFirst ? this.lastSettledAt : monoNow()) - this.startedAt,
    });
    if (this.settledFirst >= this.pendingFirst || this.stopped) return Promise.resolve(summary());
    return new Promise((resolve) => this.waiting.push(() => resolve(summary())));
  }

  stats(): SimStats {
    let observing = 0;
    let applied = 0;
    let idle = 0;
    for (const d of this.devices) {
      if (d.observing) observing++;
      if (d.appliedVersion >= 0) applied++;
      if (d.idle) idle++;
    }
    return { devices: this.devices.length, observing, applied, idle };
  }

  /** One device's state, for tests. */
  device(id: string): { readonly observing: boolean; readonly appliedVersion: number; readonly idle: boolean } | undefined {
    const d = this.devices.find((x) => x.id === id);
    return d ? { observing: d.observing, appliedVersion: d.appliedVersion, idle: d.idle } : undefined;
  }

  /** Every device registers again now (its keepalive, brought forward). */
  reregisterAll(): void {
    for (const d of this.devices) d.register();
  }

  /**
   * Stops every device and closes its socket. With `deregister`, each device first ends its relation
   * (GET with Observe 1) and the simulator waits for the answers, `timeoutMs` at most.
   */
  async stop(opts: { deregister?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    if (opts.deregister) {
      for (const d of this.devices) d.deregister();
      const deadline = monoNow() + (opts.timeoutMs ?? 2000);
      while (monoNow() < deadline && this.devices.some((d) => !d.idle)) await new Promise((r) => setTimeout(r, 20));
    }
    this.stopped = true;
    this.timer.close();
    for (const d of this.devices) d.stop();
    for (const c of this.dtls) c.close(); // close_notify while the sockets are still open
    await Promise.all(this.sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.wakeWaiting();
  }

  // DeviceHost: what the devices call.

  send(d: SimDevice, bytes: Buffer): void {
    const s = this.sockets[d.slot];
    if (!s) return;
    this.counters.datagramsSent++;
    const dtls = this.dtls[d.slot];
    if (dtls) dtls.send(bytes);
    else s.send(bytes);
  }

  schedule(delayMs: number, d: SimDevice, kind: TimerKind, gen: number): void {
    if (!this.stopped) this.timer.schedule(Math.max(0, delayMs), { d, kind, gen });
  }

  defer(d: SimDevice, msg: Inbound): void {
    this.deferredDevices.push(d);
    this.deferredMessages.push(msg);
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    // setImmediate runs after the poll phase: every datagram already readable is read (and ACKed) first.
    setImmediate(this.drainDeferred);
  }

  private drain(): void {
    this.drainScheduled = false;
    const devices = this.deferredDevices;
    const messages = this.deferredMessages;
    // Two arrays per burst of datagrams, not an entry object per notification.
    this.deferredDevices = [];
    this.deferredMessages = [];
    for (let i = 0; i < devices.length; i++) {
      const d = devices[i];
      const m = messages[i];
      if (d && m) d.deferred(m);
    }
  }

  onRegistered(_d: SimDevice, e: RegisteredEvent): void {
    for (const f of this.listeners.registered) f(e);
  }

  onNotified(_d: SimDevice, e: NotifiedEvent): void {
    for (const f of this.listeners.notified) f(e);
  }

  onAcked(_d: SimDevice, e: AckedEvent): void {
    for (const f of this.listeners.acked) f(e);
  }

  private wakeWaiting(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  private async open(id: string, bind: string, hub: HubAddress & { readonly family: 4 | 6 }): Promise<SimDevice> {
    const socket = createSocket({ type: hub.family === 6 ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, bind, () => {
          // A connected socket: sends need no address, and the kernel drops datagrams from anyone but the hub.
          socket.connect(hub.port, hub.host, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      });
    } catch (err) {
      socket.close();
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EMFILE' || e.code === 'ENFILE') {
        throw new SimError(
          `cannot open the socket of device ${this.devices.length + 1} (${e.code}): too many open files; raise the limit (ulimit -n) above the number of devices`,
          { cause: err },
        );
      }
      throw err;
    }
    if (this.opts.receiveBufferBytes !== undefined) socket.setRecvBufferSize(this.opts.receiveBufferBytes);
    const d = new SimDevice(id, this.sockets.length, this);
    if (this.opts.keyOf) {
      const key = this.opts.keyOf(id);
      if (key === undefined) {
        socket.close();
        throw new SimError(`no key for device ${id} (coaps)`);
      }
      // Its first send (the registration) starts the handshake; what it sends waits for the session.
      const dtls = new DtlsClient((b) => socket.send(b), { identity: id, key }, `the hub (device ${id})`);
      dtls.onData((plain) => d.onDatagram(plain));
      socket.on('message', (bytes) => dtls.receive(bytes));
      this.dtls[this.sockets.length] = dtls;
    } else {
      socket.on('message', (bytes) => d.onDatagram(bytes));
    }
    // e.g. ECONNREFUSED once the hub has gone: counted, never fatal.
    socket.on('error', () => this.counters.socketErrors++);
    this.sockets.push(socket);
    this.devices.push(d);
    this.ids.add(id);
    return d;
  }
}

/** Prometheus metrics for `/metrics`; one registry per hub so tests can run several hubs in a process. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubCore, HubObserver } from '../domain/index.ts';
import type { DtlsTransport } from '../coap/dtls-transport.ts';
import type { CoapEndpoint } from '../coap/endpoint.ts';

export interface HubMetrics {
  readonly registry: Registry;
  readonly observer: HubObserver;
  /** Binds the gauges that read the hub's state (once the hub is open). */
  bind(core: HubCore): void;
  /** Binds the device endpoint's counters. */
  bindCoap(endpoint: CoapEndpoint): void;
  /** The coaps endpoint and its DTLS transport. */
  bindCoaps(endpoint: CoapEndpoint, dtls: DtlsTransport): void;
}

export function createMetrics(): HubMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'henge_' });
  const commands = new Counter({ name: 'henge_writes_total', help: 'Commands that reached the store, by result', labelNames: ['result'] as const, registers: [registry] });
  const latency = new Histogram({
    name: 'henge_commit_latency_seconds',
    help: 'Time from a command being queued to its batch being on disk (fsync)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const batch = new Histogram({
    name: 'henge_commit_batch_commands',
    help: 'Commands written together in one synced batch (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const reloads = new Counter({ name: 'henge_view_reloads_total', help: 'Reloads of the views from the store after a failed write', registers: [registry] });
  let core: HubCore | undefined;
  new Gauge({ name: 'henge_devices', help: 'Devices known to the hub', registers: [registry], collect() { this.set(core?.state.devices.size ?? 0); } });
  new Gauge({ name: 'henge_log_length', help: 'Events in the log (last sequence number)', registers: [registry], collect() { this.set(core?.state.seq ?? 0); } });
  new Gauge({ name: 'henge_store_healthy', help: '1 when the last write reached the disk', registers: [registry], collect() { this.set(core && core.problem === null ? 1 : 0); } });
  let coap: CoapEndpoint | undefined;
  const coapGauge = (name: string, help: string, read: (e: CoapEndpoint) => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(coap ? read(coap) : 0); } });
  };
  coapGauge('henge_coap_observers', 'Devices with a live observe relation', (e) => e.registry.size);
  coapGauge('henge_coap_notifications_inflight', 'Confirmable notifications awaiting their ACK', (e) => e.registry.inflight);
  coapGauge('henge_coap_notifications_sent', 'Notifications sent (first transmissions), since start', (e) => e.counters.notificationsSent);
  coapGauge('henge_coap_retransmissions', 'Notification retransmissions, since start', (e) => e.counters.retransmissions);
  coapGauge('henge_coap_datagrams_received', 'Datagrams received, since start', (e) => e.counters.received);
  coapGauge('henge_coap_malformed', 'Datagrams dropped as not CoAP, since start', (e) => e.counters.malformed);
  coapGauge('henge_coap_bad_requests', 'Requests answered 4.00/4.02/4.05/4.13/4.15 (bad options, payloads, methods, Block2 out of range), since start', (e) => e.counters.badRequests);
  coapGauge('henge_coap_not_found', 'Requests for a device or resource the hub does not have (4.04), since start', (e) => e.counters.notFound);
  coapGauge('henge_coap_ignored', 'Well-formed datagrams not acted on (stray ACK/RST, responses, reserved codes), since start', (e) => e.counters.ignored);
  coapGauge('henge_coap_request_errors', 'Requests that failed inside the hub (5.00, logged), since start', (e) => e.counters.requestErrors);
  coapGauge('henge_coap_duplicates_answered', 'Confirmable requests with a message id already answered (answered again from the cache, not handled twice), since start', (e) => e.counters.duplicatesAnswered);
  coapGauge('henge_coap_acks_received', 'Device acks received, since start', (e) => e.counters.acksReceived);
  let coaps: { endpoint: CoapEndpoint; dtls: DtlsTransport } | undefined;
  const coapsGauge = (name: string, help: string, read: (x: { endpoint: CoapEndpoint; dtls: DtlsTransport }) => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(coaps ? read(coaps) : 0); } });
  };
  coapsGauge('henge_coaps_observers', 'Devices with a live observe relation over DTLS', (x) => x.endpoint.registry.size);
  // The CoAP layer inside DTLS (the default device endpoint) counts what the plain one does.
  const inner: ReadonlyArray<readonly [string, string, (e: CoapEndpoint) => number]> = [
    ['notifications_sent', 'Notifications sent over DTLS (first transmissions), since start', (e) => e.counters.notificationsSent],
    ['retransmissions', 'Notification retransmissions over DTLS, since start', (e) => e.counters.retransmissions],
    ['datagrams_received', 'Decrypted CoAP messages received, since start', (e) => e.counters.received],
    ['malformed', 'Decrypted messages dropped as not CoAP, since start', (e) => e.counters.malformed],
    ['bad_requests', 'Requests over DTLS answered 4.00/4.02/4.05/4.13/4.15, since start', (e) => e.counters.badRequests],
    ['not_found', 'Requests over DTLS for a device or resource the hub does not have (4.04), since start', (e) => e.counters.notFound],
    ['ignored', 'Well-formed messages over DTLS not acted on (stray ACK/RST, responses, reserved codes), since start', (e) => e.counters.ignored],
    ['request_errors', 'Requests over DTLS that failed inside the hub (5.00, logged), since start', (e) => e.counters.requestErrors],
    ['duplicates_answered', 'Confirmable requests over DTLS with a message id already answered, since start', (e) => e.counters.duplicatesAnswered],
    ['acks_received', 'Device acks received over DTLS, since start', (e) => e.counters.acksReceived],
  ];
  for (const [name, help, read] of inner) coapsGauge(`henge_coaps_${name}`, help, (x) => read(x.endpoint));
  coapsGauge('henge_dtls_sessions', 'DTLS sessions open or handshaking', (x) => x.dtls.sessionCount);
  coapsGauge('henge_dtls_datagrams_invalid', 'Datagrams empty or over the size limit, dropped unread, since start', (x) => x.dtls.counters.datagramsInvalid);
  coapsGauge('henge_dtls_datagrams_dropped', 'Datagrams with no session that were no ClientHello (or one OpenSSL would not answer), dropped without state, since start', (x) => x.dtls.counters.datagramsDropped);
  coapsGauge('henge_dtls_handshakes_refused_busy', 'ClientHellos dropped: the hub had its global cap of handshakes in progress, since start', (x) => x.dtls.counters.handshakesRefusedBusy);
  coapsGauge('henge_dtls_hello_verify_requests', 'ClientHellos answered with a cookie request (no state kept), since start', (x) => x.dtls.counters.helloVerifyRequests);
  coapsGauge('henge_dtls_handshakes_completed', 'DTLS handshakes completed, since start', (x) => x.dtls.counters.handshakesCompleted);
  coapsGauge('henge_dtls_handshakes_failed', 'DTLS handshakes failed or abandoned (a wrong key, a vanished peer), since start', (x) => x.dtls.counters.handshakesFailed);
  coapsGauge('henge_dtls_handshakes_wrong_key', 'DTLS handshakes ended at once because the Finished did not decrypt (a wrong key), since start', (x) => x.dtls.counters.handshakesWrongKey);
  coapsGauge('henge_dtls_handshakes_refused_address', 'ClientHellos dropped: their address had its cap of handshakes in progress, since start', (x) => x.dtls.counters.handshakesRefusedAddress);
  coapsGauge('henge_dtls_handshakes_refused_failures', 'ClientHellos dropped: their address spent its failed-handshake budget for the minute, since start', (x) => x.dtls.counters.handshakesRefusedFailures);
  coapsGauge('henge_dtls_sessions_replaced', 'Open DTLS sessions replaced by a completed new handshake from the same address and port, since start', (x) => x.dtls.counters.sessionsReplaced);
  coapsGauge('henge_coaps_forbidden', 'Requests for another device than the DTLS identity (4.03), since start', (x) => x.endpoint.counters.forbidden);
  return {
    registry,
    bindCoaps(endpoint, dtls) {
      coaps = { endpoint, dtls };
    },
    bind(c) {
      core = c;
    },
    bindCoap(e) {
      coap = e;
    },
    observer: {
      commandCommitted(ms) {
        commands.inc({ result: 'ok' });
        latency.observe(ms / 1000);
      },
      commandFailed() {
        commands.inc({ result: 'failed' });
      },
      batchWritten(n) {
        batch.observe(n);
      },
      reloaded() {
        reloads.inc();
      },
    },
  };
}

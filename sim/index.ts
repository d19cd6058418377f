/** henge sim: many simulated devices in one process, for `henge sim`, `npm run demo` and the benchmarks. */
export { Simulator, SimError } from './simulator.ts';
export type { RegistrationSummary, SimEventMap, SimOptions, SimStats } from './simulator.ts';
export type { AckedEvent, NotifiedEvent, RegisteredEvent, SimCounters, Via } from './device.ts';
export { DEFAULT_COAP_PORT, HubAddressError, parseHubAddress } from './address.ts';
export type { HubAddress } from './address.ts';
export { monoNow } from './clock.ts';
export { openFileLimit, SPARE_FILES } from './limits.ts';

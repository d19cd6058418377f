/** DNS-SD discovery of henge hubs: the hub advertises (ciao), devices and the CLI browse (bonjour-service). */
export { advertiseHub } from './advertise.ts';
export type { AdvertiseOptions, HubAdvertisement } from './advertise.ts';
export { browseHubs, findHub, watchHubs } from './browse.ts';
export type { BrowseHubsOptions, BrowseOptions, DiscoveredHub, FindHubOptions, HubWatch, WatchHubsOptions } from './browse.ts';
export { rankAddresses } from './address.ts';
export type { RankedAddress } from './address.ts';
export { AdvertiseError, BrowseError, DiscoveryError, HubNotFoundError } from './errors.ts';
export { HENGE_SUBTYPE, TXT_VERSION, instanceName, parseHubTxt, serviceType, subtypeDomain } from './service.ts';

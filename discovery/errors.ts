/**
 * Errors of DNS-SD discovery. Each has a stable `code` (HENGE_E_*) that logs and tests can rely on; the
 * message is for people.
 */

export abstract class DiscoveryError extends Error {
  abstract readonly code: string;
}

/** No hub (or not the pinned one) answered within the time given to `findHub`. */
export class HubNotFoundError extends DiscoveryError {
  readonly code = 'HENGE_E_HUB_NOT_FOUND';
}

/** `advertiseHub` was given something it cannot advertise, or the mDNS responder failed. */
export class AdvertiseError extends DiscoveryError {
  readonly code = 'HENGE_E_ADVERTISE';
}

/** The mDNS socket used for browsing failed (e.g. port 5353 cannot be bound). */
export class BrowseError extends DiscoveryError {
  readonly code = 'HENGE_E_BROWSE';
}

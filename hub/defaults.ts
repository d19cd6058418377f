/** Defaults shared by the hub and the CLI (kept apart so the CLI starts without loading the hub). */
export const DEFAULT_DATA_DIR = '.henge/hub';
export const DEFAULT_API_PORT = 7683;
export const DEFAULT_API_HOST = '127.0.0.1';
export const DEFAULT_COAP_PORT = 5683;
/** coaps: CoAP over DTLS (RFC 7252 §6.2). */
export const DEFAULT_COAPS_PORT = 5684;

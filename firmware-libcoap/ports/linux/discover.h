/*
 * discover.h: finding the hub over mDNS / DNS-SD when henge-fw has no --hub (docs/protocol.md,
 * "Discovery"): the core's `discover` platform hook. The socket is here; the DNS messages are the
 * core's (core/henge_dnssd.c).
 */
#ifndef FW_DISCOVER_H
#define FW_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include "fw_ctx.h"
#include "henge.h"

/* How long one search listens for answers before the device backs off and tries again. */
#define FW_DISCOVERY_WINDOW_MS 3000

/*
 * henge_platform.discover (ctx: the fw_ctx): a one-shot mDNS browse of `_henge._sub._coaps._udp.local`
 * with a key (else `_coap._udp`) from an ephemeral port, so that responders answer by unicast (RFC 6762
 * §5.1, §6.7): the query goes out of every IPv4 multicast interface at 0, 1 and 2 s, and again at once
 * for whatever records an answer left out; answers are read for up to FW_DISCOVERY_WINDOW_MS. The first
 * usable hub (TXT v=1, an id, an api port, an SRV port, an address; the pinned id when state.json has
 * one) is taken: its IPv4 address (else a routable IPv6 one) into host, its SRV port into *port;
 * fw->hub_source says `mdns <instance>`, and a first hub is pinned in state.json (logged "pinned hub").
 * Each instance set aside is logged once per search ("ignored", with the instance and why).
 * HENGE_OK; HENGE_E_NOT_FOUND with the reason in fw->discover_err (nobody answered, a signal came);
 * HENGE_E_UNSUPPORTED when no UDP socket could be had (also in fw->discover_err).
 */
henge_status fw_discover_hub(void *ctx, char *host, size_t host_cap, uint16_t *port);

#endif

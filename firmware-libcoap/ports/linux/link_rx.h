/*
 * link_rx.h: what comes back from the hub, as libcoap hands it over: the answers to the registration
 * and its notifications (a snapshot, 2.03, a refusal), the answers to the ack, telemetry and
 * deregistration, NACKs (no answer, RST, a failed DTLS handshake), session events, and libcoap's own
 * log lines.
 */
#ifndef FW_LINK_RX_H
#define FW_LINK_RX_H

#include <coap3/coap.h>

/* Registers the response, NACK and event handlers on a new context (its app data: the fw_ctx). Cannot fail. */
void fw_link_rx_install(coap_context_t *ctx);

/* libcoap's log handler: its lines go into henge-fw's log (debug, but for emergencies). */
void fw_link_rx_log(coap_log_t level, const char *message);

#endif

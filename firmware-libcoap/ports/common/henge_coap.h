/*
 * henge_coap.h: the libcoap plumbing both device clients share (the Linux port's henge-fw in
 * ports/linux, and the microcontroller client in ports/pico-w used by the Pico W and ESP32 ports):
 * the henge paths, a CBOR payload, token matching, response codes as text, and NSTART around an abandoned
 * exchange (henge_link.h decides; henge_coap_next and the rest tell libcoap). C99, no allocation.
 */
#ifndef HENGE_COAP_H
#define HENGE_COAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coap3/coap.h>

#include "henge.h"
#include "henge_link.h"

/* Adds Uri-Path d / <device> / <resource> (docs/protocol.md, "Resources"). HENGE_E_SPACE when the PDU has no room. */
henge_status henge_coap_add_path(coap_pdu_t *pdu, const char *device, const char *resource);

/* Adds Content-Format 60 (application/cbor) and the payload. HENGE_E_SPACE when the PDU has no room. */
henge_status henge_coap_add_cbor(coap_pdu_t *pdu, const uint8_t *payload, size_t n);

/* True when token `t` is the non-empty token tok[0..len). */
bool henge_coap_token_is(coap_bin_const_t t, const uint8_t *tok, size_t len);

/* A response code as "c.dd" (e.g. "2.05") in out[8]. */
henge_status henge_coap_code_text(coap_pdu_code_t code, char out[8]);

/*
 * Newest ack first (docs/protocol.md, "Ack") on libcoap: the decisions are henge_link's (henge_link.h);
 * these calls add what libcoap must be told. libcoap 4.3.1 has no public call to end an exchange, so the
 * one a newer ack supersedes runs on inside libcoap until it is answered, reset or given up. While it
 * does, the session's NSTART is 2, so that the client's one own exchange (the newest ack, then the
 * registration that replaces an abandoned one) goes at once beside it instead of queueing behind it; the
 * client keeps to one exchange of its own at a time, and one abandoned exchange at a time, so at most two
 * CON exchanges are ever outstanding. NSTART is 1 again once it ends (its answer, its NACK, libcoap
 * cancelling it, or its longest span gone by). Each returns what the henge_link call returns; `session`
 * NULL: HENGE_E_ARG, nothing changed.
 */

/* henge_link_next on `session`: NSTART 2 when the action abandons an exchange (henge_link_abandons). */
henge_status henge_coap_next(henge_link *l, coap_session_t *session, const henge_device *dev, uint64_t now_ms, unsigned flags, henge_link_action *action);

/* henge_link_ended on `session`: NSTART 1 again when the abandoned exchange ended. */
henge_status henge_coap_ended(henge_link *l, coap_session_t *session, henge_link_rx rx, uint8_t code_class);

/* henge_link_expire on `session`: NSTART 1 again when the abandoned exchange's span is over (*ended). */
henge_status henge_coap_expire(henge_link *l, coap_session_t *session, uint64_t now_ms, bool *ended);

/* henge_link_token_cancelled on `session`: NSTART 1 again when the abandoned re-registration ended with it. */
henge_status henge_coap_token_cancelled(henge_link *l, coap_session_t *session, bool *reregistration_ended);

/* henge_link_rx_of for a libcoap token and message id. */
henge_status henge_coap_rx_of(const henge_link *l, coap_bin_const_t token, coap_mid_t mid, henge_link_rx *rx);

#endif

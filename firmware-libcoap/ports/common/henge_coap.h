/*
 * henge_coap.h: the libcoap plumbing both device clients share (the Linux port's henge-fw in
 * ports/linux, and the microcontroller client in ports/pico-w used by the Pico W and ESP32 ports):
 * the henge paths, a CBOR payload, token matching, response codes as text. C99, no allocation.
 */
#ifndef HENGE_COAP_H
#define HENGE_COAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coap3/coap.h>

#include "henge.h"

/* Adds Uri-Path d / <device> / <resource> (docs/protocol.md, "Resources"). HENGE_E_SPACE when the PDU has no room. */
henge_status henge_coap_add_path(coap_pdu_t *pdu, const char *device, const char *resource);

/* Adds Content-Format 60 (application/cbor) and the payload. HENGE_E_SPACE when the PDU has no room. */
henge_status henge_coap_add_cbor(coap_pdu_t *pdu, const uint8_t *payload, size_t n);

/* True when token `t` is the non-empty token tok[0..len). */
bool henge_coap_token_is(coap_bin_const_t t, const uint8_t *tok, size_t len);

/* A response code as "c.dd" (e.g. "2.05") in out[8]. */
henge_status henge_coap_code_text(coap_pdu_code_t code, char out[8]);

/*
 * Newest ack first (docs/protocol.md, "Ack") on libcoap, which has no public call to end an exchange
 * (4.3.1 has none): the exchange a newer ack supersedes, an older ack or a re-registration, is abandoned
 * but runs on inside libcoap until it is answered, reset or given up. While it does, the session's NSTART
 * is 2, so that the client's one own exchange (the newest ack, then the registration that replaces an
 * abandoned one) goes at once beside it instead of queueing behind it; the client keeps to one exchange
 * of its own at a time, and one abandoned exchange at a time, so at most two CON exchanges are ever
 * outstanding. The abandoned exchange's answer is recognised here and ignored by the client. NSTART is 1
 * again once it ends (its answer, its NACK, libcoap cancelling it, or its longest span gone by).
 */
typedef enum henge_coap_abandoned_kind {
  HENGE_COAP_ABANDONED_NONE = 0,
  HENGE_COAP_ABANDONED_ACK = 1,         /* an ack POST: known by its token (each ack has its own) */
  HENGE_COAP_ABANDONED_REGISTRATION = 2 /* a re-registration: known by its message id (its token is the observation's) */
} henge_coap_abandoned_kind;

/*
 * The longest an exchange can last: RFC 7252 MAX_TRANSMIT_WAIT with libcoap's defaults (ACK_TIMEOUT 2 s,
 * ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4: 93 s), and a margin. By then libcoap has given it up, even if
 * no callback said so (an empty ACK stops its retransmissions silently).
 */
#define HENGE_COAP_EXCHANGE_SPAN_MS 95000u

typedef struct henge_coap_abandoned {
  henge_coap_abandoned_kind kind;
  uint8_t token[8];
  size_t token_len;
  coap_mid_t mid;
  uint64_t version;  /* an abandoned ack's version (for the log) */
  uint64_t until_ms; /* over by then, whatever libcoap said */
} henge_coap_abandoned;

/*
 * Abandons the exchange of `kind` (token, and message id `mid`), first sent at `sent_ms`: NSTART 2 on
 * `session` until henge_coap_abandoned_end. HENGE_E_ARG: a bad argument, or another exchange abandoned
 * still (one at a time), nothing changed.
 */
henge_status henge_coap_abandon(henge_coap_abandoned *a, coap_session_t *session, henge_coap_abandoned_kind kind, const uint8_t *token,
                                size_t token_len, coap_mid_t mid, uint64_t version, uint64_t sent_ms);

/*
 * Whether an answer or a NACK belongs to the abandoned exchange, into *match: an ack by its token (the
 * answer's or the NACKed request's), a registration by the message id of the request (the one an answer
 * answers, or the NACKed one; COAP_INVALID_MID when there is none, e.g. a notification).
 */
henge_status henge_coap_abandoned_match(const henge_coap_abandoned *a, coap_bin_const_t token, coap_mid_t mid, bool *match);

/* Its exchange ended (or its session is gone: `session` NULL): forgotten, NSTART 1 again. HENGE_E_ARG: a NULL `a`. */
henge_status henge_coap_abandoned_end(henge_coap_abandoned *a, coap_session_t *session);

/* Ends it (as henge_coap_abandoned_end) when its span is over at `now_ms`; *ended says whether it did now. */
henge_status henge_coap_abandoned_expire(henge_coap_abandoned *a, coap_session_t *session, uint64_t now_ms, bool *ended);

#endif

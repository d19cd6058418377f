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

#endif

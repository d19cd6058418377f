/* henge_coap.c: see henge_coap.h. */
#include "henge_coap.h"

#include <stdio.h>
#include <string.h>

henge_status henge_coap_add_path(coap_pdu_t *pdu, const char *device, const char *resource) {
  const char *segments[3] = {"d", device, resource};
  for (size_t i = 0; i < 3; i++) {
    if (coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(segments[i]), (const uint8_t *)segments[i]) == 0) return HENGE_E_SPACE;
  }
  return HENGE_OK;
}

henge_status henge_coap_add_cbor(coap_pdu_t *pdu, const uint8_t *payload, size_t n) {
  uint8_t buf[4];
  if (coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, COAP_MEDIATYPE_APPLICATION_CBOR), buf) == 0) return HENGE_E_SPACE;
  return coap_add_data(pdu, n, payload) ? HENGE_OK : HENGE_E_SPACE;
}

bool henge_coap_token_is(coap_bin_const_t t, const uint8_t *tok, size_t len) {
  return len > 0 && t.length == len && memcmp(t.s, tok, len) == 0;
}

henge_status henge_coap_code_text(coap_pdu_code_t code, char out[8]) {
  snprintf(out, 8, "%d.%02d", (code >> 5) & 7, code & 0x1f);
  return HENGE_OK;
}

/* NSTART while an abandoned exchange runs: it, and the client's one own exchange beside it. */
#define NSTART_BESIDE 2u
#define NSTART_DEFAULT 1u

henge_status henge_coap_next(henge_link *l, coap_session_t *session, const henge_device *dev, uint64_t now_ms, unsigned flags, henge_link_action *action) {
  if (session == NULL) return HENGE_E_ARG;
  henge_status st = henge_link_next(l, dev, now_ms, flags, action);
  if (st == HENGE_OK && henge_link_abandons(*action)) coap_session_set_nstart(session, NSTART_BESIDE);
  return st;
}

henge_status henge_coap_ended(henge_link *l, coap_session_t *session, henge_link_rx rx, uint8_t code_class) {
  if (session == NULL) return HENGE_E_ARG;
  bool was_abandoned = false;
  henge_status st = henge_link_ended(l, rx, code_class, &was_abandoned);
  if (st == HENGE_OK && was_abandoned) coap_session_set_nstart(session, NSTART_DEFAULT);
  return st;
}

henge_status henge_coap_expire(henge_link *l, coap_session_t *session, uint64_t now_ms, bool *ended) {
  if (session == NULL) return HENGE_E_ARG;
  henge_status st = henge_link_expire(l, now_ms, ended);
  if (st == HENGE_OK && *ended) coap_session_set_nstart(session, NSTART_DEFAULT);
  return st;
}

henge_status henge_coap_token_cancelled(henge_link *l, coap_session_t *session, bool *reregistration_ended) {
  if (session == NULL) return HENGE_E_ARG;
  bool abandoned_ended = false;
  henge_status st = henge_link_token_cancelled(l, &abandoned_ended, reregistration_ended);
  if (st == HENGE_OK && abandoned_ended) coap_session_set_nstart(session, NSTART_DEFAULT);
  return st;
}

henge_status henge_coap_rx_of(const henge_link *l, coap_bin_const_t token, coap_mid_t mid, henge_link_rx *rx) {
  return henge_link_rx_of(l, token.length > 0 ? token.s : NULL, token.length, mid, rx);
}

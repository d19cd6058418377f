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

henge_status henge_coap_abandon(henge_coap_abandoned *a, coap_session_t *session, henge_coap_abandoned_kind kind, const uint8_t *token,
                                size_t token_len, coap_mid_t mid, uint64_t version, uint64_t sent_ms) {
  if (a == NULL || session == NULL || token == NULL || token_len == 0 || token_len > sizeof a->token || a->kind != HENGE_COAP_ABANDONED_NONE)
    return HENGE_E_ARG;
  if (kind != HENGE_COAP_ABANDONED_ACK && kind != HENGE_COAP_ABANDONED_REGISTRATION) return HENGE_E_ARG;
  a->kind = kind;
  memcpy(a->token, token, token_len);
  a->token_len = token_len;
  a->mid = mid;
  a->version = version;
  a->until_ms = sent_ms + HENGE_COAP_EXCHANGE_SPAN_MS;
  coap_session_set_nstart(session, NSTART_BESIDE);
  return HENGE_OK;
}

henge_status henge_coap_abandoned_match(const henge_coap_abandoned *a, coap_bin_const_t token, coap_mid_t mid, bool *match) {
  if (a == NULL || match == NULL) return HENGE_E_ARG;
  if (a->kind == HENGE_COAP_ABANDONED_ACK) *match = henge_coap_token_is(token, a->token, a->token_len);
  else if (a->kind == HENGE_COAP_ABANDONED_REGISTRATION) *match = mid != COAP_INVALID_MID && mid == a->mid;
  else *match = false;
  return HENGE_OK;
}

henge_status henge_coap_abandoned_end(henge_coap_abandoned *a, coap_session_t *session) {
  if (a == NULL) return HENGE_E_ARG;
  if (a->kind != HENGE_COAP_ABANDONED_NONE && session != NULL) coap_session_set_nstart(session, NSTART_DEFAULT);
  memset(a, 0, sizeof *a);
  a->mid = COAP_INVALID_MID;
  return HENGE_OK;
}

henge_status henge_coap_abandoned_expire(henge_coap_abandoned *a, coap_session_t *session, uint64_t now_ms, bool *ended) {
  if (a == NULL || ended == NULL) return HENGE_E_ARG;
  *ended = a->kind != HENGE_COAP_ABANDONED_NONE && now_ms >= a->until_ms;
  return *ended ? henge_coap_abandoned_end(a, session) : HENGE_OK;
}

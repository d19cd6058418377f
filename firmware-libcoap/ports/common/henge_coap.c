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

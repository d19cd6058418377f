/*
 * henge_ack.c: the ack a device POSTs to /d/{id}/a (docs/protocol.md, "Ack") and its telemetry, as
 * deterministic CBOR (shortest heads; integer keys in ascending order).
 */
#include "henge_internal.h"

enum { ACK_VERSION = 1, ACK_STATUS = 2, ACK_MESSAGE = 3, ACK_HASH = 4, ACK_INCARNATION = 5 };

henge_status henge_ack_encode(const henge_ack *ack, uint8_t *buf, size_t cap, size_t *len) {
  if (ack == NULL || buf == NULL || len == NULL) return HENGE_E_ARG;
  if (ack->status > HENGE_ACK_REVERTED) return HENGE_E_ARG;
  if (ack->message == NULL && ack->message_len > 0) return HENGE_E_ARG;
  henge_cbor_writer w = {buf, cap, 0, false};
  bool has_message = ack->message != NULL;
  uint64_t entries = 2u + (has_message ? 1u : 0u) + (ack->has_hash ? 1u : 0u) + (ack->has_incarnation ? 1u : 0u);
  henge_cbor_put_head(&w, HENGE_CBOR_MAP, entries);
  henge_cbor_put_head(&w, HENGE_CBOR_UINT, ACK_VERSION);
  henge_cbor_put_head(&w, HENGE_CBOR_UINT, ack->version);
  henge_cbor_put_head(&w, HENGE_CBOR_UINT, ACK_STATUS);
  henge_cbor_put_head(&w, HENGE_CBOR_UINT, ack->status);
  if (has_message) {
    const uint8_t *m = (const uint8_t *)ack->message;
    henge_cbor_put_head(&w, HENGE_CBOR_UINT, ACK_MESSAGE);
    if (ack->message_len <= HENGE_ACK_MESSAGE_MAX) {
      henge_cbor_put_head(&w, HENGE_CBOR_TEXT, ack->message_len);
      henge_cbor_put_bytes(&w, m, ack->message_len);
    } else {
      /* Too long for the protocol: cut on a character boundary, and say so with "...". */
      size_t keep = henge_utf8_prefix(m, ack->message_len, HENGE_ACK_MESSAGE_MAX - 3);
      henge_cbor_put_head(&w, HENGE_CBOR_TEXT, keep + 3);
      henge_cbor_put_bytes(&w, m, keep);
      henge_cbor_put_bytes(&w, (const uint8_t *)"...", 3);
    }
  }
  if (ack->has_hash) {
    henge_cbor_put_head(&w, HENGE_CBOR_UINT, ACK_HASH);
    henge_cbor_put_head(&w, HENGE_CBOR_BYTES, HENGE_HASH_BYTES);
    henge_cbor_put_bytes(&w, ack->hash, HENGE_HASH_BYTES);
  }
  if (ack->has_incarnation) {
    henge_cbor_put_head(&w, HENGE_CBOR_UINT, ACK_INCARNATION);
    henge_cbor_put_head(&w, HENGE_CBOR_BYTES, HENGE_INCARNATION_BYTES);
    henge_cbor_put_bytes(&w, ack->incarnation, HENGE_INCARNATION_BYTES);
  }
  if (w.failed) return HENGE_E_SPACE;
  *len = w.len;
  return HENGE_OK;
}

henge_status henge_telemetry_encode_agent(const char *name, size_t name_len, uint8_t *buf, size_t cap, size_t *len) {
  if (name == NULL || buf == NULL || len == NULL || name_len > 255) return HENGE_E_ARG;
  henge_cbor_writer w = {buf, cap, 0, false};
  henge_cbor_put_head(&w, HENGE_CBOR_MAP, 1);
  henge_cbor_put_head(&w, HENGE_CBOR_TEXT, 6);
  henge_cbor_put_bytes(&w, (const uint8_t *)"_agent", 6);
  henge_cbor_put_head(&w, HENGE_CBOR_TEXT, name_len);
  henge_cbor_put_bytes(&w, (const uint8_t *)name, name_len);
  if (w.failed) return HENGE_E_SPACE;
  *len = w.len;
  return HENGE_OK;
}

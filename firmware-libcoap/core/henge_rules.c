/*
 * henge_rules.c: which snapshot a device applies (docs/protocol.md, "Version and incarnation rules"),
 * and the names of statuses and decisions.
 */
#include "henge_internal.h"

#include <string.h>

henge_status henge_decide(const henge_mark *applied, const henge_mark *incoming, henge_decision *decision) {
  if (incoming == NULL || decision == NULL) return HENGE_E_ARG;
  if (applied == NULL) {
    *decision = HENGE_APPLY_FIRST;
  } else if (memcmp(applied->incarnation, incoming->incarnation, HENGE_INCARNATION_BYTES) != 0) {
    /* The hub's store was rebuilt: its versions start again, so any version applies. */
    *decision = HENGE_APPLY_NEW_INCARNATION;
  } else if (incoming->version > applied->version) {
    *decision = HENGE_APPLY_NEWER;
  } else {
    /* Arrival order never decides: a duplicate or a reordered older delivery is ignored. */
    *decision = incoming->version == applied->version ? HENGE_IGNORE_SAME : HENGE_IGNORE_OLDER;
  }
  return HENGE_OK;
}

const char *henge_decision_name(henge_decision decision) {
  switch (decision) {
    case HENGE_APPLY_FIRST: return "first";
    case HENGE_APPLY_NEWER: return "newer";
    case HENGE_APPLY_NEW_INCARNATION: return "new-incarnation";
    case HENGE_IGNORE_SAME: return "same";
    case HENGE_IGNORE_OLDER: return "older";
  }
  return "?";
}

const char *henge_status_name(henge_status status) {
  switch (status) {
    case HENGE_OK: return "HENGE_OK";
    case HENGE_E_ARG: return "HENGE_E_ARG";
    case HENGE_E_CBOR: return "HENGE_E_CBOR";
    case HENGE_E_SNAPSHOT: return "HENGE_E_SNAPSHOT";
    case HENGE_E_PROTOCOL: return "HENGE_E_PROTOCOL";
    case HENGE_E_LIMIT: return "HENGE_E_LIMIT";
    case HENGE_E_INTEGRITY: return "HENGE_E_INTEGRITY";
    case HENGE_E_SPACE: return "HENGE_E_SPACE";
    case HENGE_E_FLASH: return "HENGE_E_FLASH";
    case HENGE_E_NOT_FOUND: return "HENGE_E_NOT_FOUND";
    case HENGE_E_APPLY: return "HENGE_E_APPLY";
    case HENGE_E_REJECT: return "HENGE_E_REJECT";
    case HENGE_E_UNSUPPORTED: return "HENGE_E_UNSUPPORTED";
    case HENGE_E_DNS: return "HENGE_E_DNS";
  }
  return "HENGE_E_?";
}

const char *henge_ack_status_name(henge_ack_status status) {
  switch (status) {
    case HENGE_ACK_APPLIED: return "applied";
    case HENGE_ACK_REJECTED: return "rejected";
    case HENGE_ACK_FAILED: return "failed";
    case HENGE_ACK_REVERTED: return "reverted";
  }
  return "?";
}

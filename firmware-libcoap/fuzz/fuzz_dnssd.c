/*
 * fuzz_dnssd: libFuzzer target for hub discovery's DNS side (core/henge_dnssd.c), the parser of mDNS
 * answers from the network, with oracles beyond "no crash" (ASan and UBSan watch for that):
 *
 *   - the status is one henge_dnssd_on_message documents (OK, DNS, NOT_FOUND, LIMIT); a message that
 *     is not taken leaves the table empty (it is checked whole before anything is taken);
 *   - the same bytes into a fresh browse give the same status and the same table, byte for byte, and
 *     a second delivery of the same message changes nothing (answers repeat on mDNS);
 *   - the table stays within HENGE_DNSSD_MAX_HUBS, every name in it is well-formed wire form (labels of
 *     1-63 bytes ending with the root, at most 255 bytes), a kept hub id is 1-63 bytes without spaces
 *     or control characters;
 *   - henge_dnssd_pick picks a hub whose verdict is USABLE (with and without a pin), and only that;
 *   - the follow-up query fits HENGE_DNS_MAX_MESSAGE and is itself a well-formed DNS query (the parser
 *     reads it and says it is not an answer).
 *
 * The input is the message, whole. Its ID's low byte, which the parser never looks at, chooses the
 * service (bit 0: _coaps) and the pin (bit 1: the first hub's id); the captured answers' IDs select the
 * service they answer. Seeds: fuzz/corpus/dnssd (what the hub's advertiser sent, fuzz/dnssd-seeds.ts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "henge.h"

static henge_dnssd_browse first, second;

static void fail(const char *what, henge_status st) {
  fprintf(stderr, "fuzz_dnssd: %s (status %s)\n", what, henge_status_name(st));
  abort();
}

static int name_ok(const uint8_t *name, size_t len) {
  if (len < 1 || len > HENGE_DNS_NAME_MAX) return 0;
  size_t p = 0;
  while (p < len && name[p] != 0) {
    if (name[p] > HENGE_DNS_LABEL_MAX) return 0;
    p += 1u + name[p];
  }
  return p == len - 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t choice = size >= 2 ? data[1] : 0;
  bool secure = (choice & 1) != 0, pin = (choice & 2) != 0;
  const uint8_t *msg = data;
  size_t len = size;

  if (henge_dnssd_browse_init(&first, secure) != HENGE_OK || henge_dnssd_browse_init(&second, secure) != HENGE_OK) fail("browse_init", HENGE_E_ARG);
  henge_status st = henge_dnssd_on_message(&first, msg, len);
  if (st != HENGE_OK && st != HENGE_E_DNS && st != HENGE_E_NOT_FOUND && st != HENGE_E_LIMIT) fail("a status on_message does not document", st);
  if (st != HENGE_OK && (first.count != 0 || first.dropped != 0)) fail("a message not taken left something in the table", st);
  if (len > HENGE_DNS_MAX_MESSAGE && st != HENGE_E_LIMIT) fail("a message over the limit was read", st);

  henge_status st2 = henge_dnssd_on_message(&second, msg, len);
  if (st2 != st || memcmp(&first, &second, sizeof first) != 0) fail("the same bytes give another result", st2);
  st2 = henge_dnssd_on_message(&second, msg, len);
  if (st2 != st) fail("a second delivery gives another status", st2);
  if (second.count != first.count) fail("a second delivery of the same message changed the table", st2);

  if (first.count > HENGE_DNSSD_MAX_HUBS) fail("more hubs than the table holds", st);
  if (!name_ok(first.service, first.service_len)) fail("the browsed name is not wire form", st);
  for (size_t i = 0; i < first.count; i++) {
    const henge_dnssd_hub *h = &first.hubs[i];
    if (!name_ok(h->instance, h->instance_len) || h->instance_len < 2) fail("an instance name is not wire form", st);
    if (h->has_srv && !name_ok(h->target, h->target_len)) fail("an SRV target is not wire form", st);
    if ((h->has_a || h->has_aaaa) && !h->has_srv) fail("an address without an SRV target", st);
    if (h->id_ok) {
      if (h->id_len < 1 || h->id_len > HENGE_DNSSD_HUB_ID_MAX || strlen(h->id) != h->id_len) fail("a hub id of a wrong length", st);
      for (size_t k = 0; k < h->id_len; k++)
        if ((unsigned char)h->id[k] <= 0x20 || h->id[k] == 0x7f) fail("a hub id with a space or a control character", st);
    }
    if (strlen(h->v) > HENGE_DNSSD_TXT_V_MAX) fail("the kept v is longer than its buffer", st);
  }

  const char *pinned = NULL;
  size_t pinned_len = 0;
  if (pin && first.count > 0 && first.hubs[0].id_ok) {
    pinned = first.hubs[0].id;
    pinned_len = first.hubs[0].id_len;
  }
  size_t idx = 0;
  henge_status ps = henge_dnssd_pick(&first, pinned, pinned_len, &idx);
  if (ps == HENGE_OK) {
    henge_dnssd_verdict v;
    if (idx >= first.count || henge_dnssd_verdict_of(&first.hubs[idx], pinned, pinned_len, &v) != HENGE_OK || v != HENGE_DNSSD_USABLE)
      fail("picked a hub that is not usable", ps);
    if (pinned != NULL && (first.hubs[idx].id_len != pinned_len || memcmp(first.hubs[idx].id, pinned, pinned_len) != 0)) fail("picked another hub than the pinned one", ps);
    for (size_t i = 0; i < idx; i++) {
      if (henge_dnssd_verdict_of(&first.hubs[i], pinned, pinned_len, &v) != HENGE_OK || v == HENGE_DNSSD_USABLE) fail("did not pick the first usable hub", ps);
    }
  } else if (ps != HENGE_E_NOT_FOUND) {
    fail("a status pick does not document", ps);
  }

  static uint8_t q[HENGE_DNS_MAX_MESSAGE];
  size_t qn = 0;
  henge_status qs = henge_dnssd_query(&first, 0x1234, q, sizeof q, &qn);
  if (qs != HENGE_OK || qn > sizeof q) fail("the follow-up query does not fit one message", qs);
  henge_dnssd_browse_init(&second, secure);
  qs = henge_dnssd_on_message(&second, q, qn);
  if (qs != HENGE_E_NOT_FOUND) fail("the query is not a well-formed DNS query", qs);
  return 0;
}

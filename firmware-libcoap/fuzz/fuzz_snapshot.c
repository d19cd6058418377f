/*
 * fuzz_snapshot: libFuzzer target for the snapshot decoder (henge_snapshot_decode) and the device
 * logic right above it, with oracles beyond "no crash" (ASan and UBSan watch for that):
 *
 *   - the status is one the decoder documents (OK, CBOR, SNAPSHOT, PROTOCOL, LIMIT), and a second
 *     decode of the same bytes gives the same status and the same fields;
 *   - OK only for one strictly well-formed CBOR item (RFC 8949 Appendix C, fuzz_cbor.h; inputs that
 *     once got through the core's skip of unknown envelope values are kept in fuzz/known/);
 *     HENGE_E_CBOR only for bytes that are not one;
 *   - a decoded snapshot is what docs/protocol.md allows (keys, never __proto__, UTF-8, integers
 *     within ±(2^53 - 1), finite floats, no key twice,
 *     pointers inside the input or the arena, within this build's limits), and henge_snapshot_find
 *     finds each key's own field and nothing else;
 *   - written back in preferred serialisation it is no longer than the input, decodes to the very
 *     same fields, and writes back to the same bytes again (a fixed point);
 *   - henge_device_on_snapshot handles anything (HENGE_OK), and a pending ack encodes into
 *     HENGE_ACK_MAX_BYTES as one well-formed CBOR item.
 *
 * Build and run: fuzz/Makefile, fuzz/run.sh. The limits are the core's defaults (henge_config.h: what a
 * Cortex-M0+ build ships), so every limit is in reach of a 4 KB input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cbor.h"
#include "henge.h"

static henge_snapshot first, second, third;
static uint8_t again[HENGE_MAX_SNAPSHOT_BYTES], again2[HENGE_MAX_SNAPSHOT_BYTES];

static void fail(const char *what, henge_status st, const henge_snapshot *s) {
  fprintf(stderr, "fuzz_snapshot: %s (status %s, decoder says: %s)\n", what, henge_status_name(st), s && s->error ? s->error : "-");
  abort();
}

static int apply_calls;
static henge_status apply(void *ctx, const henge_snapshot *s, const uint8_t *b, size_t n, const char **why) {
  (void)ctx;
  (void)b;
  (void)n;
  apply_calls++;
  *why = "fuzz: refused";
  /* All three answers, picked from the snapshot so that runs replay the same. */
  return s->version % 3 == 0 ? HENGE_OK : s->version % 3 == 1 ? HENGE_E_APPLY : HENGE_E_REJECT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  henge_status st = henge_snapshot_decode(data, size, &first);
  if (st != HENGE_OK && st != HENGE_E_CBOR && st != HENGE_E_SNAPSHOT && st != HENGE_E_PROTOCOL && st != HENGE_E_LIMIT)
    fail("a status the decoder does not document", st, &first);
  if (st == HENGE_OK && first.error != NULL) fail("HENGE_OK with an error message", st, &first);

  henge_status st2 = henge_snapshot_decode(data, size, &second);
  if (st2 != st || second.envelope_ok != first.envelope_ok) fail("a second decode of the same bytes differs", st2, &second);
  if (st == HENGE_OK && !fz_same_snapshot(&first, &second)) fail("a second decode gives other fields", st, &second);

  bool wf = fz_well_formed(data, size);
  if (st == HENGE_OK && !wf) fail("decoded bytes that are not one well-formed CBOR item", st, &first);
  if (st == HENGE_E_CBOR && wf && size <= HENGE_MAX_SNAPSHOT_BYTES) fail("HENGE_E_CBOR for a well-formed CBOR item", st, &first);

  if (st == HENGE_OK) {
    const char *wrong = fz_check_decoded(&first, data, size);
    if (wrong != NULL) fail(wrong, st, &first);
    /* henge_snapshot_find: every key finds its own field; a key one byte longer finds nothing. */
    for (uint16_t i = 0; i < first.count; i++) {
      const henge_field *f = NULL;
      if (henge_snapshot_find(&first, first.fields[i].key, first.fields[i].key_len, &f) != HENGE_OK || f != &first.fields[i])
        fail("henge_snapshot_find does not find a decoded key", st, &first);
      char longer[HENGE_MAX_KEY_LEN + 1];
      memcpy(longer, first.fields[i].key, first.fields[i].key_len);
      longer[first.fields[i].key_len] = '~'; /* not a key character: no field has it */
      if (henge_snapshot_find(&first, longer, first.fields[i].key_len + 1u, &f) != HENGE_E_NOT_FOUND) fail("henge_snapshot_find finds a key that is not there", st, &first);
    }
    size_t n = 0, n2 = 0;
    if (!fz_encode_snapshot(&first, again, sizeof again, &n)) fail("the decoded snapshot does not re-encode", st, &first);
    if (n > size) fail("the preferred re-encoding is longer than the input", st, &first);
    henge_status st3 = henge_snapshot_decode(again, n, &third);
    if (st3 != HENGE_OK) fail("the re-encoded snapshot does not decode", st3, &third);
    if (!fz_same_snapshot(&first, &third)) fail("the re-encoded snapshot decodes to other fields", st3, &third);
    if (!fz_encode_snapshot(&third, again2, sizeof again2, &n2) || n2 != n || memcmp(again, again2, n) != 0)
      fail("re-encoding is not a fixed point", st3, &third);
  }

  /* The device on top: whatever arrives, it answers HENGE_OK and leaves an ack that encodes. */
  static henge_platform platform = {NULL, apply, NULL, NULL, NULL, NULL};
  static henge_device dev;
  henge_device_init(&dev, &platform, 60000);
  henge_outcome outcome;
  apply_calls = 0;
  henge_status ds = henge_device_on_snapshot(&dev, data, size, NULL, 0, &second, &outcome);
  if (ds != HENGE_OK) fail("henge_device_on_snapshot did not handle the input", ds, &second);
  if (apply_calls != (outcome == HENGE_OUT_APPLIED || outcome == HENGE_OUT_FAILED || (outcome == HENGE_OUT_REJECTED && st == HENGE_OK)))
    fail("platform->apply called when it should not be, or not called", ds, &second);
  if ((outcome == HENGE_OUT_UNDECODABLE) != (st != HENGE_OK && !(st == HENGE_E_LIMIT && first.envelope_ok)))
    fail("the outcome does not follow the decoder's status", st, &first);
  const henge_ack *ack;
  if (henge_device_pending(&dev, &ack) == HENGE_OK) {
    uint8_t buf[HENGE_ACK_MAX_BYTES];
    size_t n = 0;
    henge_status as = henge_ack_encode(ack, buf, sizeof buf, &n);
    if (as != HENGE_OK) fail("the pending ack does not encode into HENGE_ACK_MAX_BYTES", as, NULL);
    if (!fz_well_formed(buf, n)) fail("the ack is not one well-formed CBOR item", as, NULL);
  } else if (outcome != HENGE_OUT_UNDECODABLE) {
    fail("a snapshot with an envelope left no ack", st, &first);
  }
  return 0;
}

/* The device's decisions between transport and platform (the Node agent's, agent/agent.ts). */
#include <string.h>

#include "henge.h"
#include "henge_test.h"
#include "testing.h"

typedef struct fake {
  int applied_calls;
  henge_status next_result;
  const char *next_why;
  uint64_t last_version;
  uint32_t random;
  int logs;
} fake;

static henge_status fake_apply(void *ctx, const henge_snapshot *s, const uint8_t *bytes, size_t len, const char **why) {
  fake *f = ctx;
  (void)bytes;
  (void)len;
  f->applied_calls++;
  f->last_version = s->version;
  *why = f->next_why;
  return f->next_result;
}

static henge_status fake_random(void *ctx, uint32_t *r) {
  *r = ((fake *)ctx)->random;
  return HENGE_OK;
}

static void fake_log(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *fields) {
  (void)level;
  (void)msg;
  (void)fields;
  ((fake *)ctx)->logs++;
}

static fake F;
static henge_platform P;
static henge_device dev;
static henge_snapshot work;
static uint8_t bytes[256];
static size_t nbytes;

static void setup(void) {
  memset(&F, 0, sizeof F);
  memset(&P, 0, sizeof P);
  P.ctx = &F;
  P.apply = fake_apply;
  P.random_u32 = fake_random;
  P.log = fake_log;
  HT_EQ_INT(henge_device_init(&dev, &P, 8000), HENGE_OK);
}

/* A snapshot {a: value} of `version`, hash byte `h`, incarnation byte `inc`. */
static void snapshot(uint64_t version, uint8_t h, uint8_t inc) {
  tb b = tb_start(bytes, sizeof bytes);
  tb_hex(&b, "a5 00 01 01");
  tb_byte(&b, 0x1b);
  for (int i = 7; i >= 0; i--) tb_byte(&b, (uint8_t)(version >> (8 * i)));
  tb_hex(&b, "02 48");
  for (int i = 0; i < 8; i++) tb_byte(&b, h);
  tb_hex(&b, "03 a1 61 61 f5 04 48");
  for (int i = 0; i < 8; i++) tb_byte(&b, inc);
  nbytes = b.len;
}

static henge_outcome handle(const uint8_t *etag) {
  henge_outcome o = HENGE_OUT_UNDECODABLE;
  HT_EQ_INT(henge_device_on_snapshot(&dev, bytes, nbytes, etag, etag ? 8 : 0, &work, &o), HENGE_OK);
  return o;
}

static const henge_ack *pending(void) {
  const henge_ack *a = NULL;
  if (henge_device_pending(&dev, &a) != HENGE_OK) return NULL;
  return a;
}

static void confirm(void) {
  const henge_ack *a = pending();
  HT_CHECK(a != NULL);
  if (!a) return;
  henge_ack copy = *a;
  HT_EQ_INT(henge_device_on_ack_response(&dev, &copy, 2, 4), HENGE_OK);
}

static void applies_then_acks_once_confirmed(void) {
  setup();
  snapshot(7, 0xaa, 1);
  uint8_t etag[8];
  memset(etag, 0xaa, 8);
  HT_EQ_INT(handle(etag), HENGE_OUT_APPLIED);
  HT_EQ_INT(F.applied_calls, 1);
  const henge_ack *a = pending();
  HT_CHECK(a && a->version == 7 && a->status == HENGE_ACK_APPLIED && a->has_hash && a->has_incarnation && a->hash[0] == 0xaa && a->incarnation[0] == 1);
  HT_CHECK(a && a->message == NULL);
  confirm();
  HT_CHECK(pending() == NULL);
  HT_CHECK(dev.applied_acked);
  /* The same again (a duplicate, or the registration after a restart): nothing, no ack. */
  HT_EQ_INT(handle(NULL), HENGE_OUT_CURRENT);
  HT_CHECK(pending() == NULL);
  snapshot(6, 0xbb, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_OLDER);
  HT_EQ_INT(F.applied_calls, 1);
  snapshot(8, 0xbb, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  HT_EQ_INT(F.last_version, 8);
}

static void unconfirmed_acks_go_again(void) {
  setup();
  snapshot(7, 0xaa, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  henge_ack sent = *pending();
  /* 5.03: the hub could not record it; it stays pending for the next registration. */
  HT_EQ_INT(henge_device_on_ack_response(&dev, &sent, 5, 3), HENGE_OK);
  HT_CHECK(pending() != NULL);
  /* No answer at all, then a 2.03 on re-registration: still the same pending ack. */
  henge_outcome o;
  HT_EQ_INT(henge_device_on_valid(&dev, &o), HENGE_OK);
  HT_EQ_INT(o, HENGE_OUT_CURRENT);
  HT_CHECK(pending() && pending()->version == 7);
  /* A refusal (4.xx) drops it; the applied one stays unconfirmed, so the next 2.03 acks it again. */
  HT_EQ_INT(henge_device_on_ack_response(&dev, &sent, 4, 0), HENGE_OK);
  HT_CHECK(pending() == NULL);
  HT_EQ_INT(henge_device_on_valid(&dev, &o), HENGE_OK);
  HT_CHECK(pending() && pending()->status == HENGE_ACK_APPLIED);
  confirm();
  HT_EQ_INT(henge_device_on_valid(&dev, &o), HENGE_OK);
  HT_CHECK(pending() == NULL);
  /* A late 2.04 for an older ack does not clear a newer pending one. */
  snapshot(9, 0xcc, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  HT_EQ_INT(henge_device_on_ack_response(&dev, &sent, 2, 4), HENGE_OK);
  HT_CHECK(pending() && pending()->version == 9);
}

static void a_newer_ack_supersedes_the_one_in_flight(void) {
  setup();
  henge_ack in_flight;
  memset(&in_flight, 0, sizeof in_flight);
  bool sup = true;
  /* Nothing pending: nothing supersedes. */
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, &sup), HENGE_OK);
  HT_CHECK(!sup);
  snapshot(7, 0xaa, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  in_flight = *pending();
  /* The very ack on its way (it goes again after each registration): not superseded. */
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, &sup), HENGE_OK);
  HT_CHECK(!sup);
  /* A duplicate of the applied snapshot changes nothing. */
  HT_EQ_INT(handle(NULL), HENGE_OUT_CURRENT);
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, &sup), HENGE_OK);
  HT_CHECK(!sup);
  /* A newer snapshot: its ack supersedes the one in flight. */
  snapshot(8, 0xbb, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, &sup), HENGE_OK);
  HT_CHECK(sup);
  /* Another outcome of the same version (the apply failed after all) supersedes too. */
  henge_ack same = *pending();
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &same, &sup), HENGE_OK);
  HT_CHECK(!sup);
  same.status = HENGE_ACK_FAILED;
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &same, &sup), HENGE_OK);
  HT_CHECK(sup);
  /* Once answered, nothing is pending: nothing supersedes. */
  confirm();
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, &sup), HENGE_OK);
  HT_CHECK(!sup);
  HT_EQ_INT(henge_device_ack_supersedes(NULL, &in_flight, &sup), HENGE_E_ARG);
  HT_EQ_INT(henge_device_ack_supersedes(&dev, NULL, &sup), HENGE_E_ARG);
  HT_EQ_INT(henge_device_ack_supersedes(&dev, &in_flight, NULL), HENGE_E_ARG);
}

static void a_failed_apply_is_not_retried_until_a_newer_one(void) {
  setup();
  snapshot(7, 0xaa, 1);
  F.next_result = HENGE_E_APPLY;
  F.next_why = "disk full";
  HT_EQ_INT(handle(NULL), HENGE_OUT_FAILED);
  const henge_ack *a = pending();
  HT_CHECK(a && a->status == HENGE_ACK_FAILED && a->message_len == 9 && memcmp(a->message, "disk full", 9) == 0);
  HT_CHECK(!dev.has_applied);
  HT_EQ_INT(handle(NULL), HENGE_OUT_FAILED_BEFORE);
  HT_EQ_INT(F.applied_calls, 1);
  F.next_result = HENGE_OK;
  F.next_why = NULL;
  snapshot(8, 0xbb, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  HT_EQ_INT(F.applied_calls, 2);
  /* A platform refusal is "rejected". */
  F.next_result = HENGE_E_REJECT;
  F.next_why = "keys a-b and a_b are both A_B as environment variables";
  snapshot(9, 0xcc, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_REJECTED);
  HT_CHECK(pending() && pending()->status == HENGE_ACK_REJECTED && pending()->version == 9);
  HT_EQ_INT(dev.applied.version, 8);
}

static void integrity_limits_and_garbage(void) {
  setup();
  snapshot(7, 0xaa, 1);
  uint8_t etag[8];
  memset(etag, 0xab, 8);
  HT_EQ_INT(handle(etag), HENGE_OUT_REJECTED);
  HT_EQ_INT(F.applied_calls, 0);
  HT_CHECK(pending() && pending()->status == HENGE_ACK_REJECTED && pending()->version == 7 && pending()->message != NULL);
  /* Garbage: nothing to ack. */
  setup();
  bytes[0] = 0xff;
  nbytes = 1;
  HT_EQ_INT(handle(NULL), HENGE_OUT_UNDECODABLE);
  HT_CHECK(pending() == NULL);
  /* Beyond this build's limits: rejected, with the version from the envelope. */
  /* A text value one byte longer than this build holds (HENGE_MAX_TEXT_LEN), within the protocol's 4,096. */
  char text[HENGE_MAX_TEXT_LEN + 1];
  memset(text, 'x', sizeof text);
  tb b = tb_start(bytes, sizeof bytes);
  tb_hex(&b, "a5 00 01 01 0c 02 48 0000000000000000 03 a1 61 61");
  tb_text_n(&b, text, sizeof text);
  tb_hex(&b, "04 48 0000000000000000");
  nbytes = b.len;
  HT_EQ_INT(handle(NULL), HENGE_OUT_REJECTED);
  HT_CHECK(pending() && pending()->version == 12 && pending()->status == HENGE_ACK_REJECTED);
  HT_CHECK(F.logs > 0);
}

static void another_incarnation_and_restore(void) {
  setup();
  henge_mark m;
  memset(&m, 0, sizeof m);
  m.version = 500;
  memset(m.hash, 0xaa, 8);
  memset(m.incarnation, 1, 8);
  HT_EQ_INT(henge_device_restore(&dev, &m, true), HENGE_OK);
  snapshot(500, 0xaa, 1);
  HT_EQ_INT(handle(NULL), HENGE_OUT_CURRENT);
  HT_CHECK(pending() == NULL);
  snapshot(3, 0xaa, 2);
  HT_EQ_INT(handle(NULL), HENGE_OUT_APPLIED);
  HT_EQ_INT(dev.applied.version, 3);
  /* Restored but never confirmed: a 2.03 makes the applied ack pending. */
  setup();
  HT_EQ_INT(henge_device_restore(&dev, &m, false), HENGE_OK);
  henge_outcome o;
  HT_EQ_INT(henge_device_on_valid(&dev, &o), HENGE_OK);
  HT_CHECK(pending() && pending()->version == 500 && pending()->incarnation[0] == 1);
}

static void timing_and_discovery_through_the_platform(void) {
  setup();
  uint32_t d = 0;
  F.random = UINT32_MAX;
  HT_EQ_INT(henge_device_retry_delay(&dev, &d), HENGE_OK);
  HT_EQ_INT(d, 499);
  HT_EQ_INT(henge_device_retry_delay(&dev, &d), HENGE_OK);
  HT_EQ_INT(d, 999);
  HT_EQ_INT(henge_device_connected(&dev), HENGE_OK);
  HT_EQ_INT(henge_device_retry_delay(&dev, &d), HENGE_OK);
  HT_EQ_INT(d, 499);
  F.random = 0;
  HT_EQ_INT(henge_device_keepalive_delay(&dev, 5, &d), HENGE_OK);
  HT_EQ_INT(d, 3500);
  char host[64];
  uint16_t port;
  HT_EQ_INT(henge_device_discover(&dev, host, sizeof host, &port), HENGE_E_UNSUPPORTED);
}

const ht_case device_cases[] = {
    {"device - applies a newer snapshot, acks it, ignores duplicates and older versions", applies_then_acks_once_confirmed},
    {"device - an unconfirmed ack goes again after a registration; a late answer never clears a newer ack", unconfirmed_acks_go_again},
    {"device - a newer ack supersedes the one in flight; the same ack, or none pending, does not", a_newer_ack_supersedes_the_one_in_flight},
    {"device - a failed apply acks failed and is not retried until a newer snapshot; a refusal acks rejected", a_failed_apply_is_not_retried_until_a_newer_one},
    {"device - a wrong ETag and a snapshot beyond the limits ack rejected; garbage acks nothing", integrity_limits_and_garbage},
    {"device - another incarnation applies; a restored baseline holds across restarts", another_incarnation_and_restore},
    {"device - backoff, keepalive and discovery go through the platform", timing_and_discovery_through_the_platform},
    {NULL, NULL},
};

/*
 * fuzz_device: libFuzzer target for the device state machine (henge_device_*), checked step by step
 * against a model of docs/protocol.md ("Version and incarnation rules", "Ack") written here apart
 * from the core. The input is a program: each op byte picks a step, the bytes after it its arguments:
 *
 *   snapshot   a valid snapshot built from (version, incarnation, values, ETag: none/right/wrong)
 *   raw        up to 255 raw bytes as a snapshot (the decoder's failures through the device)
 *   valid      a 2.03 Valid
 *   ack        the hub's answer (2.04, 4.xx, 5.03) to the pending ack, or to an older one sent before
 *   reboot     a new henge_device restored from what the model says was saved
 *   timing     retry delay, connected, keepalive delay; the telemetry map and the names
 *   platform   what the next apply returns (OK, E_APPLY, E_REJECT) and its reason (any bytes, any length)
 *
 * Oracles: apply is called exactly when the rules say (never twice for a snapshot that failed, never
 * on a wrong ETag); outcome and pending ack (version, status, hash, incarnation) are the model's; the
 * applied mark never goes back within an incarnation; applied_acked only after a 2.xx to the ack of
 * the applied snapshot; a late answer never clears a newer pending ack; every ack encodes as one
 * well-formed CBOR item, its message the platform's reason or a prefix of it cut on a character
 * boundary and ended with "..."; delays stay within their documented ranges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cbor.h"
#include "henge.h"

#define CHECK(cond, what)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "fuzz_device: %s (%s, line %d)\n", what, #cond, __LINE__); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

typedef struct reader {
  const uint8_t *p, *end;
} reader;

static uint8_t next(reader *r) { return r->p < r->end ? *r->p++ : 0; }

/* ---------------------------------------------------------------------------------------------- */
/* the platform                                                                                    */

static henge_status next_apply;
static char next_why[700]; /* what a refusing apply says ("" for none): up to 699 bytes, cut on the ack */
static int apply_calls;
static uint32_t next_random;

static henge_status p_apply(void *ctx, const henge_snapshot *s, const uint8_t *b, size_t n, const char **why) {
  (void)ctx;
  (void)s;
  (void)b;
  (void)n;
  apply_calls++;
  if (next_apply != HENGE_OK) *why = next_why[0] != 0 ? next_why : NULL;
  return next_apply;
}

static int log_calls;
static void p_log(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *f) {
  (void)ctx;
  log_calls++;
  CHECK(level >= HENGE_LOG_DEBUG && level <= HENGE_LOG_ERROR, "a log level out of range");
  CHECK(msg != NULL && f != NULL, "a log line without a message or fields");
  CHECK(f->reason == NULL || strlen(f->reason) < 4096, "a log reason that does not end");
}

static henge_status p_random(void *ctx, uint32_t *r) {
  (void)ctx;
  *r = next_random;
  return HENGE_OK;
}

static const henge_platform platform = {NULL, p_apply, NULL, p_random, p_log, NULL};

/* ---------------------------------------------------------------------------------------------- */
/* the model                                                                                       */

typedef struct model {
  bool has_applied, acked;
  henge_mark applied;
  bool has_failed;
  henge_mark failed;
  bool has_pending;
  henge_ack pending; /* message: NULL when the core writes its own, else `why` */
  char why[700];      /* the platform's reason, as it was when the apply refused */
} model;

static bool same_mark(const henge_mark *a, const henge_mark *b) {
  return a->version == b->version && memcmp(a->hash, b->hash, 8) == 0 && memcmp(a->incarnation, b->incarnation, 8) == 0;
}

static void model_pending(model *m, const henge_mark *mark, henge_ack_status status) {
  memset(&m->pending, 0, sizeof m->pending);
  m->has_pending = true;
  m->pending.version = mark->version;
  m->pending.status = (uint8_t)status;
  m->pending.has_hash = m->pending.has_incarnation = true;
  memcpy(m->pending.hash, mark->hash, 8);
  memcpy(m->pending.incarnation, mark->incarnation, 8);
}

static void check_pending(const model *m, const henge_device *dev) {
  const henge_ack *a = NULL;
  henge_status st = henge_device_pending(dev, &a);
  CHECK((st == HENGE_OK) == m->has_pending, "a pending ack where the model has none, or none where it has one");
  if (!m->has_pending) return;
  CHECK(a->version == m->pending.version && a->status == m->pending.status, "the pending ack is not the model's");
  CHECK(a->has_hash && memcmp(a->hash, m->pending.hash, 8) == 0, "the pending ack's hash is not the snapshot's");
  CHECK(a->has_incarnation && memcmp(a->incarnation, m->pending.incarnation, 8) == 0, "the pending ack's incarnation is not the snapshot's");
  CHECK(a->message == NULL || a->message_len <= HENGE_ACK_MESSAGE_MAX, "an ack message beyond HENGE_ACK_MESSAGE_MAX");
  if (a->message != NULL && a->status == m->pending.status && m->pending.message != NULL) {
    /* The platform's reason, whole, or cut on a character boundary and ended with "...". */
    const char *want = m->pending.message;
    size_t wlen = strlen(want);
    if (wlen <= HENGE_ACK_MESSAGE_MAX) {
      CHECK(a->message_len == wlen && memcmp(a->message, want, wlen) == 0, "the ack message is not the platform's reason");
    } else {
      CHECK(a->message_len >= 3 && memcmp(a->message + a->message_len - 3, "...", 3) == 0, "a cut ack message does not end with ...");
      CHECK(memcmp(a->message, want, a->message_len - 3) == 0, "a cut ack message is not a prefix of the reason");
      CHECK(a->message_len - 3 + 4 > HENGE_ACK_MESSAGE_MAX - 3, "a reason cut shorter than it needs to be");
      if (fz_utf8((const uint8_t *)want, wlen)) CHECK(fz_utf8((const uint8_t *)a->message, a->message_len), "a UTF-8 reason cut inside a character");
    }
  }
  uint8_t buf[HENGE_ACK_MAX_BYTES];
  size_t n = 0;
  CHECK(henge_ack_encode(a, buf, sizeof buf, &n) == HENGE_OK, "the pending ack does not encode");
  CHECK(fz_well_formed(buf, n), "the ack is not well-formed CBOR");
}

static void check_state(const model *m, const henge_device *dev) {
  CHECK(dev->has_applied == m->has_applied, "has_applied differs from the model");
  if (m->has_applied) {
    CHECK(same_mark(&dev->applied, &m->applied), "the applied mark differs from the model");
    CHECK(dev->applied_acked == m->acked, "applied_acked differs from the model");
  }
  check_pending(m, dev);
}

/* ---------------------------------------------------------------------------------------------- */
/* snapshots                                                                                       */

static const uint8_t incarnations[3][8] = {{1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 2, 2}, {0xfe, 0, 0, 0, 0, 0, 0, 0xef}};
static uint8_t bytes[HENGE_MAX_SNAPSHOT_BYTES];
static henge_snapshot work;

/* A valid snapshot from a few argument bytes; its mark in `mark`. */
static size_t build(reader *r, henge_mark *mark) {
  uint8_t v = next(r), inc = next(r), h = next(r), nf = next(r);
  /* Small versions mostly, and now and then a large one up to the protocol's 2^53 - 1. */
  uint64_t version = v < 240 ? v % 16 : ((uint64_t)1 << (v % 53)) + (v % 2 ? 0 : ((uint64_t)1 << (v % 53)) - 1);
  fz_w w = {bytes, sizeof bytes, 0, false};
  fz_byte(&w, 0xa5);
  fz_byte(&w, 0x00);
  fz_byte(&w, 0x01);
  fz_byte(&w, 0x01);
  fz_head(&w, 0, version);
  fz_byte(&w, 0x02);
  fz_byte(&w, 0x48);
  uint8_t hash[8] = {h, (uint8_t)(h * 7), 3, 4, 5, 6, 7, (uint8_t)(h ^ 0x5a)};
  fz_put(&w, hash, 8);
  fz_byte(&w, 0x03);
  unsigned fields = nf % 4;
  fz_head(&w, 5, fields);
  for (unsigned i = 0; i < fields; i++) {
    char key[2] = {(char)('a' + i), 0};
    fz_head(&w, 3, 1);
    fz_put(&w, key, 1);
    uint8_t kind = next(r);
    if (kind % 3 == 0) fz_int(&w, (int8_t)next(r));
    else if (kind % 3 == 1) fz_byte(&w, next(r) & 1 ? 0xf5 : 0xf4);
    else {
      fz_head(&w, 3, 1);
      fz_byte(&w, (uint8_t)('A' + next(r) % 26));
    }
  }
  fz_byte(&w, 0x04);
  fz_byte(&w, 0x48);
  fz_put(&w, incarnations[inc % 3], 8);
  CHECK(!w.bad, "the target's own snapshot does not fit");
  mark->version = version;
  memcpy(mark->hash, hash, 8);
  memcpy(mark->incarnation, incarnations[inc % 3], 8);
  return w.len;
}

/* The rules of docs/protocol.md, as the model applies them. */
static bool rules_apply(const model *m, const henge_mark *in, bool *same) {
  *same = false;
  if (!m->has_applied) return true;
  if (memcmp(m->applied.incarnation, in->incarnation, 8) != 0) return true;
  if (in->version > m->applied.version) return true;
  *same = in->version == m->applied.version;
  return false;
}

static void step_snapshot(reader *r, model *m, henge_device *dev) {
  henge_mark mark;
  size_t n = build(r, &mark);
  uint8_t etag_mode = next(r) % 4;
  uint8_t etag[9];
  memcpy(etag, mark.hash, 8);
  etag[8] = 0;
  const uint8_t *e = NULL;
  size_t elen = 0;
  if (etag_mode == 1) {
    e = etag;
    elen = 8;
  } else if (etag_mode == 2) {
    e = etag;
    elen = 9; /* wrong length */
  } else if (etag_mode == 3) {
    etag[0] ^= 0x80; /* wrong bytes */
    e = etag;
    elen = 8;
  }
  henge_mark before = dev->applied;
  bool had = dev->has_applied;
  apply_calls = 0;
  henge_outcome o;
  CHECK(henge_device_on_snapshot(dev, bytes, n, e, elen, &work, &o) == HENGE_OK, "on_snapshot failed on a valid snapshot");
  if (etag_mode >= 2) {
    CHECK(apply_calls == 0 && o == HENGE_OUT_REJECTED, "a wrong ETag was not rejected without applying");
    model_pending(m, &mark, HENGE_ACK_REJECTED);
    check_state(m, dev);
    return;
  }
  bool same;
  bool applies = rules_apply(m, &mark, &same);
  if (!applies) {
    CHECK(apply_calls == 0, "applied a snapshot the rules ignore");
    CHECK(o == (same ? HENGE_OUT_CURRENT : HENGE_OUT_OLDER), "the outcome of an ignored snapshot");
    if (same && !m->has_pending && !m->acked) model_pending(m, &m->applied, HENGE_ACK_APPLIED);
  } else if (m->has_failed && same_mark(&m->failed, &mark)) {
    CHECK(apply_calls == 0 && o == HENGE_OUT_FAILED_BEFORE, "retried a snapshot that failed already");
  } else {
    CHECK(apply_calls == 1, "did not apply a snapshot the rules apply");
    if (next_apply == HENGE_OK) {
      CHECK(o == HENGE_OUT_APPLIED, "the outcome of an applied snapshot");
      m->has_applied = true;
      m->applied = mark;
      m->acked = false;
      m->has_failed = false;
      model_pending(m, &mark, HENGE_ACK_APPLIED);
    } else {
      CHECK(o == (next_apply == HENGE_E_REJECT ? HENGE_OUT_REJECTED : HENGE_OUT_FAILED), "the outcome of a refused apply");
      m->has_failed = true;
      m->failed = mark;
      model_pending(m, &mark, next_apply == HENGE_E_REJECT ? HENGE_ACK_REJECTED : HENGE_ACK_FAILED);
      memcpy(m->why, next_why, sizeof m->why);
      m->pending.message = next_why[0] != 0 ? m->why : NULL;
    }
  }
  if (had && dev->has_applied && memcmp(before.incarnation, dev->applied.incarnation, 8) == 0)
    CHECK(dev->applied.version >= before.version, "the applied version went back within an incarnation");
  check_state(m, dev);
}

static void step_raw(reader *r, model *m, henge_device *dev) {
  size_t n = next(r);
  if ((size_t)(r->end - r->p) < n) n = (size_t)(r->end - r->p);
  uint8_t raw[255];
  memcpy(raw, r->p, n);
  r->p += n;
  henge_status st = henge_snapshot_decode(raw, n, &work);
  henge_mark mark;
  henge_mark_of(&work, &mark);
  bool limited = st == HENGE_E_LIMIT && work.envelope_ok;
  henge_device before = *dev;
  apply_calls = 0;
  henge_outcome o;
  CHECK(henge_device_on_snapshot(dev, raw, n, NULL, 0, &work, &o) == HENGE_OK, "on_snapshot failed");
  if (st != HENGE_OK && !limited) {
    CHECK(o == HENGE_OUT_UNDECODABLE && apply_calls == 0, "an undecodable input was handled");
    CHECK(memcmp(&before, dev, sizeof before) == 0, "an undecodable input changed the device");
    return;
  }
  if (limited) {
    CHECK(o == HENGE_OUT_REJECTED && apply_calls == 0, "a snapshot beyond the limits was not rejected");
    m->has_failed = true;
    m->failed = mark;
    model_pending(m, &mark, HENGE_ACK_REJECTED);
    check_state(m, dev);
    return;
  }
  /* A valid raw snapshot: the same rules as above. */
  bool same;
  bool applies = rules_apply(m, &mark, &same);
  if (!applies) {
    CHECK(apply_calls == 0, "applied a raw snapshot the rules ignore");
    if (same && !m->has_pending && !m->acked) model_pending(m, &m->applied, HENGE_ACK_APPLIED);
  } else if (m->has_failed && same_mark(&m->failed, &mark)) {
    CHECK(apply_calls == 0, "retried a raw snapshot that failed already");
  } else if (next_apply == HENGE_OK) {
    CHECK(apply_calls == 1 && o == HENGE_OUT_APPLIED, "did not apply a raw snapshot");
    m->has_applied = true;
    m->applied = mark;
    m->acked = false;
    m->has_failed = false;
    model_pending(m, &mark, HENGE_ACK_APPLIED);
  } else {
    CHECK(apply_calls == 1, "did not try a raw snapshot");
    m->has_failed = true;
    m->failed = mark;
    model_pending(m, &mark, next_apply == HENGE_E_REJECT ? HENGE_ACK_REJECTED : HENGE_ACK_FAILED);
    memcpy(m->why, next_why, sizeof m->why);
    m->pending.message = next_why[0] != 0 ? m->why : NULL;
  }
  check_state(m, dev);
}

/* The last few acks as they were sent: the hub may answer an older one late. */
static henge_ack sent_log[4];
static int sent_count;

static void step_ack(reader *r, model *m, henge_device *dev) {
  uint8_t which = next(r), code = next(r);
  uint8_t cls = code % 3 == 0 ? 2 : code % 3 == 1 ? 4 : 5;
  const henge_ack *a;
  henge_ack sent;
  if (which % 2 == 0 && henge_device_pending(dev, &a) == HENGE_OK) {
    sent = *a;
    sent_log[sent_count % 4] = sent;
    sent_count++;
  } else if (sent_count > 0) {
    sent = sent_log[which % (sent_count < 4 ? sent_count : 4)];
  } else {
    return;
  }
  /* Newest ack first: the pending ack supersedes `sent` exactly when it is another ack. (Every ack the
     core makes pending here carries hash and incarnation, so comparing them below is comparing the acks.) */
  CHECK(sent.has_hash && sent.has_incarnation, "a pending ack without its hash or incarnation");
  bool supersedes = false;
  CHECK(henge_device_ack_supersedes(dev, &sent, &supersedes) == HENGE_OK, "ack_supersedes failed");
  bool other = m->has_pending && (m->pending.version != sent.version || m->pending.status != sent.status ||
                                  memcmp(m->pending.hash, sent.hash, 8) != 0 || memcmp(m->pending.incarnation, sent.incarnation, 8) != 0);
  CHECK(supersedes == other, "ack_supersedes disagrees with the model");
  CHECK(henge_device_on_ack_response(dev, &sent, cls, 4) == HENGE_OK, "on_ack_response failed");
  if (cls != 5) {
    bool is_pending = m->has_pending && m->pending.version == sent.version && m->pending.status == sent.status &&
                      memcmp(m->pending.hash, sent.hash, 8) == 0;
    if (is_pending) m->has_pending = false;
    if (cls == 2 && sent.status == HENGE_ACK_APPLIED && m->has_applied && m->applied.version == sent.version &&
        memcmp(m->applied.hash, sent.hash, 8) == 0)
      m->acked = true;
  }
  check_state(m, dev);
}

static void step_valid(model *m, henge_device *dev) {
  henge_outcome o;
  CHECK(henge_device_on_valid(dev, &o) == HENGE_OK && o == HENGE_OUT_CURRENT, "on_valid");
  if (!m->has_pending && m->has_applied && !m->acked) model_pending(m, &m->applied, HENGE_ACK_APPLIED);
  check_state(m, dev);
}

static void step_reboot(model *m, henge_device *dev) {
  /* What a port saves: the applied mark and whether the hub confirmed it. Nothing else survives. */
  CHECK(henge_device_init(dev, &platform, 60000) == HENGE_OK, "device init");
  if (m->has_applied) CHECK(henge_device_restore(dev, &m->applied, m->acked) == HENGE_OK, "restore");
  m->has_failed = false;
  m->has_pending = false;
  check_state(m, dev);
}

static void step_timing(reader *r, henge_device *dev) {
  uint8_t what = next(r);
  next_random = (uint32_t)next(r) << 24 | (uint32_t)next(r) << 16 | (uint32_t)next(r) << 8 | next(r);
  uint32_t d = 0;
  if (what % 3 == 0) {
    uint64_t ceiling = (uint64_t)dev->backoff.base_ms;
    for (uint32_t i = 0; i < dev->backoff.attempts && ceiling < dev->backoff.cap_ms; i++) ceiling *= 2;
    if (ceiling > dev->backoff.cap_ms) ceiling = dev->backoff.cap_ms;
    CHECK(henge_device_retry_delay(dev, &d) == HENGE_OK, "retry delay");
    CHECK(d < ceiling || (ceiling == 0 && d == 0), "a retry delay beyond min(cap, base * 2^attempts)");
  } else if (what % 3 == 1) {
    CHECK(henge_device_connected(dev) == HENGE_OK && dev->backoff.attempts == 0, "connected resets the backoff");
    /* The telemetry map ({"_agent": name}, name of any bytes up to 255) and every name a port logs. */
    size_t n = (size_t)(r->end - r->p) < (size_t)(what >> 2) ? (size_t)(r->end - r->p) : (size_t)(what >> 2);
    uint8_t buf[300];
    size_t len = 0;
    CHECK(henge_telemetry_encode_agent((const char *)r->p, n, buf, sizeof buf, &len) == HENGE_OK, "telemetry encode");
    CHECK(fz_well_formed(buf, len), "the telemetry map is not well-formed CBOR");
    CHECK(henge_telemetry_encode_agent((const char *)r->p, n, buf, n + 8, &len) == HENGE_E_SPACE, "telemetry into a buffer too small");
    r->p += n;
    for (int s = 0; s <= HENGE_E_UNSUPPORTED + 1; s++) CHECK(henge_status_name((henge_status)s) != NULL, "a status without a name");
    for (int k = 0; k <= HENGE_IGNORE_OLDER + 1; k++) CHECK(henge_decision_name((henge_decision)k) != NULL, "a decision without a name");
    for (int a = 0; a <= HENGE_ACK_REVERTED + 1; a++) CHECK(henge_ack_status_name((henge_ack_status)a) != NULL, "an ack status without a name");
  } else {
    uint32_t max_age = (uint32_t)next(r) << 8 | next(r);
    CHECK(henge_device_keepalive_delay(dev, max_age, &d) == HENGE_OK, "keepalive delay");
    uint64_t lo = (uint64_t)max_age * 700, hi = (uint64_t)max_age * 850;
    if (lo < 1000) lo = 1000;
    if (hi < 1000) hi = 1000;
    CHECK(d >= lo && d <= hi, "a keepalive delay outside 70-85 % of Max-Age (at least 1 s)");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static henge_device dev;
  model m;
  memset(&m, 0, sizeof m);
  sent_count = 0;
  next_apply = HENGE_OK;
  next_why[0] = 0;
  next_random = 0;
  CHECK(henge_device_init(&dev, &platform, 60000) == HENGE_OK, "device init");
  reader r = {data, data + size};
  while (r.p < r.end) {
    switch (next(&r) % 8) {
      case 0:
      case 1: step_snapshot(&r, &m, &dev); break;
      case 2: step_raw(&r, &m, &dev); break;
      case 3: step_valid(&m, &dev); break;
      case 4: step_ack(&r, &m, &dev); break;
      case 5: step_reboot(&m, &dev); break;
      case 6: step_timing(&r, &dev); break;
      default: {
        /* What the next apply returns, and the reason it gives: `len` bytes of the input, repeated to
           `len * rep` (past HENGE_ACK_MESSAGE_MAX, to be cut), no NUL inside. */
        uint8_t a = next(&r);
        next_apply = a % 3 == 0 ? HENGE_OK : a % 3 == 1 ? HENGE_E_APPLY : HENGE_E_REJECT;
        size_t len = next(&r) % 16, rep = 1 + next(&r) % 64, w = 0;
        uint8_t piece[16];
        for (size_t i = 0; i < len; i++) piece[i] = next(&r);
        for (size_t k = 0; k < rep && len > 0; k++)
          for (size_t i = 0; i < len && w < sizeof next_why - 1; i++)
            if (piece[i] != 0) next_why[w++] = (char)piece[i];
        next_why[w] = 0;
      }
    }
  }
  return 0;
}

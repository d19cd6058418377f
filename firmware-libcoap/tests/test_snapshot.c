/* The snapshot decoder: the hub's bytes, other valid encodings, and everything the spec rejects. */
#include <string.h>

#include "henge.h"
#include "henge_test.h"
#include "testing.h"

/* protocol/snapshot.ts buildSnapshot(7, {mode: 'heat', setpoint: 21.5}, 0102030405060708): the spec's example. */
const char *const FIXTURE_EXAMPLE =
    "a5000101070248b20cf0ed67fec9bb03a2646d6f6465646865617468736574706f696e74f94d6004480102030405060708";
/* buildSnapshot(7, {}, 0102030405060708) */
const char *const FIXTURE_EMPTY = "a5000101070248c19a797fa1fd590c03a004480102030405060708";
/* buildSnapshot(7, {a:'x', b:-1, c:1e300, d:true, e:false, f:0.1, g:100000, h:'héllo', long_key:3.25}, ...) */
const char *const FIXTURE_TYPES =
    "a5000101070248276dff13cc448a7303a9616161786162206163fb7e37e43c8800759c6164f56165f46166fb3fb999999999999a61671a000186a0"
    "61686668c3a96c6c6f686c6f6e675f6b6579f9428004480102030405060708";

static henge_snapshot snap;
static uint8_t buf[16384];

static henge_status decode_hex(const char *hex) {
  size_t n = ht_hex(hex, buf, sizeof buf);
  return henge_snapshot_decode(buf, n, &snap);
}

static const henge_field *field(const char *key) {
  const henge_field *f = NULL;
  if (henge_snapshot_find(&snap, key, strlen(key), &f) != HENGE_OK) return NULL;
  return f;
}

static int text_is(const henge_field *f, const char *want) {
  return f != NULL && f->type == HENGE_TEXT && f->text_len == strlen(want) && memcmp(f->v.text, want, f->text_len) == 0;
}

static void decodes_the_hubs_example(void) {
  HT_EQ_INT(decode_hex(FIXTURE_EXAMPLE), HENGE_OK);
  HT_EQ_INT(snap.version, 7);
  HT_EQ_INT(snap.count, 2);
  HT_CHECK(snap.envelope_ok);
  static const uint8_t hash[8] = {0xb2, 0x0c, 0xf0, 0xed, 0x67, 0xfe, 0xc9, 0xbb};
  static const uint8_t inc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  HT_CHECK(memcmp(snap.hash, hash, 8) == 0);
  HT_CHECK(memcmp(snap.incarnation, inc, 8) == 0);
  HT_CHECK(text_is(field("mode"), "heat"));
  const henge_field *sp = field("setpoint");
  HT_CHECK(sp != NULL && sp->type == HENGE_FLOAT && sp->v.f == 21.5);
  HT_CHECK(field("missing") == NULL);
}

static void decodes_empty_values(void) {
  HT_EQ_INT(decode_hex(FIXTURE_EMPTY), HENGE_OK);
  HT_EQ_INT(snap.count, 0);
}

static void decodes_every_scalar_type(void) {
  HT_EQ_INT(decode_hex(FIXTURE_TYPES), HENGE_OK);
  HT_EQ_INT(snap.count, 9);
  HT_CHECK(text_is(field("a"), "x"));
  HT_CHECK(field("b") && field("b")->type == HENGE_INT && field("b")->v.i == -1);
  HT_CHECK(field("c") && field("c")->type == HENGE_FLOAT && field("c")->v.f == 1e300);
  HT_CHECK(field("d") && field("d")->type == HENGE_BOOL && field("d")->v.b == 1);
  HT_CHECK(field("e") && field("e")->type == HENGE_BOOL && field("e")->v.b == 0);
  HT_CHECK(field("f") && field("f")->type == HENGE_FLOAT && field("f")->v.f == 0.1);
  HT_CHECK(field("g") && field("g")->type == HENGE_INT && field("g")->v.i == 100000);
  HT_CHECK(text_is(field("h"), "h\xc3\xa9llo"));
  HT_CHECK(field("long_key") && field("long_key")->type == HENGE_FLOAT && field("long_key")->v.f == 3.25);
}

static void accepts_other_valid_encodings(void) {
  /* Non-preferred heads (map(5) as b9 0005, version in 8 bytes), keys out of order. */
  HT_EQ_INT(decode_hex("b9 0005 04 48 0102030405060708 03 b8 01 64 6d6f6465 7a 00000004 68656174"
                       " 02 48 b20cf0ed67fec9bb 01 1b 0000000000000007 00 18 01"),
            HENGE_OK);
  HT_EQ_INT(snap.version, 7);
  HT_CHECK(text_is(field("mode"), "heat"));
  /* Indefinite maps, a chunked key and a chunked text value, a chunked hash. */
  HT_EQ_INT(decode_hex("bf 00 01 01 07 02 5f 44 b20cf0ed 44 67fec9bb ff"
                       " 03 bf 7f 62 6d6f 62 6465 ff 7f 62 6865 60 62 6174 ff 61 78 fb 3ff8000000000000 ff"
                       " 04 48 0102030405060708 ff"),
            HENGE_OK);
  HT_EQ_INT(snap.count, 2);
  HT_CHECK(text_is(field("mode"), "heat"));
  HT_CHECK(field("x") && field("x")->v.f == 1.5);
  /* Floats: half subnormal, half negative, single. */
  HT_EQ_INT(decode_hex("a5 00 01 01 00 02 48 0000000000000000 03 a3 61 61 f9 0001 61 62 f9 c400 61 63 fa 47c35000"
                       " 04 48 0000000000000000"),
            HENGE_OK);
  HT_CHECK(field("a") && field("a")->v.f == 5.960464477539063e-8);
  HT_CHECK(field("b") && field("b")->v.f == -4.0);
  HT_CHECK(field("c") && field("c")->v.f == 100000.0);
  /* Integers at the protocol's edges, ±(2^53 - 1). */
  HT_EQ_INT(decode_hex("a5 00 01 01 00 02 48 0000000000000000 03 a2 61 61 1b 001fffffffffffff 61 62 3b 001ffffffffffffe"
                       " 04 48 0000000000000000"),
            HENGE_OK);
  HT_CHECK(field("a") && field("a")->v.i == 9007199254740991LL);
  HT_CHECK(field("b") && field("b")->v.i == -9007199254740991LL);
}

static void ignores_unknown_envelope_keys(void) {
  /* Key 9: [ {1: [1, 2]}, "x" ]; a tagged item under key 10. (A negative key is invalid: see the limits test.) */
  HT_EQ_INT(decode_hex("a7 00 01 01 07 09 82 a1 01 82 01 02 61 78 0a c1 1a 00000001 02 48 b20cf0ed67fec9bb"
                       " 03 a1 61 6b f5 04 48 0102030405060708"),
            HENGE_OK);
  HT_CHECK(field("k") && field("k")->v.b == 1);
  /* Nested 8 deep is fine, 9 deep is beyond this build's skip depth. */
  HT_EQ_INT(decode_hex("a6 00 01 01 07 09 81818181 81818181 00 02 48 0000000000000000 03 a0 04 48 0000000000000000"), HENGE_OK);
  HT_EQ_INT(decode_hex("a6 00 01 01 07 09 81818181 81818181 81 00 02 48 0000000000000000 03 a0 04 48 0000000000000000"),
            HENGE_E_LIMIT);
}

#define ENV_HEAD "a5 00 01 01 07 02 48 0000000000000000 "
#define ENV_TAIL " 04 48 0000000000000000"

static void rejects_what_the_spec_rejects(void) {
  struct {
    const char *hex;
    henge_status want;
  } cases[] = {
      {"80", HENGE_E_SNAPSHOT},                                                       /* an array */
      {"", HENGE_E_CBOR},                                                             /* nothing */
      {ENV_HEAD "03 a0" ENV_TAIL " 00", HENGE_E_CBOR},                                /* a byte after the item */
      {"a5 00 02 01 07 02 48 0000000000000000 03 a0" ENV_TAIL, HENGE_E_PROTOCOL},    /* protocol 2 */
      {"a4 00 01 01 07 02 48 0000000000000000 03 a0", HENGE_E_SNAPSHOT},             /* no incarnation */
      {"a4 00 01 02 48 0000000000000000 03 a0" ENV_TAIL, HENGE_E_SNAPSHOT},          /* no version */
      {"a5 00 01 01 07 01 07 03 a0" ENV_TAIL, HENGE_E_SNAPSHOT},                     /* version twice (and no hash) */
      {"a5 00 01 01 07 02 47 00000000000000 03 a0" ENV_TAIL, HENGE_E_SNAPSHOT},      /* a 7-byte hash */
      {"a5 00 01 01 27 02 48 0000000000000000 03 a0" ENV_TAIL, HENGE_E_SNAPSHOT},    /* version -8 */
      {"a5 00 01 01 07 02 48 0000000000000000 03 80" ENV_TAIL, HENGE_E_SNAPSHOT},    /* values an array */
      {"a5 61 30 01 01 07 02 48 0000000000000000 03 a0" ENV_TAIL, HENGE_E_SNAPSHOT}, /* a text envelope key */
      {ENV_HEAD "03 a1 01 01" ENV_TAIL, HENGE_E_SNAPSHOT},                            /* an integer value key */
      {ENV_HEAD "03 a2 61 61 01 61 61 02" ENV_TAIL, HENGE_E_SNAPSHOT},                /* a key twice */
      {ENV_HEAD "03 a1 64 31616263 01" ENV_TAIL, HENGE_E_SNAPSHOT},                   /* key "1abc" */
      {ENV_HEAD "03 a1 63 612062 01" ENV_TAIL, HENGE_E_SNAPSHOT},                     /* key "a b" */
      {ENV_HEAD "03 a1 60 01" ENV_TAIL, HENGE_E_SNAPSHOT},                            /* key "" */
      {ENV_HEAD "03 a1 61 61 f6" ENV_TAIL, HENGE_E_SNAPSHOT},                         /* null */
      {ENV_HEAD "03 a1 61 61 f7" ENV_TAIL, HENGE_E_SNAPSHOT},                         /* undefined */
      {ENV_HEAD "03 a1 61 61 80" ENV_TAIL, HENGE_E_SNAPSHOT},                         /* an array */
      {ENV_HEAD "03 a1 61 61 a0" ENV_TAIL, HENGE_E_SNAPSHOT},                         /* a map */
      {ENV_HEAD "03 a1 61 61 41 00" ENV_TAIL, HENGE_E_SNAPSHOT},                      /* bytes */
      {ENV_HEAD "03 a1 61 61 c1 00" ENV_TAIL, HENGE_E_SNAPSHOT},                      /* a tag */
      {ENV_HEAD "03 a1 61 61 f9 7e00" ENV_TAIL, HENGE_E_SNAPSHOT},                    /* NaN */
      {ENV_HEAD "03 a1 61 61 fa 7f800000" ENV_TAIL, HENGE_E_SNAPSHOT},                /* Infinity */
      {ENV_HEAD "03 a1 61 61 fb fff0000000000000" ENV_TAIL, HENGE_E_SNAPSHOT},        /* -Infinity */
      {ENV_HEAD "03 a1 61 61 62 c328" ENV_TAIL, HENGE_E_SNAPSHOT},                    /* bad UTF-8 */
      {ENV_HEAD "03 a1 61 61 62 c080" ENV_TAIL, HENGE_E_SNAPSHOT},                    /* overlong NUL */
      {ENV_HEAD "03 a1 61 61 63 eda080" ENV_TAIL, HENGE_E_SNAPSHOT},                  /* a surrogate */
      {ENV_HEAD "03 a1 61 61 64 f4908080" ENV_TAIL, HENGE_E_SNAPSHOT},                /* above U+10FFFF */
      {ENV_HEAD "03 a1 61 61 1c" ENV_TAIL, HENGE_E_CBOR},                             /* reserved ai 28 */
      {ENV_HEAD "03 a1 61 61 f8 10" ENV_TAIL, HENGE_E_CBOR},                          /* two-byte simple < 32 */
      {ENV_HEAD "03 a1 61 61 ff" ENV_TAIL, HENGE_E_CBOR},                             /* a break as a value */
      {ENV_HEAD "03 a1 61 61 7f 41 00 ff" ENV_TAIL, HENGE_E_CBOR},                    /* a bytes chunk in text */
      {ENV_HEAD "03 a1 61 61 7f 7f ff ff" ENV_TAIL, HENGE_E_CBOR},                    /* a chunk that is chunked */
      {ENV_HEAD "03 bb 00000001 00000000" ENV_TAIL, HENGE_E_CBOR},                    /* 2^32 entries claimed */
      {"bb ffffffffffffffff", HENGE_E_CBOR},                                           /* 2^64-1 entries claimed */
      {ENV_HEAD "03 a1 61 61 7b ffffffffffffffff" ENV_TAIL, HENGE_E_CBOR},            /* a 2^64-1 byte text */
      {ENV_HEAD "03 a1 61 61 1f" ENV_TAIL, HENGE_E_CBOR},                             /* an indefinite integer */
      {ENV_HEAD "03 bf 61 61 01" ENV_TAIL, HENGE_E_SNAPSHOT},                         /* an unended map */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    henge_status st = decode_hex(cases[i].hex);
    if (st != cases[i].want) {
      fprintf(stderr, "    case %zu (%s): got %s, want %s (%s)\n", i, cases[i].hex, henge_status_name(st), henge_status_name(cases[i].want),
              snap.error ? snap.error : "no message");
      ht_failures_in_test++;
    }
    HT_CHECK(snap.error != NULL);
  }
}

static void rejects_every_truncation(void) {
  size_t n = ht_hex(FIXTURE_TYPES, buf, sizeof buf);
  for (size_t cut = 0; cut < n; cut++) {
    henge_status st = henge_snapshot_decode(buf, cut, &snap);
    if (st == HENGE_OK) {
      fprintf(stderr, "    a snapshot cut to %zu of %zu bytes decoded\n", cut, n);
      ht_failures_in_test++;
    }
  }
}

/* A snapshot with `n` boolean fields k000..; returns its length. */
static size_t many_fields(unsigned n) {
  tb b = tb_start(buf, sizeof buf);
  tb_hex(&b, "a5 00 01 01 19 0102 02 48 0000000000000000 03");
  tb_head(&b, 5, n);
  for (unsigned i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03u", i);
    tb_text(&b, key);
    tb_hex(&b, "f5");
  }
  tb_hex(&b, ENV_TAIL);
  return b.len;
}

static void limits_of_this_build_keep_the_envelope(void) {
  /* This test build: HENGE_MAX_FIELDS 9, HENGE_MAX_TEXT_LEN 32, HENGE_TEXT_ARENA_BYTES 64. */
  size_t n = many_fields(HENGE_MAX_FIELDS);
  HT_EQ_INT(henge_snapshot_decode(buf, n, &snap), HENGE_OK);
  n = many_fields(HENGE_MAX_FIELDS + 1);
  HT_EQ_INT(henge_snapshot_decode(buf, n, &snap), HENGE_E_LIMIT);
  HT_CHECK(snap.envelope_ok);
  HT_EQ_INT(snap.version, 0x0102);
  HT_CHECK(snap.error != NULL);
  /* The protocol's own limit: 257 fields is invalid, not just too many for this device. */
  n = many_fields(257);
  HT_EQ_INT(henge_snapshot_decode(buf, n, &snap), HENGE_E_SNAPSHOT);
  HT_CHECK(!snap.envelope_ok);

  char text[4200];
  memset(text, 'x', sizeof text);
  tb b = tb_start(buf, sizeof buf);
  tb_hex(&b, ENV_HEAD "03 a1 61 74");
  tb_text_n(&b, text, HENGE_MAX_TEXT_LEN);
  tb_hex(&b, ENV_TAIL);
  HT_EQ_INT(henge_snapshot_decode(buf, b.len, &snap), HENGE_OK);
  b = tb_start(buf, sizeof buf);
  tb_hex(&b, ENV_HEAD "03 a1 61 74");
  tb_text_n(&b, text, HENGE_MAX_TEXT_LEN + 1);
  tb_hex(&b, ENV_TAIL);
  HT_EQ_INT(henge_snapshot_decode(buf, b.len, &snap), HENGE_E_LIMIT);
  HT_CHECK(snap.envelope_ok);
  b = tb_start(buf, sizeof buf);
  tb_hex(&b, ENV_HEAD "03 a1 61 74");
  tb_text_n(&b, text, 4097);
  tb_hex(&b, ENV_TAIL);
  HT_EQ_INT(henge_snapshot_decode(buf, b.len, &snap), HENGE_E_SNAPSHOT);
  /* Integers beyond ±(2^53 - 1) are not config values (docs/protocol.md, "Limits"). */
  HT_EQ_INT(decode_hex(ENV_HEAD "03 a1 61 61 1b 0020000000000000" ENV_TAIL), HENGE_E_SNAPSHOT);
  HT_EQ_INT(decode_hex(ENV_HEAD "03 a1 61 61 3b 001fffffffffffff" ENV_TAIL), HENGE_E_SNAPSHOT);
  HT_EQ_INT(decode_hex(ENV_HEAD "03 a1 61 61 1b 8000000000000000" ENV_TAIL), HENGE_E_SNAPSHOT);
  /* A negative envelope key; a version beyond 2^53 - 1. */
  HT_EQ_INT(decode_hex("a6 00 01 01 07 20 00 02 48 0000000000000000 03 a0 04 48 0000000000000000"), HENGE_E_SNAPSHOT);
  HT_EQ_INT(decode_hex("a5 00 01 01 1b 0020000000000000 02 48 0000000000000000 03 a0 04 48 0000000000000000"), HENGE_E_SNAPSHOT);
  /* Not well-formed inside a skipped (unknown) envelope value: a tag without content, a map key without value. */
  HT_EQ_INT(decode_hex("a6 00 01 01 07 09 9f c1 ff 02 48 0000000000000000 03 a0 04 48 0102030405060708"), HENGE_E_CBOR);
  HT_EQ_INT(decode_hex("a6 00 01 01 07 09 bf 01 ff 02 48 0000000000000000 03 a0 04 48 0102030405060708"), HENGE_E_CBOR);
  /* ...while well-formed ones there are skipped: a tagged item, a complete pair, nested indefinite containers. */
  HT_EQ_INT(decode_hex("a6 00 01 01 07 09 9f c1 01 bf 01 02 ff 9f ff ff 02 48 0000000000000000 03 a0 04 48 0102030405060708"), HENGE_OK);
  /* The reserved key. */
  HT_EQ_INT(decode_hex(ENV_HEAD "03 a1 69 5f5f70726f746f5f5f 01" ENV_TAIL), HENGE_E_SNAPSHOT);
  /* Chunked text beyond the arena (64 bytes here: two 40-byte chunked values). */
  b = tb_start(buf, sizeof buf);
  tb_hex(&b, ENV_HEAD "03 a2 61 61 7f");
  tb_text_n(&b, text, 20);
  tb_text_n(&b, text, 20);
  tb_hex(&b, "ff 61 62 7f");
  tb_text_n(&b, text, 20);
  tb_text_n(&b, text, 20);
  tb_hex(&b, "ff" ENV_TAIL);
  HT_EQ_INT(henge_snapshot_decode(buf, b.len, &snap), HENGE_E_LIMIT);
  HT_CHECK(snap.envelope_ok);
  /* Larger than HENGE_MAX_SNAPSHOT_BYTES. */
  HT_EQ_INT(henge_snapshot_decode(buf, HENGE_MAX_SNAPSHOT_BYTES + 1, &snap), HENGE_E_LIMIT);
  HT_CHECK(!snap.envelope_ok);
}

static void survives_random_mutations(void) {
  /* Every byte of the fixtures flipped in many ways: never a crash (the sanitizers watch), never a
     pointer outside the input or the arena. */
  const char *fixtures[] = {FIXTURE_EXAMPLE, FIXTURE_TYPES};
  uint32_t seed = 12345;
  for (size_t fx = 0; fx < 2; fx++) {
    uint8_t base[512];
    size_t n = ht_hex(fixtures[fx], base, sizeof base);
    for (int round = 0; round < 20000; round++) {
      memcpy(buf, base, n);
      int flips = 1 + (int)(ht_rand(&seed) % 4);
      for (int k = 0; k < flips; k++) buf[ht_rand(&seed) % n] = (uint8_t)ht_rand(&seed);
      size_t len = ht_rand(&seed) % 8 == 0 ? ht_rand(&seed) % (n + 1) : n;
      henge_status st = henge_snapshot_decode(buf, len, &snap);
      if (st == HENGE_OK) {
        for (uint16_t i = 0; i < snap.count; i++) {
          const henge_field *f = &snap.fields[i];
          const char *lo = (const char *)buf, *hi = (const char *)buf + len;
          const char *alo = snap.arena, *ahi = snap.arena + sizeof snap.arena;
          int in_input = f->key >= lo && f->key + f->key_len <= hi;
          int in_arena = f->key >= alo && f->key + f->key_len <= ahi;
          HT_CHECK(in_input || in_arena);
          if (f->type == HENGE_TEXT) {
            in_input = f->v.text >= lo && f->v.text + f->text_len <= hi;
            in_arena = f->v.text >= alo && f->v.text + f->text_len <= ahi;
            HT_CHECK(in_input || in_arena);
          }
        }
      }
    }
  }
}

const ht_case snapshot_cases[] = {
    {"snapshot - decodes the hub's example (spec bytes from protocol/snapshot.ts)", decodes_the_hubs_example},
    {"snapshot - decodes empty values", decodes_empty_values},
    {"snapshot - decodes every scalar type", decodes_every_scalar_type},
    {"snapshot - accepts other valid encodings (long heads, any key order, indefinite lengths, chunks)", accepts_other_valid_encodings},
    {"snapshot - ignores unknown envelope keys, nested up to the skip depth", ignores_unknown_envelope_keys},
    {"snapshot - rejects what the spec rejects, with a message", rejects_what_the_spec_rejects},
    {"snapshot - rejects every truncation", rejects_every_truncation},
    {"snapshot - this build's limits: HENGE_E_LIMIT with the envelope kept; the protocol's limits: invalid", limits_of_this_build_keep_the_envelope},
    {"snapshot - random mutations never crash nor point outside the input", survives_random_mutations},
    {NULL, NULL},
};

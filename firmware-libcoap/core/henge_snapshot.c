/*
 * henge_snapshot.c: the snapshot decoder (docs/protocol.md, "Snapshot"), written for bounded input:
 * one pass, no recursion (the format is two maps deep; unknown envelope values are skipped
 * iteratively), no allocation (fields point into the input; chunked text goes to a fixed arena).
 */
#include "henge_internal.h"

#include <string.h>

/* Envelope keys. */
enum { KEY_PROTOCOL = 0, KEY_VERSION = 1, KEY_HASH = 2, KEY_VALUES = 3, KEY_INCARNATION = 4 };

typedef struct decoder {
  henge_cbor_reader r;
  henge_snapshot *out;
  /* The first HENGE_E_LIMIT seen: decoding goes on (to read the envelope), then this is returned. */
  henge_status limit;
  const char *limit_msg;
} decoder;

static henge_status fail(decoder *d, henge_status st, const char *msg) {
  d->out->error = msg;
  return st;
}

static void over_limit(decoder *d, const char *msg) {
  if (d->limit == HENGE_OK) {
    d->limit = HENGE_E_LIMIT;
    d->limit_msg = msg;
  }
}

/* A text or byte string: definite (pointed at in the input) or chunked (copied to `copy`, cap bytes). */
typedef struct string_ref {
  const uint8_t *data;
  size_t len;
} string_ref;

/*
 * Reads the string whose head is `h`. A definite one is pointed at. A chunked one is gathered into
 * `copy` (at most `cap` bytes; beyond: HENGE_E_LIMIT with `*too_long` set and the rest skipped) and its
 * pieces are checked to be of the same major type.
 */
static henge_status read_string(decoder *d, const henge_cbor_head *h, uint8_t *copy, size_t cap, string_ref *s, bool *too_long) {
  *too_long = false;
  if (!h->indefinite) {
    if ((uint64_t)(d->r.end - d->r.p) < h->arg) return fail(d, HENGE_E_CBOR, HENGE_MSG("a string runs past the end of the snapshot"));
    s->data = d->r.p;
    s->len = (size_t)h->arg;
    d->r.p += (size_t)h->arg;
    return HENGE_OK;
  }
  size_t used = 0;
  for (;;) {
    if (henge_cbor_take_break(&d->r)) break;
    henge_cbor_head c;
    if (henge_cbor_read_head(&d->r, &c) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("a chunked string is not well-formed"));
    if (c.major != h->major || c.indefinite) return fail(d, HENGE_E_CBOR, HENGE_MSG("a chunk of a string is of another type"));
    if ((uint64_t)(d->r.end - d->r.p) < c.arg) return fail(d, HENGE_E_CBOR, HENGE_MSG("a string runs past the end of the snapshot"));
    if (!*too_long && c.arg <= (uint64_t)(cap - used)) {
      memcpy(copy + used, d->r.p, (size_t)c.arg);
      used += (size_t)c.arg;
    } else {
      *too_long = true;
    }
    d->r.p += (size_t)c.arg;
  }
  s->data = copy;
  s->len = used;
  return HENGE_OK;
}

/* An 8-byte byte string (hash, incarnation), definite or chunked. */
static henge_status read_id(decoder *d, uint8_t dst[8], const char *what_msg) {
  henge_cbor_head h;
  if (henge_cbor_read_head(&d->r, &h) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
  if (h.major != HENGE_CBOR_BYTES) return fail(d, HENGE_E_SNAPSHOT, what_msg);
  uint8_t tmp[8];
  string_ref s;
  bool too_long;
  henge_status st = read_string(d, &h, tmp, sizeof tmp, &s, &too_long);
  if (st != HENGE_OK) return st;
  if (too_long || s.len != 8) return fail(d, HENGE_E_SNAPSHOT, what_msg);
  memcpy(dst, s.data, 8);
  return HENGE_OK;
}

/* The value of an unsigned integer head of major type 0. */
static henge_status read_uint(decoder *d, uint64_t *v, const char *what_msg) {
  henge_cbor_head h;
  if (henge_cbor_read_head(&d->r, &h) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
  if (h.major != HENGE_CBOR_UINT) return fail(d, HENGE_E_SNAPSHOT, what_msg);
  *v = h.arg;
  return HENGE_OK;
}

static bool key_char(uint8_t c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '-';
}

/* The largest integer a config value may hold (docs/protocol.md, "Limits"): 2^53 - 1. */
#define HENGE_MAX_SAFE_INT 9007199254740991ull

/* [A-Za-z_][A-Za-z0-9_-]{0,63}, and not the reserved `__proto__` (docs/protocol.md, "Limits"). */
static bool valid_key(const uint8_t *k, size_t len) {
  if (len == 0 || len > 64) return false;
  if (len == 9 && memcmp(k, "__proto__", 9) == 0) return false;
  for (size_t i = 0; i < len; i++)
    if (!key_char(k[i], i == 0)) return false;
  return true;
}

/* A half-precision float's value, exactly (RFC 8949 Appendix D), without libm. */
static double half_to_double(uint16_t h) {
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  double v;
  if (exp == 0) {
    v = (double)mant / 16777216.0; /* mant * 2^-24, exact */
  } else {
    /* (1024 + mant) * 2^(exp - 25), built as a double's bits: exponent exp - 15, 42 more mantissa bits. */
    uint64_t bits = ((uint64_t)(exp - 15 + 1023) << 52) | ((uint64_t)mant << 42);
    memcpy(&v, &bits, sizeof v);
  }
  return (h & 0x8000u) ? -v : v;
}

/* Reads one config value into `f`; HENGE_E_SNAPSHOT for anything that is not a finite scalar. */
static henge_status read_value(decoder *d, henge_field *f, bool store) {
  henge_cbor_head h;
  if (henge_cbor_read_head(&d->r, &h) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
  switch (h.major) {
    case HENGE_CBOR_UINT:
      /* docs/protocol.md, "Limits": integers are within ±(2^53 - 1), what the hub can hold. */
      if (h.arg > HENGE_MAX_SAFE_INT) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("an integer value is beyond ±(2^53 - 1)"));
      f->type = HENGE_INT;
      f->v.i = (int64_t)h.arg;
      return HENGE_OK;
    case HENGE_CBOR_NEGINT:
      /* -1 - arg >= -(2^53 - 1) */
      if (h.arg > HENGE_MAX_SAFE_INT - 1u) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("an integer value is beyond ±(2^53 - 1)"));
      f->type = HENGE_INT;
      f->v.i = -1 - (int64_t)h.arg;
      return HENGE_OK;
    case HENGE_CBOR_TEXT: {
      /* A chunked text is gathered into the arena (when this field is stored at all). */
      henge_snapshot *s = d->out;
      size_t room = store ? (size_t)(HENGE_TEXT_ARENA_BYTES - s->arena_used) : 0;
      string_ref t;
      bool too_long;
      henge_status st = read_string(d, &h, (uint8_t *)s->arena + s->arena_used, room, &t, &too_long);
      if (st != HENGE_OK) return st;
      if (too_long) {
        over_limit(d, HENGE_MSG("chunked text values exceed this device's arena (HENGE_TEXT_ARENA_BYTES)"));
        return HENGE_OK;
      }
      if (!henge_utf8_valid(t.data, t.len)) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a text value is not valid UTF-8"));
      if (t.len > HENGE_PROTOCOL_MAX_TEXT) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a text value is longer than 4096 bytes"));
      if (t.len > HENGE_MAX_TEXT_LEN) {
        over_limit(d, HENGE_MSG("a text value is longer than this device takes (HENGE_MAX_TEXT_LEN)"));
        return HENGE_OK;
      }
      if (h.indefinite && store) s->arena_used = (uint16_t)(s->arena_used + t.len);
      f->type = HENGE_TEXT;
      f->v.text = (const char *)t.data;
      f->text_len = (uint16_t)t.len;
      return HENGE_OK;
    }
    case HENGE_CBOR_SIMPLE: {
      if (h.ai == 20 || h.ai == 21) {
        f->type = HENGE_BOOL;
        f->v.b = h.ai == 21;
        return HENGE_OK;
      }
      uint64_t bits;
      int exp_bits;
      if (h.ai == 25) {
        exp_bits = (int)((h.arg >> 10) & 0x1f);
        if (exp_bits == 0x1f) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a float value is not finite"));
        f->type = HENGE_FLOAT;
        f->v.f = half_to_double((uint16_t)h.arg);
        return HENGE_OK;
      }
      if (h.ai == 26) {
        uint32_t b32 = (uint32_t)h.arg;
        if (((b32 >> 23) & 0xffu) == 0xffu) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a float value is not finite"));
        float fl;
        memcpy(&fl, &b32, sizeof fl);
        f->type = HENGE_FLOAT;
        f->v.f = (double)fl;
        return HENGE_OK;
      }
      if (h.ai == 27) {
        bits = h.arg;
        if (((bits >> 52) & 0x7ffu) == 0x7ffu) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a float value is not finite"));
        f->type = HENGE_FLOAT;
        memcpy(&f->v.f, &bits, sizeof bits);
        return HENGE_OK;
      }
      return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a value is null, undefined or a simple value, not a scalar"));
    }
    case HENGE_CBOR_TAG:
      return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a value is tagged, not a plain scalar"));
    default:
      /* Byte strings, arrays, maps: well-formed or not, not a config value. */
      return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a value is not text, a number or a boolean"));
  }
}

static bool same_key(const henge_field *f, const uint8_t *k, size_t len) {
  return f->key_len == len && memcmp(f->key, k, len) == 0;
}

/* The values map (envelope key 3). */
static henge_status read_values(decoder *d) {
  henge_snapshot *s = d->out;
  henge_cbor_head h;
  if (henge_cbor_read_head(&d->r, &h) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
  if (h.major != HENGE_CBOR_MAP) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("snapshot values (key 3) must be a map"));
  if (!h.indefinite && h.arg > (uint64_t)(d->r.end - d->r.p)) return fail(d, HENGE_E_CBOR, HENGE_MSG("the values map runs past the end of the snapshot"));
  uint64_t total = 0;
  for (;;) {
    if (h.indefinite) {
      if (henge_cbor_take_break(&d->r)) break;
    } else if (total == h.arg) {
      break;
    }
    total++;
    if (total > HENGE_PROTOCOL_MAX_FIELDS) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a snapshot has more than 256 values"));
    bool store = s->count < HENGE_MAX_FIELDS;
    if (!store) over_limit(d, HENGE_MSG("a snapshot has more values than this device takes (HENGE_MAX_FIELDS)"));

    henge_cbor_head kh;
    if (henge_cbor_read_head(&d->r, &kh) != HENGE_OK) return fail(d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
    if (kh.major != HENGE_CBOR_TEXT) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a value's key is not text"));
    uint8_t key_copy[HENGE_MAX_KEY_LEN];
    string_ref k;
    bool too_long;
    henge_status st = read_string(d, &kh, key_copy, sizeof key_copy, &k, &too_long);
    if (st != HENGE_OK) return st;
    if (too_long || !valid_key(k.data, k.len)) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a key does not match [A-Za-z_][A-Za-z0-9_-]{0,63}"));
    henge_field *f = &s->fields[store ? s->count : 0];
    henge_field scratch;
    if (!store) f = &scratch;
    if (store) {
      for (uint16_t i = 0; i < s->count; i++)
        if (same_key(&s->fields[i], k.data, k.len)) return fail(d, HENGE_E_SNAPSHOT, HENGE_MSG("a key appears twice in the values"));
      if (kh.indefinite) {
        /* A chunked key was gathered on the stack: keep it in the arena. */
        if ((size_t)(HENGE_TEXT_ARENA_BYTES - s->arena_used) < k.len) {
          over_limit(d, HENGE_MSG("chunked keys exceed this device's arena (HENGE_TEXT_ARENA_BYTES)"));
          store = false;
          f = &scratch;
        } else {
          memcpy(s->arena + s->arena_used, k.data, k.len);
          k.data = (const uint8_t *)s->arena + s->arena_used;
          s->arena_used = (uint16_t)(s->arena_used + k.len);
        }
      }
    }
    f->key = (const char *)k.data;
    f->key_len = (uint8_t)k.len;
    f->text_len = 0;
    f->type = 0xff;
    st = read_value(d, f, store);
    if (st != HENGE_OK) return st;
    /* A value over a limit leaves the type unset: the field is not kept. */
    if (store && f->type != 0xff) s->count++;
  }
  return HENGE_OK;
}

henge_status henge_snapshot_decode(const uint8_t *bytes, size_t len, henge_snapshot *out) {
  if (out == NULL) return HENGE_E_ARG;
  out->count = 0;
  out->arena_used = 0;
  out->version = 0;
  out->envelope_ok = false;
  out->error = NULL;
  memset(out->hash, 0, sizeof out->hash);
  memset(out->incarnation, 0, sizeof out->incarnation);
  if (bytes == NULL && len > 0) return HENGE_E_ARG;
  decoder d = {{bytes, bytes + len}, out, HENGE_OK, NULL};
  if (len > HENGE_MAX_SNAPSHOT_BYTES) return fail(&d, HENGE_E_LIMIT, HENGE_MSG("the snapshot is larger than this device takes (HENGE_MAX_SNAPSHOT_BYTES)"));

  henge_cbor_head h;
  if (henge_cbor_read_head(&d.r, &h) != HENGE_OK) return fail(&d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
  if (h.major != HENGE_CBOR_MAP) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("a snapshot must be a CBOR map"));
  if (!h.indefinite && h.arg > (uint64_t)(d.r.end - d.r.p)) return fail(&d, HENGE_E_CBOR, HENGE_MSG("the snapshot map runs past its end"));
  unsigned seen = 0;
  uint64_t n = 0;
  for (;;) {
    if (h.indefinite) {
      if (henge_cbor_take_break(&d.r)) break;
    } else if (n == h.arg) {
      break;
    }
    n++;
    henge_cbor_head kh;
    if (henge_cbor_read_head(&d.r, &kh) != HENGE_OK) return fail(&d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
    /* docs/protocol.md, "Limits": envelope keys are unsigned integers; unknown ones are skipped. */
    if (kh.major != HENGE_CBOR_UINT) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("snapshot envelope keys must be unsigned integers"));
    if (kh.arg > KEY_INCARNATION) {
      /* An envelope key this version does not know: ignored (docs/protocol.md, "Versioning"). */
      henge_status st = henge_cbor_skip(&d.r);
      if (st == HENGE_E_LIMIT) return fail(&d, HENGE_E_LIMIT, HENGE_MSG("an unknown envelope key's value is nested too deep for this device"));
      if (st != HENGE_OK) return fail(&d, HENGE_E_CBOR, HENGE_MSG("the snapshot is not well-formed CBOR"));
      continue;
    }
    unsigned bit = 1u << kh.arg;
    if (seen & bit) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("an envelope key appears twice"));
    seen |= bit;
    henge_status st;
    uint64_t v;
    switch (kh.arg) {
      case KEY_PROTOCOL:
        st = read_uint(&d, &v, HENGE_MSG("snapshot protocol (key 0) must be an unsigned integer"));
        if (st != HENGE_OK) return st;
        if (v != HENGE_PROTOCOL_VERSION) return fail(&d, HENGE_E_PROTOCOL, HENGE_MSG("unsupported protocol version (key 0 is not 1)"));
        break;
      case KEY_VERSION:
        st = read_uint(&d, &out->version, HENGE_MSG("snapshot version (key 1) must be an unsigned integer"));
        if (st != HENGE_OK) return st;
        if (out->version > HENGE_MAX_SAFE_INT) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("snapshot version (key 1) is beyond 2^53 - 1"));
        break;
      case KEY_HASH:
        st = read_id(&d, out->hash, HENGE_MSG("snapshot hash (key 2) must be an 8-byte string"));
        if (st != HENGE_OK) return st;
        break;
      case KEY_VALUES:
        st = read_values(&d);
        if (st != HENGE_OK) return st;
        break;
      default: /* KEY_INCARNATION */
        st = read_id(&d, out->incarnation, HENGE_MSG("snapshot incarnation (key 4) must be an 8-byte string"));
        if (st != HENGE_OK) return st;
        break;
    }
  }
  if (d.r.p != d.r.end) return fail(&d, HENGE_E_CBOR, HENGE_MSG("bytes follow the snapshot"));
  if (seen != 0x1fu) {
    if (!(seen & (1u << KEY_PROTOCOL))) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("the snapshot has no protocol (key 0)"));
    if (!(seen & (1u << KEY_VERSION))) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("the snapshot has no version (key 1)"));
    if (!(seen & (1u << KEY_HASH))) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("the snapshot has no hash (key 2)"));
    if (!(seen & (1u << KEY_VALUES))) return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("the snapshot has no values (key 3)"));
    return fail(&d, HENGE_E_SNAPSHOT, HENGE_MSG("the snapshot has no incarnation (key 4)"));
  }
  out->envelope_ok = true;
  if (d.limit != HENGE_OK) return fail(&d, d.limit, d.limit_msg);
  return HENGE_OK;
}

henge_status henge_snapshot_find(const henge_snapshot *s, const char *key, size_t key_len, const henge_field **field) {
  if (s == NULL || key == NULL || field == NULL) return HENGE_E_ARG;
  for (uint16_t i = 0; i < s->count; i++) {
    if (same_key(&s->fields[i], (const uint8_t *)key, key_len)) {
      *field = &s->fields[i];
      return HENGE_OK;
    }
  }
  return HENGE_E_NOT_FOUND;
}

henge_status henge_mark_of(const henge_snapshot *s, henge_mark *mark) {
  if (s == NULL || mark == NULL) return HENGE_E_ARG;
  mark->version = s->version;
  memcpy(mark->hash, s->hash, HENGE_HASH_BYTES);
  memcpy(mark->incarnation, s->incarnation, HENGE_INCARNATION_BYTES);
  return HENGE_OK;
}

/*
 * fuzz_cbor.h: what the fuzz targets need besides the core, written apart from it so that an oracle
 * does not share the core's mistakes: a strict CBOR well-formedness check (RFC 8949 Appendix C), a
 * small CBOR writer, and a re-encoder and comparer of decoded snapshots. Header-only (static), C99.
 */
#ifndef HENGE_FUZZ_CBOR_H
#define HENGE_FUZZ_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "henge.h"

/* ---------------------------------------------------------------------------------------------- */
/* Well-formedness, as RFC 8949 Appendix C's pseudocode says, recursive (inputs are fuzzer-sized).   */

typedef struct fz_wf {
  const uint8_t *p, *end;
  int depth;
} fz_wf;

#define FZ_WF_MAX_DEPTH 200

static bool fz_wf_take(fz_wf *r, size_t n, uint64_t *v) {
  if ((size_t)(r->end - r->p) < n) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x = (x << 8) | r->p[i];
  r->p += n;
  *v = x;
  return true;
}

/* -1: not well-formed; 0: a complete item; 1: a "break" (allowed only where breakable). */
static int fz_wf_item(fz_wf *r, bool breakable);
static int fz_wf_untagged(fz_wf *r, bool breakable);

static bool fz_wf_indefinite_string(fz_wf *r, int major) {
  for (;;) {
    if (r->p >= r->end) return false;
    uint8_t ib = *r->p;
    if (ib == 0xff) {
      r->p++;
      return true;
    }
    /* Chunks: definite strings of the same major type only. */
    if ((ib >> 5) != major || (ib & 0x1f) == 31) return false;
    if (fz_wf_item(r, false) != 0) return false;
  }
}

/*
 * An item: any number of tags, then the item they tag. Tags are read in a loop, not by recursion, and
 * do not count as nesting (the core does not count them either: a chain of thousands is well-formed).
 */
static int fz_wf_item(fz_wf *r, bool breakable) {
  bool tagged = false;
  while (r->p < r->end && (*r->p >> 5) == 6) {
    uint8_t ai = *r->p++ & 0x1f;
    uint64_t ignored;
    if (ai >= 28) return -1; /* reserved, or an indefinite tag */
    if (ai >= 24 && !fz_wf_take(r, (size_t)1 << (ai - 24), &ignored)) return -1;
    tagged = true;
  }
  if (!tagged) return fz_wf_untagged(r, breakable);
  return fz_wf_untagged(r, false) == 0 ? 0 : -1;
}

static int fz_wf_untagged(fz_wf *r, bool breakable) {
  if (r->p >= r->end) return -1;
  if (++r->depth > FZ_WF_MAX_DEPTH) return -1;
  uint8_t ib = *r->p++;
  int mt = ib >> 5, ai = ib & 0x1f;
  uint64_t val = (uint64_t)ai;
  int result = 0;
  switch (ai) {
    case 24:
      if (!fz_wf_take(r, 1, &val)) return -1;
      if (mt == 7 && val < 32) return -1;
      break;
    case 25:
      if (!fz_wf_take(r, 2, &val)) return -1;
      break;
    case 26:
      if (!fz_wf_take(r, 4, &val)) return -1;
      break;
    case 27:
      if (!fz_wf_take(r, 8, &val)) return -1;
      break;
    case 28:
    case 29:
    case 30:
      return -1;
    case 31:
      switch (mt) {
        case 2:
        case 3:
          result = fz_wf_indefinite_string(r, mt) ? 0 : -1;
          break;
        case 4:
          for (;;) {
            int x = fz_wf_item(r, true);
            if (x < 0) return -1;
            if (x == 1) break;
          }
          break;
        case 5:
          for (;;) {
            int x = fz_wf_item(r, true);
            if (x < 0) return -1;
            if (x == 1) break;
            x = fz_wf_item(r, false); /* a key needs its value */
            if (x < 0) return -1;
            if (x == 1) break;
          }
          break;
        case 7:
          result = breakable ? 1 : -1;
          break;
        default:
          return -1;
      }
      r->depth--;
      return result;
    default:
      break;
  }
  switch (mt) {
    case 2:
    case 3:
      if ((uint64_t)(r->end - r->p) < val) return -1;
      r->p += (size_t)val;
      break;
    case 4:
    case 5: {
      uint64_t items = val;
      if (mt == 5) {
        if (items > UINT64_MAX / 2) return -1;
        items *= 2;
      }
      if (items > (uint64_t)(r->end - r->p)) return -1;
      for (uint64_t i = 0; i < items; i++)
        if (fz_wf_item(r, false) != 0) return -1;
      break;
    }
    case 6:
      return -1; /* tags are fz_wf_item's */
    default:
      break;
  }
  r->depth--;
  return 0;
}

/* True when bytes[0..len) is exactly one well-formed CBOR data item. */
static bool fz_well_formed(const uint8_t *bytes, size_t len) {
  fz_wf r = {bytes, bytes + len, 0};
  return fz_wf_item(&r, false) == 0 && r.p == r.end;
}

/* ---------------------------------------------------------------------------------------------- */
/* A CBOR writer (preferred serialisation) into a fixed buffer; `bad` sticks when it is full.       */

typedef struct fz_w {
  uint8_t *buf;
  size_t cap, len;
  bool bad;
} fz_w;

static void fz_put(fz_w *w, const void *data, size_t n) {
  if (w->bad || w->cap - w->len < n) {
    w->bad = true;
    return;
  }
  if (n > 0) memcpy(w->buf + w->len, data, n);
  w->len += n;
}

static void fz_byte(fz_w *w, uint8_t b) { fz_put(w, &b, 1); }

/* A head of `major` with `arg`, in `width` extra bytes (0: shortest; else 1, 2, 4 or 8 if it fits). */
static void fz_head_w(fz_w *w, int major, uint64_t arg, int width) {
  uint8_t m = (uint8_t)(major << 5);
  if (width == 0) width = arg < 24 ? -1 : arg <= 0xff ? 1 : arg <= 0xffff ? 2 : arg <= 0xffffffffu ? 4 : 8;
  if (width == 1 && arg > 0xff) width = 2;
  if (width == 2 && arg > 0xffff) width = 4;
  if (width == 4 && arg > 0xffffffffu) width = 8;
  if (width < 0) {
    fz_byte(w, (uint8_t)(m | arg));
    return;
  }
  fz_byte(w, (uint8_t)(m | (width == 1 ? 24 : width == 2 ? 25 : width == 4 ? 26 : 27)));
  for (int i = width - 1; i >= 0; i--) fz_byte(w, (uint8_t)(arg >> (8 * i)));
}

static void fz_head(fz_w *w, int major, uint64_t arg) { fz_head_w(w, major, arg, 0); }

/* The shortest float that holds `v` exactly (half, single, double); v finite. */
static void fz_float(fz_w *w, double v) {
  float f = (float)v;
  if ((double)f == v) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000u;
    int exp = (int)((b >> 23) & 0xff) - 127;
    uint32_t mant = b & 0x7fffffu;
    int half = -1;
    if (exp == -127 && mant == 0) half = (int)sign;
    else if (exp >= -14 && exp <= 15 && (mant & 0x1fffu) == 0) half = (int)(sign | (uint32_t)(exp + 15) << 10 | mant >> 13);
    else if (exp >= -24 && exp < -14) {
      uint32_t full = mant | 0x800000u;
      int shift = 13 + (-14 - exp);
      if ((full & ((1u << shift) - 1)) == 0) half = (int)(sign | full >> shift);
    }
    if (half >= 0) {
      fz_byte(w, 0xf9);
      fz_byte(w, (uint8_t)(half >> 8));
      fz_byte(w, (uint8_t)half);
      return;
    }
    fz_byte(w, 0xfa);
    for (int i = 3; i >= 0; i--) fz_byte(w, (uint8_t)(b >> (8 * i)));
    return;
  }
  uint64_t b;
  memcpy(&b, &v, 8);
  fz_byte(w, 0xfb);
  for (int i = 7; i >= 0; i--) fz_byte(w, (uint8_t)(b >> (8 * i)));
}

static void fz_int(fz_w *w, int64_t i) {
  if (i >= 0) fz_head(w, 0, (uint64_t)i);
  else fz_head(w, 1, (uint64_t)(-1 - i));
}

/* A decoded snapshot written back in preferred serialisation, fields in their decoded order. */
static bool fz_encode_snapshot(const henge_snapshot *s, uint8_t *buf, size_t cap, size_t *len) {
  fz_w w = {buf, cap, 0, false};
  fz_byte(&w, 0xa5);
  fz_byte(&w, 0x00);
  fz_byte(&w, 0x01);
  fz_byte(&w, 0x01);
  fz_head(&w, 0, s->version);
  fz_byte(&w, 0x02);
  fz_head(&w, 2, HENGE_HASH_BYTES);
  fz_put(&w, s->hash, HENGE_HASH_BYTES);
  fz_byte(&w, 0x03);
  fz_head(&w, 5, s->count);
  for (uint16_t i = 0; i < s->count; i++) {
    const henge_field *f = &s->fields[i];
    fz_head(&w, 3, f->key_len);
    fz_put(&w, f->key, f->key_len);
    switch (f->type) {
      case HENGE_TEXT:
        fz_head(&w, 3, f->text_len);
        fz_put(&w, f->v.text, f->text_len);
        break;
      case HENGE_INT:
        fz_int(&w, f->v.i);
        break;
      case HENGE_FLOAT:
        fz_float(&w, f->v.f);
        break;
      case HENGE_BOOL:
        fz_byte(&w, f->v.b ? 0xf5 : 0xf4);
        break;
      default:
        return false;
    }
  }
  fz_byte(&w, 0x04);
  fz_head(&w, 2, HENGE_INCARNATION_BYTES);
  fz_put(&w, s->incarnation, HENGE_INCARNATION_BYTES);
  *len = w.len;
  return !w.bad;
}

/* Field by field: same keys in the same order, same types, same values (floats bit for bit). */
static bool fz_same_snapshot(const henge_snapshot *a, const henge_snapshot *b) {
  if (a->version != b->version || memcmp(a->hash, b->hash, 8) != 0 || memcmp(a->incarnation, b->incarnation, 8) != 0) return false;
  if (a->count != b->count) return false;
  for (uint16_t i = 0; i < a->count; i++) {
    const henge_field *x = &a->fields[i], *y = &b->fields[i];
    if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 || x->type != y->type) return false;
    switch (x->type) {
      case HENGE_TEXT:
        if (x->text_len != y->text_len || memcmp(x->v.text, y->v.text, x->text_len) != 0) return false;
        break;
      case HENGE_INT:
        if (x->v.i != y->v.i) return false;
        break;
      case HENGE_FLOAT:
        if (memcmp(&x->v.f, &y->v.f, sizeof(double)) != 0) return false;
        break;
      case HENGE_BOOL:
        if (x->v.b != y->v.b) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* Checks of a decoded snapshot against docs/protocol.md, independent of the decoder               */

static bool fz_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    uint32_t cp;
    size_t k;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1fu;
      k = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0fu;
      k = 3;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07u;
      k = 4;
    } else {
      return false;
    }
    if (n - i < k) return false;
    for (size_t j = 1; j < k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + j] & 0x3fu);
    }
    uint32_t min = k == 2 ? 0x80 : k == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += k;
  }
  return true;
}

static bool fz_key_ok(const char *k, size_t n) {
  if (n < 1 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = k[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool more = (c >= '0' && c <= '9') || c == '-';
    if (!(alpha || (i > 0 && more))) return false;
  }
  return true;
}

/* NULL when `s` (decoded from bytes[0..len)) is what the protocol allows; else what is wrong. */
static const char *fz_check_decoded(const henge_snapshot *s, const uint8_t *bytes, size_t len) {
  if (!s->envelope_ok) return "decoded without envelope_ok";
  if (s->count > HENGE_MAX_FIELDS) return "more fields than HENGE_MAX_FIELDS";
  if (s->arena_used > HENGE_TEXT_ARENA_BYTES) return "arena_used beyond the arena";
  const char *lo = (const char *)bytes, *hi = lo + len, *alo = s->arena, *ahi = s->arena + HENGE_TEXT_ARENA_BYTES;
  for (uint16_t i = 0; i < s->count; i++) {
    const henge_field *f = &s->fields[i];
    bool in = (f->key >= lo && f->key + f->key_len <= hi) || (f->key >= alo && f->key + f->key_len <= ahi);
    if (!in) return "a key points outside the input and the arena";
    if (!fz_key_ok(f->key, f->key_len)) return "a key does not match [A-Za-z_][A-Za-z0-9_-]{0,63}";
    if (f->key_len == 9 && memcmp(f->key, "__proto__", 9) == 0) return "the key __proto__";
    for (uint16_t j = 0; j < i; j++)
      if (s->fields[j].key_len == f->key_len && memcmp(s->fields[j].key, f->key, f->key_len) == 0) return "a key twice";
    switch (f->type) {
      case HENGE_TEXT:
        in = (f->v.text >= lo && f->v.text + f->text_len <= hi) || (f->v.text >= alo && f->v.text + f->text_len <= ahi);
        if (!in) return "a text points outside the input and the arena";
        if (f->text_len > HENGE_MAX_TEXT_LEN) return "a text longer than HENGE_MAX_TEXT_LEN";
        if (!fz_utf8((const uint8_t *)f->v.text, f->text_len)) return "a text that is not UTF-8";
        break;
      case HENGE_FLOAT: {
        uint64_t b;
        memcpy(&b, &f->v.f, 8);
        if (((b >> 52) & 0x7ff) == 0x7ff) return "a float that is not finite";
        break;
      }
      case HENGE_INT:
        /* docs/protocol.md, "Limits": integers are within ±(2^53 - 1). */
        if (f->v.i > 9007199254740991LL || f->v.i < -9007199254740991LL) return "an integer beyond ±(2^53 - 1)";
        break;
      case HENGE_BOOL:
        break;
      default:
        return "a field of no type";
    }
  }
  return NULL;
}

#endif /* HENGE_FUZZ_CBOR_H */

/*
 * henge-snapshot-canon: the core's snapshot decoder as a command, for the differential test
 * (decoder-diff.test.ts). It prints what henge_snapshot_decode made of each snapshot as one line of
 * canonical JSON: fixed member order, no spaces, ASCII only, fields sorted by key:
 *
 *   {"status":"HENGE_OK","envelope":true,"version":"7","hash":"b20c…","incarnation":"0102…",
 *    "values":[["mode","t","heat"],["n","i","-3"],["on","b",true],["setpoint","f","4035800000000000"]]}
 *
 * Integers and the version are decimal strings (int64 and uint64 do not fit a JSON number); floats are
 * the 16 hex digits of their IEEE 754 double, so that no printing or parsing of decimals can hide a
 * difference; text is JSON with every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF).
 * A refused snapshot: {"status":"HENGE_E_…","envelope":false} (with version, hash and incarnation too
 * when the envelope was read: HENGE_E_LIMIT).
 *
 *   henge-snapshot-canon FILE...   one line per file
 *   henge-snapshot-canon           one snapshot on stdin
 *   henge-snapshot-canon --batch   stdin: records of a 4-byte big-endian length and the bytes; one line each
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "henge.h"

static henge_snapshot snap;
static const henge_field *order[HENGE_MAX_FIELDS];

static void put_hex(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

/* Text as a JSON string, ASCII only. The decoder has checked UTF-8; anything else is printed per byte. */
static void put_text(const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s;
  putchar('"');
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    uint32_t cp = c;
    size_t k = 1;
    if (c >= 0xf0 && n - i >= 4) {
      cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(p[i + 1] & 0x3f) << 12 | (uint32_t)(p[i + 2] & 0x3f) << 6 | (p[i + 3] & 0x3f);
      k = 4;
    } else if (c >= 0xe0 && n - i >= 3) {
      cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f);
      k = 3;
    } else if (c >= 0xc0 && n - i >= 2) {
      cp = (uint32_t)(c & 0x1f) << 6 | (p[i + 1] & 0x3f);
      k = 2;
    }
    i += k;
    if (cp == '"') fputs("\\\"", stdout);
    else if (cp == '\\') fputs("\\\\", stdout);
    else if (cp >= 0x20 && cp < 0x7f) putchar((int)cp);
    else if (cp > 0xffff) {
      uint32_t v = cp - 0x10000;
      printf("\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
    } else {
      printf("\\u%04x", cp);
    }
  }
  putchar('"');
}

static int by_key(const void *a, const void *b) {
  const henge_field *x = *(const henge_field *const *)a, *y = *(const henge_field *const *)b;
  size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, m);
  return c != 0 ? c : (int)x->key_len - (int)y->key_len;
}

static void put_envelope(void) {
  printf(",\"version\":\"%llu\",\"hash\":\"", (unsigned long long)snap.version);
  put_hex(snap.hash, sizeof snap.hash);
  printf("\",\"incarnation\":\"");
  put_hex(snap.incarnation, sizeof snap.incarnation);
  putchar('"');
}

static void canon(const uint8_t *bytes, size_t n) {
  henge_status st = henge_snapshot_decode(bytes, n, &snap);
  printf("{\"status\":\"%s\",\"envelope\":%s", henge_status_name(st), snap.envelope_ok ? "true" : "false");
  if (snap.envelope_ok) put_envelope();
  if (st == HENGE_OK) {
    for (uint16_t i = 0; i < snap.count; i++) order[i] = &snap.fields[i];
    qsort(order, snap.count, sizeof order[0], by_key);
    fputs(",\"values\":[", stdout);
    for (uint16_t i = 0; i < snap.count; i++) {
      const henge_field *f = order[i];
      if (i > 0) putchar(',');
      putchar('[');
      put_text(f->key, f->key_len);
      switch (f->type) {
        case HENGE_TEXT:
          fputs(",\"t\",", stdout);
          put_text(f->v.text, f->text_len);
          break;
        case HENGE_INT:
          printf(",\"i\",\"%lld\"", (long long)f->v.i);
          break;
        case HENGE_FLOAT: {
          uint64_t bits;
          memcpy(&bits, &f->v.f, sizeof bits);
          printf(",\"f\",\"%016llx\"", (unsigned long long)bits);
          break;
        }
        case HENGE_BOOL:
          printf(",\"b\",%s", f->v.b ? "true" : "false");
          break;
        default:
          printf(",\"?\",null");
      }
      putchar(']');
    }
    putchar(']');
  }
  fputs("}\n", stdout);
}

/* Reads all of `f` into a growing buffer. */
static uint8_t *slurp(FILE *f, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return NULL;
  for (;;) {
    if (n == cap) {
      uint8_t *more = realloc(buf, cap * 2);
      if (more == NULL) {
        free(buf);
        return NULL;
      }
      buf = more;
      cap *= 2;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  size_t n = 0;
  if (argc == 1 || strcmp(argv[1], "--batch") == 0) {
    uint8_t *in = slurp(stdin, &n);
    if (in == NULL) return 2;
    if (argc == 1) {
      canon(in, n);
    } else {
      for (size_t at = 0; at < n;) {
        if (n - at < 4) return 3;
        size_t len = (size_t)in[at] << 24 | (size_t)in[at + 1] << 16 | (size_t)in[at + 2] << 8 | in[at + 3];
        at += 4;
        if (n - at < len) return 3;
        canon(in + at, len);
        at += len;
      }
    }
    free(in);
    return fflush(stdout) == 0 ? 0 : 2;
  }
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (f == NULL) {
      perror(argv[i]);
      return 2;
    }
    uint8_t *in = slurp(f, &n);
    fclose(f);
    if (in == NULL) return 2;
    canon(in, n);
    free(in);
  }
  return fflush(stdout) == 0 ? 0 : 2;
}

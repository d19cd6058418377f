/* Test helpers: a small CBOR builder and a deterministic PRNG. */
#ifndef HENGE_TESTING_H
#define HENGE_TESTING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "henge_test.h"

typedef struct tb {
  uint8_t *buf;
  size_t cap;
  size_t len;
} tb;

static inline tb tb_start(uint8_t *buf, size_t cap) {
  tb b = {buf, cap, 0};
  return b;
}

static inline void tb_byte(tb *b, uint8_t v) {
  if (b->len >= b->cap) abort();
  b->buf[b->len++] = v;
}

static inline void tb_head(tb *b, uint8_t major, uint64_t arg) {
  uint8_t m = (uint8_t)(major << 5);
  if (arg < 24) {
    tb_byte(b, (uint8_t)(m | arg));
  } else if (arg <= 0xff) {
    tb_byte(b, m | 24);
    tb_byte(b, (uint8_t)arg);
  } else if (arg <= 0xffff) {
    tb_byte(b, m | 25);
    tb_byte(b, (uint8_t)(arg >> 8));
    tb_byte(b, (uint8_t)arg);
  } else {
    tb_byte(b, m | 26);
    for (int i = 3; i >= 0; i--) tb_byte(b, (uint8_t)(arg >> (8 * i)));
  }
}

static inline void tb_text_n(tb *b, const char *s, size_t n) {
  tb_head(b, 3, n);
  for (size_t i = 0; i < n; i++) tb_byte(b, (uint8_t)s[i]);
}

static inline void tb_text(tb *b, const char *s) { tb_text_n(b, s, strlen(s)); }

static inline void tb_hex(tb *b, const char *hex) { b->len += ht_hex(hex, b->buf + b->len, b->cap - b->len); }

/* xorshift32 */
static inline uint32_t ht_rand(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

#endif

/*
 * henge_test.h: the smallest test runner that does the job. A test is a function; HT_CHECK records a
 * failure (file, line, expression) and goes on; the runner prints "N passed, N failed" and exits
 * non-zero when anything failed.
 */
#ifndef HENGE_TEST_H
#define HENGE_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int ht_failures_in_test;

#define HT_CHECK(cond)                                                                 \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      ht_failures_in_test++;                                                           \
      fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
    }                                                                                  \
  } while (0)

#define HT_EQ_INT(a, b)                                                                                      \
  do {                                                                                                       \
    long long ht_a = (long long)(a), ht_b = (long long)(b);                                                  \
    if (ht_a != ht_b) {                                                                                      \
      ht_failures_in_test++;                                                                                 \
      fprintf(stderr, "    %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b, ht_a, ht_b);       \
    }                                                                                                        \
  } while (0)

typedef void (*ht_fn)(void);
typedef struct ht_case {
  const char *name;
  ht_fn fn;
} ht_case;

/* Hex text ("a5 00 01", spaces ignored) to bytes; returns the length. Aborts on bad hex. */
size_t ht_hex(const char *hex, uint8_t *out, size_t cap);

#endif

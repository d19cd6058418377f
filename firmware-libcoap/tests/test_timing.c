/* Backoff with full jitter and the keepalive time (agent/backoff.test.ts's cases, in integers). */
#include "henge.h"
#include "henge_test.h"

static void backoff_doubles_up_to_the_cap_with_full_jitter(void) {
  henge_backoff b;
  HT_EQ_INT(henge_backoff_init(&b, 500, 4000), HENGE_OK);
  uint32_t d = 0;
  /* random = 2^32 - 1: just under the ceiling: 500, 1000, 2000, 4000, 4000 ... */
  const uint32_t ceilings[] = {500, 1000, 2000, 4000, 4000, 4000};
  for (int i = 0; i < 6; i++) {
    HT_EQ_INT(henge_backoff_next(&b, UINT32_MAX, &d), HENGE_OK);
    HT_EQ_INT(d, ceilings[i] - 1);
  }
  HT_EQ_INT(b.attempts, 6);
  /* random = 0: no wait at all (full jitter); half: half the ceiling. */
  HT_EQ_INT(henge_backoff_next(&b, 0, &d), HENGE_OK);
  HT_EQ_INT(d, 0);
  HT_EQ_INT(henge_backoff_next(&b, 0x80000000u, &d), HENGE_OK);
  HT_EQ_INT(d, 2000);
  HT_EQ_INT(henge_backoff_reset(&b), HENGE_OK);
  HT_EQ_INT(henge_backoff_next(&b, 0x80000000u, &d), HENGE_OK);
  HT_EQ_INT(d, 250);
}

static void backoff_never_overflows(void) {
  henge_backoff b;
  henge_backoff_init(&b, 500, UINT32_MAX);
  uint32_t d = 0;
  for (int i = 0; i < 100; i++) HT_EQ_INT(henge_backoff_next(&b, UINT32_MAX, &d), HENGE_OK);
  HT_EQ_INT(d, UINT32_MAX - 1);
  b.attempts = UINT32_MAX;
  HT_EQ_INT(henge_backoff_next(&b, 0, &d), HENGE_OK);
  HT_EQ_INT(b.attempts, UINT32_MAX);
  HT_EQ_INT(henge_backoff_init(&b, 0, 10), HENGE_E_ARG);
}

static void keepalive_is_70_to_85_percent_of_max_age(void) {
  uint32_t d = 0;
  HT_EQ_INT(henge_keepalive_ms(60, 0, &d), HENGE_OK);
  HT_EQ_INT(d, 42000);
  HT_EQ_INT(henge_keepalive_ms(60, UINT32_MAX, &d), HENGE_OK);
  HT_EQ_INT(d, 50940); /* 849.99 permille, rounded down */
  HT_EQ_INT(henge_keepalive_ms(1, 0, &d), HENGE_OK);
  HT_EQ_INT(d, 1000); /* at least a second */
  HT_EQ_INT(henge_keepalive_ms(0, 0, &d), HENGE_OK);
  HT_EQ_INT(d, 1000);
  HT_EQ_INT(henge_keepalive_ms(UINT32_MAX, UINT32_MAX, &d), HENGE_OK);
  HT_EQ_INT(d, UINT32_MAX);
}

const ht_case timing_cases[] = {
    {"timing - backoff doubles from the base up to the cap, with full jitter, and resets", backoff_doubles_up_to_the_cap_with_full_jitter},
    {"timing - backoff never overflows", backoff_never_overflows},
    {"timing - keepalive is 70-85 % of Max-Age, at least 1 s", keepalive_is_70_to_85_percent_of_max_age},
    {NULL, NULL},
};

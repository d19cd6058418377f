/*
 * henge_timing.c: reconnect backoff with full jitter, and the keepalive re-registration time
 * (docs/protocol.md, "Observe lifecycle" 6). Integer arithmetic only; the caller brings the randomness.
 */
#include "henge_internal.h"

henge_status henge_backoff_init(henge_backoff *b, uint32_t base_ms, uint32_t cap_ms) {
  if (b == NULL || base_ms == 0) return HENGE_E_ARG;
  b->base_ms = base_ms;
  b->cap_ms = cap_ms;
  b->attempts = 0;
  return HENGE_OK;
}

henge_status henge_backoff_next(henge_backoff *b, uint32_t random, uint32_t *delay_ms) {
  if (b == NULL || delay_ms == NULL) return HENGE_E_ARG;
  /* ceiling = min(cap, base * 2^attempts), without overflow. */
  uint64_t ceiling = b->base_ms;
  for (uint32_t i = 0; i < b->attempts && ceiling < b->cap_ms; i++) ceiling *= 2;
  if (ceiling > b->cap_ms) ceiling = b->cap_ms;
  /* Uniform in [0, ceiling): the high part of random * ceiling. */
  *delay_ms = (uint32_t)(((uint64_t)random * ceiling) >> 32);
  if (b->attempts < UINT32_MAX) b->attempts++;
  return HENGE_OK;
}

henge_status henge_backoff_reset(henge_backoff *b) {
  if (b == NULL) return HENGE_E_ARG;
  b->attempts = 0;
  return HENGE_OK;
}

henge_status henge_keepalive_ms(uint32_t max_age_s, uint32_t random, uint32_t *delay_ms) {
  if (delay_ms == NULL) return HENGE_E_ARG;
  /* max_age * 1000 * (0.70 + 0.15 * random / 2^32), in integers: max_age * (700 + 150 * random / 2^32). */
  uint64_t permille = 700u + (((uint64_t)random * 150u) >> 32);
  uint64_t ms = (uint64_t)max_age_s * permille;
  if (ms < 1000) ms = 1000;
  if (ms > UINT32_MAX) ms = UINT32_MAX;
  *delay_ms = (uint32_t)ms;
  return HENGE_OK;
}

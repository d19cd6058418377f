/*
 * sys.c: clocks, randomness, version strings.
 *
 * Nothing here can fail, so nothing returns a status: clock_gettime on CLOCK_MONOTONIC and
 * CLOCK_REALTIME (always present on Linux, with a valid pointer) does not fail, and fw_random32 falls
 * back to rand() when getrandom does.
 */
#include "sys.h"

#include <coap3/coap.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t fw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

long long fw_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t fw_random32(void) {
  uint32_t r;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand() ^ (uint32_t)fw_now_ms();
  return r;
}

const char *fw_libcoap_version(void) {
  const char *v = coap_package_version();
  const char *sp = strrchr(v, ' ');
  return sp ? sp + 1 : v;
}

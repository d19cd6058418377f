/* The test runner: every suite's cases, in order; `henge-core-tests [name-substring]`. */
#include <stdlib.h>
#include <string.h>

#include "henge_test.h"

int ht_failures_in_test = 0;

size_t ht_hex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  int half = -1;
  for (const char *p = hex; *p; p++) {
    int v;
    if (*p == ' ' || *p == '\n') continue;
    if (*p >= '0' && *p <= '9') v = *p - '0';
    else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
    else abort();
    if (half < 0) {
      half = v;
    } else {
      if (n >= cap) abort();
      out[n++] = (uint8_t)(half << 4 | v);
      half = -1;
    }
  }
  if (half >= 0) abort();
  return n;
}

#define SUITE(name) extern const ht_case name[];
SUITE(snapshot_cases)
SUITE(rules_cases)
SUITE(ack_cases)
SUITE(timing_cases)
SUITE(device_cases)
SUITE(slots_cases)
SUITE(dnssd_cases)
SUITE(link_cases)

int main(int argc, char **argv) {
  const ht_case *suites[] = {snapshot_cases, rules_cases, ack_cases, timing_cases, device_cases, slots_cases, dnssd_cases, link_cases};
  const char *filter = argc > 1 ? argv[1] : NULL;
  int passed = 0, failed = 0;
  for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
    for (const ht_case *c = suites[s]; c->name != NULL; c++) {
      if (filter && !strstr(c->name, filter)) continue;
      ht_failures_in_test = 0;
      c->fn();
      if (ht_failures_in_test == 0) {
        passed++;
        printf("ok   %s\n", c->name);
      } else {
        failed++;
        printf("FAIL %s\n", c->name);
      }
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

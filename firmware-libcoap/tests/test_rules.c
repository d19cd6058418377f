/* The version and incarnation rules (docs/protocol.md), the same cases as agent/version-rule.test.ts. */
#include <string.h>

#include "henge.h"
#include "henge_test.h"

static henge_mark mark(uint64_t version, uint8_t inc) {
  henge_mark m;
  memset(&m, 0, sizeof m);
  m.version = version;
  memset(m.incarnation, inc, sizeof m.incarnation);
  return m;
}

static henge_decision decide(const henge_mark *applied, henge_mark incoming) {
  henge_decision d = HENGE_IGNORE_OLDER;
  HT_EQ_INT(henge_decide(applied, &incoming, &d), HENGE_OK);
  return d;
}

static void applies_first_and_newer(void) {
  henge_mark a = mark(5, 1);
  HT_EQ_INT(decide(NULL, mark(5, 1)), HENGE_APPLY_FIRST);
  HT_EQ_INT(decide(&a, mark(6, 1)), HENGE_APPLY_NEWER);
  HT_EQ_INT(decide(&a, mark(1000000, 1)), HENGE_APPLY_NEWER);
}

static void ignores_duplicates_and_reordered(void) {
  henge_mark a = mark(5, 1);
  HT_EQ_INT(decide(&a, mark(5, 1)), HENGE_IGNORE_SAME);
  HT_EQ_INT(decide(&a, mark(4, 1)), HENGE_IGNORE_OLDER);
  HT_EQ_INT(decide(&a, mark(0, 1)), HENGE_IGNORE_OLDER);
  HT_CHECK(!HENGE_DECISION_APPLIES(HENGE_IGNORE_SAME) && !HENGE_DECISION_APPLIES(HENGE_IGNORE_OLDER));
}

static void another_incarnation_applies_whatever_its_version(void) {
  henge_mark a = mark(500, 1);
  HT_EQ_INT(decide(&a, mark(1, 2)), HENGE_APPLY_NEW_INCARNATION);
  HT_EQ_INT(decide(&a, mark(500, 2)), HENGE_APPLY_NEW_INCARNATION);
  HT_EQ_INT(decide(&a, mark(501, 2)), HENGE_APPLY_NEW_INCARNATION);
  /* ... and resets the baseline: after applying (1, inc 2), version 2 of inc 2 is newer. */
  henge_mark b = mark(1, 2);
  HT_EQ_INT(decide(&b, mark(2, 2)), HENGE_APPLY_NEWER);
  HT_EQ_INT(decide(&b, mark(500, 1)), HENGE_APPLY_NEW_INCARNATION);
}

static void names_and_arguments(void) {
  HT_CHECK(strcmp(henge_decision_name(HENGE_APPLY_NEW_INCARNATION), "new-incarnation") == 0);
  HT_CHECK(strcmp(henge_status_name(HENGE_E_LIMIT), "HENGE_E_LIMIT") == 0);
  HT_CHECK(strcmp(henge_ack_status_name(HENGE_ACK_REVERTED), "reverted") == 0);
  henge_decision d;
  HT_EQ_INT(henge_decide(NULL, NULL, &d), HENGE_E_ARG);
}

const ht_case rules_cases[] = {
    {"rules - the first snapshot and a newer version apply", applies_first_and_newer},
    {"rules - duplicates and reordered older versions are ignored", ignores_duplicates_and_reordered},
    {"rules - another incarnation applies whatever its version and resets the baseline", another_incarnation_applies_whatever_its_version},
    {"rules - names, and NULL arguments refused", names_and_arguments},
    {NULL, NULL},
};

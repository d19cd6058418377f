/*
 * changes.h: what a new snapshot changed against the applied one, for the "applied" log line: the
 * names of the keys it added, removed or changed, as sorted JSON arrays (names only: values may be
 * secret).
 */
#ifndef FW_CHANGES_H
#define FW_CHANGES_H

#include "fw_status.h"
#include "henge.h"
#include "render.h"

typedef enum fw_change {
  FW_KEYS_ADDED = 0,  /* in s, not in other (removed: the same with the two swapped) */
  FW_KEYS_CHANGED = 1 /* in both, with different values */
} fw_change;

/*
 * The names of s's keys that `which` selects against `other` (NULL: no snapshot, every key is added),
 * sorted bytewise, as a JSON array into b (reset first). s NULL: "[]". FW_OK, or FW_E_NOMEM when b could
 * not grow.
 */
fw_status fw_changed_keys(fw_buf *b, const henge_snapshot *s, const henge_snapshot *other, fw_change which);

#endif

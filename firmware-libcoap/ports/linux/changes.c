/*
 * changes.c: the key lists of the "applied" line (changes.h).
 *
 * fw_changed_keys returns an fw_status (FW_E_NOMEM: the buffer could not grow). same_value() is a pure
 * comparison and cannot fail.
 */
#include "changes.h"

#include <string.h>

static bool same_value(const henge_field *a, const henge_field *b) {
  if (a->type == HENGE_TEXT || b->type == HENGE_TEXT) return a->type == b->type && a->text_len == b->text_len && memcmp(a->v.text, b->v.text, a->text_len) == 0;
  if (a->type == HENGE_BOOL || b->type == HENGE_BOOL) return a->type == b->type && a->v.b == b->v.b;
  double x = a->type == HENGE_INT ? (double)a->v.i : a->v.f;
  double y = b->type == HENGE_INT ? (double)b->v.i : b->v.f;
  if (a->type == HENGE_INT && b->type == HENGE_INT) return a->v.i == b->v.i;
  return x == y;
}

fw_status fw_changed_keys(fw_buf *b, const henge_snapshot *s, const henge_snapshot *other, fw_change which) {
  fw_buf_reset(b);
  fw_buf_puts(b, "[");
  bool first = true;
  /* Sorted output: pick names in order (n is small; quadratic is fine). */
  const char *last = NULL;
  size_t last_len = 0;
  for (;;) {
    const henge_field *best = NULL;
    for (uint16_t i = 0; s != NULL && i < s->count; i++) {
      const henge_field *f = &s->fields[i];
      const henge_field *g = NULL;
      bool in_other = other != NULL && henge_snapshot_find(other, f->key, f->key_len, &g) == HENGE_OK;
      bool wanted = which == FW_KEYS_ADDED ? !in_other : (in_other && !same_value(f, g));
      if (!wanted) continue;
      if (last != NULL) {
        size_t m = f->key_len < last_len ? f->key_len : last_len;
        int c = memcmp(f->key, last, m);
        if (c < 0 || (c == 0 && f->key_len <= last_len)) continue;
      }
      if (best != NULL) {
        size_t m = f->key_len < best->key_len ? f->key_len : best->key_len;
        int c = memcmp(f->key, best->key, m);
        if (c > 0 || (c == 0 && f->key_len >= best->key_len)) continue;
      }
      best = f;
    }
    if (best == NULL) break;
    if (!first) fw_buf_puts(b, ",");
    first = false;
    fw_buf_puts(b, "\"");
    fw_buf_put(b, best->key, best->key_len);
    fw_buf_puts(b, "\"");
    last = best->key;
    last_len = best->key_len;
  }
  fw_buf_puts(b, "]");
  return b->failed ? FW_E_NOMEM : FW_OK;
}

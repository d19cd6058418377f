/*
 * libFuzzer target for the snapshot decoder (clang -fsanitize=fuzzer,address,undefined; `make fuzz`).
 * Besides "no crash": a decoded snapshot's keys and texts lie inside the input or the arena, and the
 * device logic on top of it never fails its own arguments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "henge.h"

static henge_snapshot snap;

static henge_status apply(void *ctx, const henge_snapshot *s, const uint8_t *b, size_t n, const char **why) {
  (void)ctx;
  (void)b;
  (void)n;
  (void)why;
  return s->count % 3 == 0 ? HENGE_OK : s->count % 3 == 1 ? HENGE_E_APPLY : HENGE_E_REJECT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  henge_status st = henge_snapshot_decode(data, size, &snap);
  if (st == HENGE_OK) {
    for (uint16_t i = 0; i < snap.count; i++) {
      const henge_field *f = &snap.fields[i];
      const char *lo = (const char *)data, *hi = (const char *)data + size;
      const char *alo = snap.arena, *ahi = snap.arena + sizeof snap.arena;
      if (!((f->key >= lo && f->key + f->key_len <= hi) || (f->key >= alo && f->key + f->key_len <= ahi))) abort();
      if (f->type == HENGE_TEXT &&
          !((f->v.text >= lo && f->v.text + f->text_len <= hi) || (f->v.text >= alo && f->v.text + f->text_len <= ahi)))
        abort();
    }
  }
  static henge_platform p = {0, apply, 0, 0, 0, 0};
  static henge_device dev;
  static int init;
  if (!init) {
    henge_device_init(&dev, &p, 1000);
    init = 1;
  }
  henge_outcome o;
  if (henge_device_on_snapshot(&dev, data, size, NULL, 0, &snap, &o) != HENGE_OK) abort();
  const henge_ack *a;
  if (henge_device_pending(&dev, &a) == HENGE_OK) {
    uint8_t buf[HENGE_ACK_MAX_BYTES];
    size_t n;
    if (henge_ack_encode(a, buf, sizeof buf, &n) != HENGE_OK) abort();
  }
  return 0;
}

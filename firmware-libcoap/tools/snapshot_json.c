/*
 * henge-snapshot-json: what henge-fw writes for a snapshot, without libcoap, for tests.
 *
 *   henge-snapshot-json [json|env|led]   one snapshot's CBOR on stdin; the --out file (or the LED file)
 *                                        on stdout; exit 1 with "HENGE_E_... message" when the core
 *                                        rejects the snapshot, 2 when the renderer refuses it
 *   henge-snapshot-json --batch          many: each input record is mode (1 byte: j, e or l), length
 *                                        (4 bytes, big-endian), CBOR; each output record is the exit
 *                                        code as above (1 byte: 0, 1, 2), length (4 bytes), the text
 *
 * firmware.test.ts runs it against the Node agent's decoder and renderer on random snapshots (the
 * differential test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "henge.h"
#include "render.h"

static uint8_t input[HENGE_MAX_SNAPSHOT_BYTES + 1];
static henge_snapshot snap;

/* Renders one snapshot; returns the exit code, the text in out. */
static int one(char mode, const uint8_t *bytes, size_t n, fw_buf *out) {
  fw_buf_reset(out);
  henge_status st = henge_snapshot_decode(bytes, n, &snap);
  char msg[512];
  if (st != HENGE_OK) {
    snprintf(msg, sizeof msg, "%s %s\n", henge_status_name(st), snap.error ? snap.error : "");
    fw_buf_puts(out, msg);
    return 1;
  }
  if (mode == 'l') {
    char led[48];
    fw_led_state(&snap, led);
    fw_buf_puts(out, led);
    fw_buf_puts(out, "\n");
    return 0;
  }
  char why[256];
  st = fw_render(mode == 'e' ? FW_FORMAT_ENV : FW_FORMAT_JSON, &snap, out, why, sizeof why);
  if (st != HENGE_OK) {
    snprintf(msg, sizeof msg, "%s %s\n", henge_status_name(st), why);
    fw_buf_reset(out);
    fw_buf_puts(out, msg);
    return 2;
  }
  return 0;
}

static int batch(void) {
  fw_buf in, out;
  fw_buf_init(&in);
  fw_buf_init(&out);
  char chunk[65536];
  size_t r;
  while ((r = fread(chunk, 1, sizeof chunk, stdin)) > 0) fw_buf_put(&in, chunk, r);
  const uint8_t *p = (const uint8_t *)in.data, *end = p + in.len;
  while (p != NULL && end - p >= 5) {
    char mode = (char)p[0];
    size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    p += 5;
    if ((size_t)(end - p) < n) return 3;
    int code = one(mode, p, n, &out);
    p += n;
    uint8_t head[5] = {(uint8_t)code, (uint8_t)(out.len >> 24), (uint8_t)(out.len >> 16), (uint8_t)(out.len >> 8), (uint8_t)out.len};
    fwrite(head, 1, 5, stdout);
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
  }
  fw_buf_free(&in);
  fw_buf_free(&out);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "json";
  if (strcmp(mode, "--batch") == 0) return batch();
  size_t n = fread(input, 1, sizeof input, stdin);
  fw_buf out;
  fw_buf_init(&out);
  int code = one(strcmp(mode, "env") == 0 ? 'e' : strcmp(mode, "led") == 0 ? 'l' : 'j', input, n, &out);
  fwrite(out.data ? out.data : "", 1, out.len, stdout);
  fw_buf_free(&out);
  return code;
}

/*
 * render.h: what henge-fw writes to --out, byte for byte what the Node agent writes for the same
 * snapshot (agent/formats.ts): JSON as JSON.stringify(values sorted by key, null, 2) + "\n", env as
 * sorted KEY='value' lines. Numbers are written as JavaScript writes them (Number#toString).
 */
#ifndef FW_RENDER_H
#define FW_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "henge.h"

typedef enum fw_format { FW_FORMAT_JSON = 0, FW_FORMAT_ENV = 1, FW_FORMAT_YAML = 2 } fw_format;

/* A growable byte buffer (the port may allocate; the core does not). */
typedef struct fw_buf {
  char *data;
  size_t len;
  size_t cap;
  bool failed; /* out of memory */
} fw_buf;

void fw_buf_init(fw_buf *b);
void fw_buf_free(fw_buf *b);
void fw_buf_reset(fw_buf *b);
void fw_buf_put(fw_buf *b, const void *data, size_t n);
void fw_buf_puts(fw_buf *b, const char *s);

/* The format a file name implies, as agent/formats.ts formatFromPath: .yaml/.yml, .env (or a file named .env), else JSON. */
fw_format fw_format_from_path(const char *path);
const char *fw_format_name(fw_format f);

/*
 * Renders the snapshot's values. Returns HENGE_OK, HENGE_E_REJECT when the format cannot hold them
 * (env: two keys with one variable name, a NUL in a value; yaml: not implemented here), with `why`
 * written (NUL-terminated, at most why_cap bytes).
 */
henge_status fw_render(fw_format format, const henge_snapshot *s, fw_buf *out, char *why, size_t why_cap);

/* A double as JavaScript's Number#toString writes it ("21.5", "1e+21", "1e-7", "0"). out: 32 bytes. */
void fw_js_number(double x, char out[32]);

/* The LED state a snapshot asks for: "on", "off" or "blink <ms>" (docs/firmware.md, "The LED"). */
void fw_led_state(const henge_snapshot *s, char out[48]);

#endif

/*
 * render.c: --out's JSON and env renderings, the LED state, the growable buffer (render.h).
 * tools/snapshot_json.c shares this API, so it keeps its shape. fw_render and the two renderers return a
 * henge_status (HENGE_E_REJECT: the format cannot hold the values; HENGE_E_APPLY: out of memory). The
 * fw_buf functions return nothing: a failed allocation is recorded in the buffer's `failed` flag, which
 * its owner checks once after a series of puts (as a stream's error flag). fw_format_from_path,
 * fw_format_name, fw_js_number, fw_led_state and the static helpers are computations that cannot fail.
 */
#include "render.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_log.h"

void fw_buf_init(fw_buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = false;
}

void fw_buf_free(fw_buf *b) {
  free(b->data);
  fw_buf_init(b);
}

void fw_buf_reset(fw_buf *b) {
  b->len = 0;
  b->failed = false;
}

void fw_buf_put(fw_buf *b, const void *data, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
      b->failed = true;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void fw_buf_puts(fw_buf *b, const char *s) { fw_buf_put(b, s, strlen(s)); }

fw_format fw_format_from_path(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  /* Node's extname(): a leading dot alone is not an extension (".env" has none). */
  if (dot == NULL || dot == base) return strcmp(base, ".env") == 0 ? FW_FORMAT_ENV : FW_FORMAT_JSON;
  char ext[8];
  size_t n = strlen(dot);
  if (n >= sizeof ext) return FW_FORMAT_JSON;
  for (size_t i = 0; i <= n; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
  if (strcmp(ext, ".yaml") == 0 || strcmp(ext, ".yml") == 0) return FW_FORMAT_YAML;
  if (strcmp(ext, ".env") == 0) return FW_FORMAT_ENV;
  return FW_FORMAT_JSON;
}

const char *fw_format_name(fw_format f) {
  switch (f) {
    case FW_FORMAT_JSON: return "json";
    case FW_FORMAT_ENV: return "env";
    case FW_FORMAT_YAML: return "yaml";
  }
  return "?";
}

/*
 * ECMAScript Number::toString(10): the shortest digits that read back as x (tried from 1 to 17
 * significant digits with correct rounding), then placed by the exponent: plain up to 21 digits
 * before the point, "0.000ddd" down to 1e-7, else d.ddde+n.
 */
void fw_js_number(double x, char out[32]) {
  if (x == 0) {
    strcpy(out, "0"); /* also -0 */
    return;
  }
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
    if (strtod(tmp, NULL) == x) break;
  }
  /* tmp: [-]d[.ddd]e(+|-)xx */
  const char *s = tmp;
  bool neg = *s == '-';
  if (neg) s++;
  char digits[20];
  int k = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9') digits[k++] = *s;
  while (k > 1 && digits[k - 1] == '0') k--;
  int e = atoi(s + 1);
  int n = e + 1; /* the decimal point sits after n digits */
  char *o = out;
  if (neg) *o++ = '-';
  if (k <= n && n <= 21) {
    memcpy(o, digits, (size_t)k);
    o += k;
    for (int i = 0; i < n - k; i++) *o++ = '0';
  } else if (0 < n && n <= 21) {
    memcpy(o, digits, (size_t)n);
    o += n;
    *o++ = '.';
    memcpy(o, digits + n, (size_t)(k - n));
    o += k - n;
  } else if (-6 < n && n <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -n; i++) *o++ = '0';
    memcpy(o, digits, (size_t)k);
    o += k;
  } else {
    *o++ = digits[0];
    if (k > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, (size_t)(k - 1));
      o += k - 1;
    }
    o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
  }
  *o = '\0';
}

static void put_scalar(fw_buf *b, const henge_field *f) {
  char num[32];
  switch (f->type) {
    case HENGE_INT:
      snprintf(num, sizeof num, "%lld", (long long)f->v.i);
      fw_buf_puts(b, num);
      break;
    case HENGE_FLOAT:
      fw_js_number(f->v.f, num);
      fw_buf_puts(b, num);
      break;
    case HENGE_BOOL:
      fw_buf_puts(b, f->v.b ? "true" : "false");
      break;
    default:
      break;
  }
}

/* Indexes of the fields in key order (keys are ASCII by the protocol: bytes order as JS strings do). */
static void sorted(const henge_snapshot *s, uint16_t *idx) {
  for (uint16_t i = 0; i < s->count; i++) idx[i] = i;
  for (uint16_t i = 1; i < s->count; i++) {
    uint16_t v = idx[i];
    const henge_field *fv = &s->fields[v];
    int j = i - 1;
    for (; j >= 0; j--) {
      const henge_field *fj = &s->fields[idx[j]];
      size_t m = fj->key_len < fv->key_len ? fj->key_len : fv->key_len;
      int c = memcmp(fj->key, fv->key, m);
      if (c < 0 || (c == 0 && fj->key_len <= fv->key_len)) break;
      idx[j + 1] = idx[j];
    }
    idx[j + 1] = v;
  }
}

static void put_json_string(fw_buf *b, const char *s, size_t n) {
  char tmp[1024];
  fw_buf_put(b, "\"", 1);
  for (size_t at = 0; at < n;) {
    size_t piece = n - at < 160 ? n - at : 160;
    size_t w = fw_json_escape(tmp, sizeof tmp, s + at, piece);
    fw_buf_put(b, tmp, w);
    at += piece;
  }
  fw_buf_put(b, "\"", 1);
}

static henge_status render_json(const henge_snapshot *s, fw_buf *b) {
  static uint16_t idx[HENGE_MAX_FIELDS];
  if (s->count == 0) {
    fw_buf_puts(b, "{}\n");
    return HENGE_OK;
  }
  sorted(s, idx);
  fw_buf_puts(b, "{\n");
  for (uint16_t i = 0; i < s->count; i++) {
    const henge_field *f = &s->fields[idx[i]];
    fw_buf_puts(b, "  ");
    put_json_string(b, f->key, f->key_len);
    fw_buf_puts(b, ": ");
    if (f->type == HENGE_TEXT) put_json_string(b, f->v.text, f->text_len);
    else put_scalar(b, f);
    fw_buf_puts(b, i + 1 < s->count ? ",\n" : "\n");
  }
  fw_buf_puts(b, "}\n");
  return HENGE_OK;
}

/* A key as an environment variable name: upper case, '-' as '_'. */
static void env_name(const henge_field *f, char out[HENGE_MAX_KEY_LEN + 1]) {
  for (uint8_t i = 0; i < f->key_len; i++) out[i] = f->key[i] == '-' ? '_' : (char)toupper((unsigned char)f->key[i]);
  out[f->key_len] = '\0';
}

static henge_status render_env(const henge_snapshot *s, fw_buf *b, char *why, size_t why_cap) {
  static char names[HENGE_MAX_FIELDS][HENGE_MAX_KEY_LEN + 1];
  static uint16_t idx[HENGE_MAX_FIELDS];
  /* In the snapshot's order, as agent/formats.ts walks its values: the first clash is reported. */
  for (uint16_t i = 0; i < s->count; i++) {
    const henge_field *f = &s->fields[i];
    env_name(f, names[i]);
    for (uint16_t j = 0; j < i; j++) {
      if (strcmp(names[i], names[j]) == 0) {
        snprintf(why, why_cap, "keys %.*s and %.*s are both %s as environment variables", (int)s->fields[j].key_len, s->fields[j].key,
                 (int)f->key_len, f->key, names[i]);
        return HENGE_E_REJECT;
      }
    }
    if (f->type == HENGE_TEXT && memchr(f->v.text, '\0', f->text_len) != NULL) {
      snprintf(why, why_cap, "value of %.*s holds a NUL character, which no environment variable can", (int)f->key_len, f->key);
      return HENGE_E_REJECT;
    }
  }
  /* Sorted by name (names are ASCII: byte order). */
  for (uint16_t i = 0; i < s->count; i++) idx[i] = i;
  for (uint16_t i = 1; i < s->count; i++) {
    uint16_t v = idx[i];
    int j = i - 1;
    for (; j >= 0 && strcmp(names[idx[j]], names[v]) > 0; j--) idx[j + 1] = idx[j];
    idx[j + 1] = v;
  }
  for (uint16_t i = 0; i < s->count; i++) {
    const henge_field *f = &s->fields[idx[i]];
    fw_buf_puts(b, names[idx[i]]);
    fw_buf_puts(b, "='");
    if (f->type == HENGE_TEXT) {
      for (uint16_t c = 0; c < f->text_len; c++) {
        if (f->v.text[c] == '\'') fw_buf_puts(b, "'\\''");
        else fw_buf_put(b, &f->v.text[c], 1);
      }
    } else {
      put_scalar(b, f);
    }
    fw_buf_puts(b, "'\n");
  }
  return HENGE_OK;
}

henge_status fw_render(fw_format format, const henge_snapshot *s, fw_buf *out, char *why, size_t why_cap) {
  fw_buf_reset(out);
  why[0] = '\0';
  henge_status st;
  switch (format) {
    case FW_FORMAT_JSON:
      st = render_json(s, out);
      break;
    case FW_FORMAT_ENV:
      st = render_env(s, out, why, why_cap);
      break;
    default:
      snprintf(why, why_cap, "henge-fw does not write %s yet", fw_format_name(format));
      return HENGE_E_REJECT;
  }
  if (st == HENGE_OK && out->failed) {
    snprintf(why, why_cap, "out of memory rendering the config");
    return HENGE_E_APPLY;
  }
  return st;
}

void fw_led_state(const henge_snapshot *s, char out[48]) {
  const henge_field *led = NULL, *blink = NULL;
  bool has_led = henge_snapshot_find(s, "led", 3, &led) == HENGE_OK && led->type == HENGE_BOOL;
  bool has_blink = henge_snapshot_find(s, "blink_ms", 8, &blink) == HENGE_OK;
  long long ms = 0;
  if (has_blink) {
    if (blink->type == HENGE_INT) ms = (long long)blink->v.i;
    else if (blink->type == HENGE_FLOAT && blink->v.f >= 1 && blink->v.f < 1e12) ms = (long long)(blink->v.f + 0.5);
  }
  if (has_led && !led->v.b) snprintf(out, 48, "off");
  else if (ms > 0) snprintf(out, 48, "blink %lld", ms);
  else if (has_led && led->v.b) snprintf(out, 48, "on");
  else snprintf(out, 48, "off");
}

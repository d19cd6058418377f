/*
 * state.c: state.json in the Node agent's format 1 (state.h).
 *
 * fw_state_load and fw_state_save return an fw_status. The small JSON reader's steps (take, read_string,
 * read_number, literal, skip_value) and base64_decode return a bool, "matched" or not, which
 * fw_state_load turns into FW_E_INVALID; ws, hexval, b64val, base64_encode, hex8 and the init/free pair
 * cannot fail (base64_encode's buffer records an allocation failure in its `failed` flag, checked once
 * before the write).
 */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "fw_log.h"

void fw_state_init(fw_state *s) {
  memset(s, 0, sizeof *s);
  fw_buf_init(&s->snapshot);
}

void fw_state_free(fw_state *s) { fw_buf_free(&s->snapshot); }

/* --- a small JSON reader: enough for state.json (objects, strings, numbers, true/false/null) --- */

typedef struct jr {
  const char *p, *end;
  bool bad;
} jr;

static void ws(jr *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static bool take(jr *j, char c) {
  ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return true;
  }
  return false;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A JSON string into out (NUL-terminated); escapes decoded (\u to UTF-8). */
static bool read_string(jr *j, fw_buf *out) {
  fw_buf_reset(out);
  if (!take(j, '"')) return false;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if ((unsigned char)c < 0x20) return false;
    if (c != '\\') {
      fw_buf_put(out, &c, 1);
      continue;
    }
    if (j->p >= j->end) return false;
    char e = *j->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e != '\0' && simple != NULL && e != 'u') {
      static const char map[] = "\"\\/\b\f\n\r\t";
      char v = map[simple - "\"\\/bfnrt"];
      fw_buf_put(out, &v, 1);
      continue;
    }
    if (e != 'u' || j->end - j->p < 4) return false;
    unsigned cp = 0;
    for (int i = 0; i < 4; i++) {
      int h = hexval(j->p[i]);
      if (h < 0) return false;
      cp = cp << 4 | (unsigned)h;
    }
    j->p += 4;
    if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
      unsigned lo = 0;
      for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[2 + i]);
        if (h < 0) return false;
        lo = lo << 4 | (unsigned)h;
      }
      if (lo >= 0xdc00 && lo < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        j->p += 6;
      }
    }
    char u[4];
    size_t n;
    if (cp < 0x80) {
      u[0] = (char)cp;
      n = 1;
    } else if (cp < 0x800) {
      u[0] = (char)(0xc0 | cp >> 6);
      u[1] = (char)(0x80 | (cp & 0x3f));
      n = 2;
    } else if (cp < 0x10000) {
      u[0] = (char)(0xe0 | cp >> 12);
      u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
      u[2] = (char)(0x80 | (cp & 0x3f));
      n = 3;
    } else {
      u[0] = (char)(0xf0 | cp >> 18);
      u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
      u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
      u[3] = (char)(0x80 | (cp & 0x3f));
      n = 4;
    }
    fw_buf_put(out, u, n);
  }
  if (j->p >= j->end) return false;
  j->p++;
  if (out->data == NULL) fw_buf_put(out, "", 0);
  return !out->failed;
}

static bool read_number(jr *j, double *v) {
  ws(j);
  char tmp[64];
  size_t n = 0;
  while (j->p < j->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", *j->p) != NULL && *j->p != '\0') tmp[n++] = *j->p++;
  tmp[n] = '\0';
  if (n == 0) return false;
  char *endp;
  *v = strtod(tmp, &endp);
  return *endp == '\0';
}

static bool literal(jr *j, const char *word) {
  ws(j);
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) {
    j->p += n;
    return true;
  }
  return false;
}

/* Skips any value, at most `depth` levels of nesting. */
static bool skip_value(jr *j, int depth) {
  ws(j);
  if (j->p >= j->end || depth <= 0) return false;
  char c = *j->p;
  fw_buf tmp;
  if (c == '"') {
    fw_buf_init(&tmp);
    bool ok = read_string(j, &tmp);
    fw_buf_free(&tmp);
    return ok;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    j->p++;
    if (take(j, close)) return true;
    do {
      if (c == '{') {
        fw_buf_init(&tmp);
        bool ok = read_string(j, &tmp);
        fw_buf_free(&tmp);
        if (!ok || !take(j, ':')) return false;
      }
      if (!skip_value(j, depth - 1)) return false;
    } while (take(j, ','));
    return take(j, close);
  }
  if (literal(j, "true") || literal(j, "false") || literal(j, "null")) return true;
  double d;
  return read_number(j, &d);
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

static bool base64_decode(const char *s, size_t n, fw_buf *out) {
  fw_buf_reset(out);
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=') break;
    int v = b64val(s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      char b = (char)((acc >> bits) & 0xff);
      fw_buf_put(out, &b, 1);
    }
  }
  if (out->data == NULL) fw_buf_put(out, "", 0);
  return !out->failed;
}

static void base64_encode(const uint8_t *d, size_t n, fw_buf *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
    char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
    fw_buf_put(out, q, 4);
  }
}

static void hex8(const uint8_t *b, char out[17]) {
  for (int i = 0; i < 8; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

fw_status fw_state_load(const char *file, const char *device, fw_state *s, henge_snapshot *work, char *err, size_t cap) {
  fw_buf text, str, b64;
  fw_buf_init(&text);
  fw_buf_init(&str);
  fw_buf_init(&b64);
  s->has_applied = false;
  s->has_hub_id = false;
  fw_status result = FW_E_INVALID;
  if (fw_read_file(file, &text) != FW_OK) {
    if (errno == ENOENT) result = FW_OK;
    else {
      snprintf(err, cap, "cannot read %s: %s", file, strerror(errno));
      result = FW_E_IO;
    }
    goto done;
  }
  jr j = {text.data, text.data + text.len, false};
  double format = 0;
  bool device_ok = false, have_applied_obj = false;
  double version = -1;
  char hash_hex[32] = "", inc_hex[32] = "";
  if (!take(&j, '{')) goto damaged;
  if (!take(&j, '}')) {
    do {
      if (!read_string(&j, &str) || !take(&j, ':')) goto damaged;
      if (strcmp(str.data, "format") == 0) {
        if (!read_number(&j, &format)) goto damaged;
      } else if (strcmp(str.data, "device") == 0) {
        if (!read_string(&j, &str)) goto damaged;
        if (strcmp(str.data, device) != 0) {
          snprintf(err, cap, "%s belongs to device %.80s, not %s", file, str.data, device);
          goto done;
        }
        device_ok = true;
      } else if (strcmp(str.data, "hubId") == 0) {
        if (literal(&j, "null")) continue;
        if (!read_string(&j, &str)) goto damaged;
        snprintf(s->hub_id, sizeof s->hub_id, "%s", str.data);
        s->has_hub_id = true;
      } else if (strcmp(str.data, "applied") == 0) {
        if (literal(&j, "null")) continue;
        if (!take(&j, '{')) goto damaged;
        have_applied_obj = true;
        if (take(&j, '}')) continue;
        do {
          if (!read_string(&j, &str) || !take(&j, ':')) goto damaged;
          double d;
          if (strcmp(str.data, "version") == 0) {
            if (!read_number(&j, &version)) goto damaged;
          } else if (strcmp(str.data, "hash") == 0 || strcmp(str.data, "incarnation") == 0) {
            char *dst = str.data[0] == 'h' ? hash_hex : inc_hex;
            if (!read_string(&j, &str)) goto damaged;
            snprintf(dst, 32, "%s", str.data);
          } else if (strcmp(str.data, "acked") == 0) {
            if (literal(&j, "true")) s->acked = true;
            else if (literal(&j, "false")) s->acked = false;
            else goto damaged;
          } else if (strcmp(str.data, "appliedAt") == 0) {
            if (!read_number(&j, &d)) goto damaged;
            s->applied_at = (long long)d;
          } else if (strcmp(str.data, "snapshot") == 0) {
            if (!read_string(&j, &str) || !base64_decode(str.data, str.len, &s->snapshot)) goto damaged;
          } else if (!skip_value(&j, 4)) {
            goto damaged;
          }
        } while (take(&j, ','));
        if (!take(&j, '}')) goto damaged;
      } else if (!skip_value(&j, 4)) {
        goto damaged;
      }
    } while (take(&j, ','));
    if (!take(&j, '}')) goto damaged;
  }
  if (format != 1) {
    snprintf(err, cap, "%s: unknown format", file);
    goto done;
  }
  if (!device_ok) {
    snprintf(err, cap, "%s belongs to no device", file);
    goto done;
  }
  if (have_applied_obj) {
    if (s->snapshot.data == NULL) {
      snprintf(err, cap, "%s: applied snapshot missing", file);
      goto done;
    }
    henge_status st = henge_snapshot_decode((const uint8_t *)s->snapshot.data, s->snapshot.len, work);
    if (st != HENGE_OK) {
      snprintf(err, cap, "%s: the applied snapshot does not decode: %s", file, work->error ? work->error : henge_status_name(st));
      goto done;
    }
    char h[17], i[17];
    hex8(work->hash, h);
    hex8(work->incarnation, i);
    if (version != (double)work->version || strcmp(h, hash_hex) != 0 || strcmp(i, inc_hex) != 0) {
      snprintf(err, cap, "%s: the recorded version, hash or incarnation differ from the snapshot's", file);
      goto done;
    }
    st = henge_mark_of(work, &s->mark);
    if (st != HENGE_OK) {
      snprintf(err, cap, "%s: the applied snapshot has no mark: %s", file, henge_status_name(st));
      goto done;
    }
    s->has_applied = true;
  }
  result = FW_OK;
  goto done;
damaged:
  snprintf(err, cap, "%s is damaged: not the JSON state.json holds", file);
done:
  if (result != FW_OK) {
    s->has_applied = false;
    s->has_hub_id = false;
  }
  fw_buf_free(&text);
  fw_buf_free(&str);
  fw_buf_free(&b64);
  return result;
}

fw_status fw_state_save(const char *file, const char *device, const fw_state *s, char *err, size_t cap) {
  fw_buf out;
  fw_buf_init(&out);
  char line[512];
  fw_buf_puts(&out, "{\n  \"format\": 1,\n  \"device\": \"");
  fw_buf_puts(&out, device);
  fw_buf_puts(&out, "\",\n  \"hubId\": ");
  if (s->has_hub_id) {
    char esc[400];
    fw_json_escape(esc, sizeof esc, s->hub_id, strlen(s->hub_id));
    snprintf(line, sizeof line, "\"%s\"", esc);
    fw_buf_puts(&out, line);
  } else {
    fw_buf_puts(&out, "null");
  }
  fw_buf_puts(&out, ",\n  \"applied\": ");
  if (s->has_applied) {
    char h[17], i[17];
    hex8(s->mark.hash, h);
    hex8(s->mark.incarnation, i);
    snprintf(line, sizeof line,
             "{\n    \"version\": %llu,\n    \"hash\": \"%s\",\n    \"incarnation\": \"%s\",\n    \"acked\": %s,\n    \"appliedAt\": %lld,\n"
             "    \"snapshot\": \"",
             (unsigned long long)s->mark.version, h, i, s->acked ? "true" : "false", s->applied_at);
    fw_buf_puts(&out, line);
    base64_encode((const uint8_t *)s->snapshot.data, s->snapshot.len, &out);
    fw_buf_puts(&out, "\"\n  }");
  } else {
    fw_buf_puts(&out, "null");
  }
  fw_buf_puts(&out, "\n}\n");
  fw_status r = FW_E_NOMEM;
  if (out.failed) snprintf(err, cap, "out of memory writing %s", file);
  else r = fw_write_atomic(file, out.data, out.len, 0600, false, err, cap);
  fw_buf_free(&out);
  return r;
}

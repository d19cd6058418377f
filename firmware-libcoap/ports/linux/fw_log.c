/*
 * fw_log.c: JSON log lines on stderr (fw_log.h); tools/snapshot_json.c shares this API. Nothing here
 * returns a status: a line longer than its buffer is cut (and marked), and a log that cannot be written
 * has nowhere to report that.
 */
#include "fw_log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int threshold = FW_INFO;
static char device_id[80];
static char secret_text[520];

void fw_log_setup(int level, const char *device, const char *secret) {
  threshold = level;
  snprintf(device_id, sizeof device_id, "%s", device ? device : "");
  snprintf(secret_text, sizeof secret_text, "%s", secret ? secret : "");
}

bool fw_log_enabled(int level) { return level >= threshold && threshold < FW_SILENT; }

int fw_log_level_from_name(const char *name) {
  static const struct {
    const char *name;
    int level;
  } names[] = {{"trace", FW_TRACE}, {"debug", FW_DEBUG}, {"info", FW_INFO}, {"warn", FW_WARN},
               {"error", FW_ERROR}, {"fatal", FW_FATAL}, {"silent", FW_SILENT}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i].name, name) == 0) return names[i].level;
  return -1;
}

size_t fw_json_escape(char *dst, size_t cap, const char *src, size_t n) {
  size_t o = 0;
  if (cap == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)src[i];
    char tmp[8];
    const char *put = tmp;
    size_t k;
    switch (c) {
      case '"': put = "\\\""; k = 2; break;
      case '\\': put = "\\\\"; k = 2; break;
      case '\b': put = "\\b"; k = 2; break;
      case '\f': put = "\\f"; k = 2; break;
      case '\n': put = "\\n"; k = 2; break;
      case '\r': put = "\\r"; k = 2; break;
      case '\t': put = "\\t"; k = 2; break;
      default:
        if (c < 0x20) {
          snprintf(tmp, sizeof tmp, "\\u%04x", c);
          k = 6;
        } else {
          tmp[0] = (char)c;
          k = 1;
        }
    }
    if (o + k >= cap) break;
    memcpy(dst + o, put, k);
    o += k;
  }
  dst[o] = '\0';
  return o;
}

static void put(fw_line *l, const char *s, size_t n) {
  if (l->len + n + 1 >= sizeof l->buf) {
    l->truncated = true;
    return;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
  l->buf[l->len] = '\0';
}

static void puts_(fw_line *l, const char *s) { put(l, s, strlen(s)); }

static void put_escaped(fw_line *l, const char *s, size_t n) {
  char tmp[1024];
  /* Long values go in pieces; escaping never splits a character's bytes into invalid JSON. */
  size_t at = 0;
  while (at < n) {
    size_t piece = n - at < 160 ? n - at : 160;
    size_t w = fw_json_escape(tmp, sizeof tmp, s + at, piece);
    put(l, tmp, w);
    at += piece;
  }
}

static void key(fw_line *l, const char *k) {
  put(l, ",\"", 2);
  puts_(l, k);
  put(l, "\":", 2);
}

void fw_line_start(fw_line *l) {
  l->len = 0;
  l->truncated = false;
  l->buf[0] = '\0';
}

void fw_line_strn(fw_line *l, const char *k, const char *v, size_t n) {
  key(l, k);
  put(l, "\"", 1);
  put_escaped(l, v, n);
  put(l, "\"", 1);
}

void fw_line_str(fw_line *l, const char *k, const char *v) {
  if (v == NULL) {
    fw_line_null(l, k);
    return;
  }
  fw_line_strn(l, k, v, strlen(v));
}

void fw_line_int(fw_line *l, const char *k, long long v) {
  char tmp[32];
  key(l, k);
  snprintf(tmp, sizeof tmp, "%lld", v);
  puts_(l, tmp);
}

void fw_line_uint(fw_line *l, const char *k, uint64_t v) {
  char tmp[32];
  key(l, k);
  snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  puts_(l, tmp);
}

void fw_line_bool(fw_line *l, const char *k, bool v) {
  key(l, k);
  puts_(l, v ? "true" : "false");
}

void fw_line_null(fw_line *l, const char *k) {
  key(l, k);
  puts_(l, "null");
}

void fw_line_raw(fw_line *l, const char *k, const char *json) {
  key(l, k);
  puts_(l, json);
}

/* Replaces every occurrence of the secret in s with "[redacted]" (in place, s has room: it only shrinks). */
static void scrub(char *s) {
  size_t n = strlen(secret_text);
  if (n < 8) return;
  char *hit;
  while ((hit = strstr(s, secret_text)) != NULL) {
    static const char mark[] = "[redacted]";
    size_t m = sizeof mark - 1;
    if (m <= n) {
      memcpy(hit, mark, m);
      memmove(hit + m, hit + n, strlen(hit + n) + 1);
    } else {
      memset(hit, '*', n);
    }
  }
}

void fw_line_emit(fw_line *l, int level, const char *msg) {
  if (!fw_log_enabled(level)) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  long long ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  char esc_msg[1024];
  fw_json_escape(esc_msg, sizeof esc_msg, msg, strlen(msg));
  char out[sizeof l->buf + 1400];
  int n = snprintf(out, sizeof out, "{\"level\":%d,\"time\":%lld,\"component\":\"henge-fw\",\"device\":\"%s\"%s%s,\"msg\":\"%s\"}\n", level, ms,
                   device_id, l->buf, l->truncated ? ",\"truncated\":true" : "", esc_msg);
  if (n < 0) return;
  scrub(out);
  /* One write per line: lines from one process never interleave. */
  ssize_t w = write(STDERR_FILENO, out, strlen(out));
  (void)w;
}

void fw_log(int level, const char *msg) {
  fw_line l;
  fw_line_start(&l);
  fw_line_emit(&l, level, msg);
}

/*
 * fw_log.h: henge-fw's log: one JSON object per line on stderr, pino's shape (level numbers 10-60,
 * time in ms, msg last), so the Node agent's log readers read it too. Never the device key: a line
 * holding the key's text has it replaced before it is written.
 */
#ifndef FW_LOG_H
#define FW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { FW_TRACE = 10, FW_DEBUG = 20, FW_INFO = 30, FW_WARN = 40, FW_ERROR = 50, FW_FATAL = 60, FW_SILENT = 100 };

/* Sets the threshold, the device id every line carries, and a secret no line may contain. */
void fw_log_setup(int level, const char *device, const char *secret);
bool fw_log_enabled(int level);
/* pino's name of a level ("info"), or -1 for an unknown name. */
int fw_log_level_from_name(const char *name);

/* A line under construction: fields are appended as JSON, then fw_log_emit writes it. */
typedef struct fw_line {
  char buf[4096];
  size_t len;
  bool truncated;
} fw_line;

void fw_line_start(fw_line *l);
void fw_line_str(fw_line *l, const char *key, const char *value);
void fw_line_strn(fw_line *l, const char *key, const char *value, size_t n);
void fw_line_int(fw_line *l, const char *key, long long value);
void fw_line_uint(fw_line *l, const char *key, uint64_t value);
void fw_line_bool(fw_line *l, const char *key, bool value);
void fw_line_null(fw_line *l, const char *key);
/* A raw JSON value (an array or object the caller built). */
void fw_line_raw(fw_line *l, const char *key, const char *json);
void fw_line_emit(fw_line *l, int level, const char *msg);

/* A message with no fields. */
void fw_log(int level, const char *msg);

/* JSON string escaping (JSON.stringify's), into dst (cap bytes, always NUL-terminated); returns the length. */
size_t fw_json_escape(char *dst, size_t cap, const char *src, size_t n);

#endif

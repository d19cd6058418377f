/*
 * henge-fw: the Linux port of the henge firmware. libcoap does CoAP (observe, Block2, retransmission,
 * DTLS-PSK); the portable core (core/henge.h) decides what to apply and what to ack; this file is the
 * glue: command line, state folder, the --out file and the LED file, the event loop.
 *
 * The loop (docs/protocol.md, "Observe lifecycle"): register (GET /d/{id}/c, Observe 0, ETag of the
 * applied snapshot), handle the snapshot of every response and notification, POST the ack, re-register
 * at 70-85 % of Max-Age; when the hub is gone (the registration gets no answer, an RST, a DTLS alert,
 * a refusal) keep the applied config and reconnect with exponential backoff and full jitter.
 */
#include <coap3/coap.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "fw_log.h"
#include "henge.h"
#include "render.h"
#include "state.h"

#define FW_NAME "henge-fw/0.1.0"
#define DEFAULT_COAP_PORT 5683
#define DEFAULT_COAPS_PORT 5684
/* A registration with no answer for this long ends the session (a new one, and a new DTLS handshake, follow). */
#define REGISTER_TIMEOUT_MS 15000
/* Deregistration on shutdown is best effort: this long at most. */
#define DEREGISTER_WAIT_MS 2000
/* The longest single wait in coap_io_process, so that signals are seen promptly. */
#define LOOP_SLICE_MS 250

enum { EXIT_USAGE = 2, EXIT_CONFLICT = 7 };

typedef struct opts {
  const char *id;
  const char *hub;
  const char *out;
  const char *state;
  const char *key_file;
  const char *led;
  const char *format;
  double backoff_max_s;
  int log_level;
} opts;

typedef enum link_state { LINK_DOWN, LINK_UP } link_state;

static struct fw {
  opts o;
  fw_format format;
  char out_path[PATH_MAX];
  char state_dir[PATH_MAX];
  char state_file[PATH_MAX + 16];
  char led_path[PATH_MAX];
  char key[520];
  bool has_key;
  char host[256];
  uint16_t port;

  henge_platform platform;
  henge_device dev;
  henge_snapshot snaps[2];
  henge_snapshot *applied; /* the applied snapshot (valid when state.has_applied); its texts point into state.snapshot */
  henge_snapshot *work;    /* decoding target; its texts point into inbox */
  fw_state state;
  fw_buf inbox;
  fw_buf rendered;
  char apply_why[512];
  char led_now[48];

  coap_context_t *ctx;
  coap_session_t *session;
  bool tearing_down;
  bool dtls_open; /* this session's handshake completed */
  link_state link;
  int connections; /* successful registrations after a (re)connect */
  bool reg_in_flight;
  uint64_t reg_sent_ms;
  int reg_without_observe;
  uint64_t next_keepalive_ms;
  uint64_t next_attempt_ms;
  uint8_t obs_token[8];
  size_t obs_token_len;
  bool ack_due;
  bool ack_in_flight;
  henge_ack ack_sent;
  char ack_sent_msg[HENGE_ACK_MESSAGE_MAX];
  uint8_t ack_token[8];
  size_t ack_token_len;
  bool telemetry_sent;
  uint8_t tel_token[8];
  size_t tel_token_len;
  uint8_t dereg_token[8];
  size_t dereg_token_len;
  bool dereg_answered;
  char dereg_code[8];
  bool session_failed;
  bool fail_refused;
  char fail_reason[300];
} fw;

static volatile sig_atomic_t stop_requested, refresh_requested;

/* ---------------------------------------------------------------------------------------------- */
/* time, randomness                                                                                */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libcoap's version number ("4.3.1"; coap_package_version() says "libcoap 4.3.1"). */
static const char *libcoap_version(void) {
  const char *v = coap_package_version();
  const char *sp = strrchr(v, ' ');
  return sp ? sp + 1 : v;
}

static uint32_t random32(void) {
  uint32_t r;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand() ^ (uint32_t)now_ms();
  return r;
}

/* ---------------------------------------------------------------------------------------------- */
/* the platform the core calls                                                                     */

static henge_status p_now(void *ctx, uint64_t *ms) {
  (void)ctx;
  *ms = now_ms();
  return HENGE_OK;
}

static henge_status p_random(void *ctx, uint32_t *r) {
  (void)ctx;
  *r = random32();
  return HENGE_OK;
}

static void p_log(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *f) {
  (void)ctx;
  static const int levels[] = {FW_DEBUG, FW_INFO, FW_WARN, FW_ERROR};
  fw_line l;
  fw_line_start(&l);
  if (f->has_version) fw_line_uint(&l, "version", f->version);
  if (f->status != HENGE_OK || f->reason != NULL) {
    char err[600];
    char esc[512];
    fw_json_escape(esc, sizeof esc, f->reason ? f->reason : "", f->reason ? strlen(f->reason) : 0);
    snprintf(err, sizeof err, "{\"code\":\"%s\",\"message\":\"%s\"}", henge_status_name(f->status), esc);
    if (f->status == HENGE_OK) fw_line_str(&l, "reason", f->reason);
    else fw_line_raw(&l, "err", err);
  }
  fw_line_emit(&l, levels[level], msg);
}

/* Apply: render the values, write --out atomically (temp file, fsync, read back, rename, fsync folder). */
static henge_status p_apply(void *ctx, const henge_snapshot *s, const uint8_t *bytes, size_t len, const char **why) {
  (void)ctx;
  (void)bytes;
  (void)len;
  henge_status st = fw_render(fw.format, s, &fw.rendered, fw.apply_why, sizeof fw.apply_why);
  if (st != HENGE_OK) {
    *why = fw.apply_why;
    return st;
  }
  if (fw_write_atomic(fw.out_path, fw.rendered.data, fw.rendered.len, -1, false, fw.apply_why, sizeof fw.apply_why) != 0) {
    *why = fw.apply_why;
    return HENGE_E_APPLY;
  }
  return HENGE_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the LED                                                                                         */

static void update_led(const henge_snapshot *s) {
  if (fw.o.led == NULL) return;
  char want[48];
  if (s != NULL) fw_led_state(s, want);
  else snprintf(want, sizeof want, "off");
  if (strcmp(want, fw.led_now) == 0) return;
  char line[64], err[512];
  int n = snprintf(line, sizeof line, "%s\n", want);
  if (fw_write_atomic(fw.led_path, line, (size_t)n, -1, false, err, sizeof err) != 0) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "err", err);
    fw_line_emit(&l, FW_ERROR, "could not write the LED file");
    return;
  }
  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "led", want);
  if (fw.led_now[0]) fw_line_str(&l, "was", fw.led_now);
  fw_line_emit(&l, FW_INFO, "led");
  snprintf(fw.led_now, sizeof fw.led_now, "%s", want);
}

/* ---------------------------------------------------------------------------------------------- */
/* CoAP requests                                                                                   */

static bool token_is(coap_bin_const_t t, const uint8_t *tok, size_t len) {
  return len > 0 && t.length == len && memcmp(t.s, tok, len) == 0;
}

static void fail_session(bool refused, const char *reason) {
  if (fw.session_failed) return;
  fw.session_failed = true;
  fw.fail_refused = refused;
  snprintf(fw.fail_reason, sizeof fw.fail_reason, "%s", reason);
}

/* A CON request to /d/{id}/{resource} with the given token. */
static coap_pdu_t *new_request(coap_pdu_code_t code, const uint8_t *token, size_t token_len) {
  coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(fw.session), coap_session_max_pdu_size(fw.session));
  if (pdu == NULL) return NULL;
  if (!coap_add_token(pdu, token_len, token)) {
    coap_delete_pdu(pdu);
    return NULL;
  }
  return pdu;
}

static void add_path(coap_pdu_t *pdu, const char *resource) {
  coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"d");
  coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(fw.o.id), (const uint8_t *)fw.o.id);
  coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(resource), (const uint8_t *)resource);
}

static bool send_registration(void) {
  if (fw.session == NULL) return false;
  coap_pdu_t *pdu = new_request(COAP_REQUEST_CODE_GET, fw.obs_token, fw.obs_token_len);
  if (pdu == NULL) return false;
  uint8_t buf[4];
  if (fw.state.has_applied) coap_add_option(pdu, COAP_OPTION_ETAG, HENGE_HASH_BYTES, fw.state.mark.hash);
  coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof buf, COAP_OBSERVE_ESTABLISH), buf);
  add_path(pdu, "c");
  if (coap_send(fw.session, pdu) == COAP_INVALID_MID) {
    fail_session(false, "could not send the registration");
    return false;
  }
  fw.reg_in_flight = true;
  fw.reg_sent_ms = now_ms();
  return true;
}

static void send_pending_ack(void) {
  const henge_ack *a;
  if (fw.session == NULL || fw.ack_in_flight || henge_device_pending(&fw.dev, &a) != HENGE_OK) return;
  uint8_t payload[HENGE_ACK_MAX_BYTES];
  size_t n = 0;
  if (henge_ack_encode(a, payload, sizeof payload, &n) != HENGE_OK) return;
  fw.ack_token_len = sizeof fw.ack_token;
  coap_session_new_token(fw.session, &fw.ack_token_len, fw.ack_token);
  coap_pdu_t *pdu = new_request(COAP_REQUEST_CODE_POST, fw.ack_token, fw.ack_token_len);
  if (pdu == NULL) return;
  uint8_t buf[4];
  add_path(pdu, "a");
  coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, COAP_MEDIATYPE_APPLICATION_CBOR), buf);
  coap_add_data(pdu, n, payload);
  if (coap_send(fw.session, pdu) == COAP_INVALID_MID) return;
  fw.ack_sent = *a;
  if (a->message != NULL) {
    memcpy(fw.ack_sent_msg, a->message, a->message_len);
    fw.ack_sent.message = fw.ack_sent_msg;
  }
  fw.ack_in_flight = true;
}

static void send_telemetry(void) {
  if (fw.telemetry_sent || fw.session == NULL) return;
  char name[128];
  int len = snprintf(name, sizeof name, "%s libcoap/%s", FW_NAME, libcoap_version());
  uint8_t payload[160];
  size_t n = 0;
  if (henge_telemetry_encode_agent(name, (size_t)len, payload, sizeof payload, &n) != HENGE_OK) return;
  fw.tel_token_len = sizeof fw.tel_token;
  coap_session_new_token(fw.session, &fw.tel_token_len, fw.tel_token);
  coap_pdu_t *pdu = new_request(COAP_REQUEST_CODE_POST, fw.tel_token, fw.tel_token_len);
  if (pdu == NULL) return;
  uint8_t buf[4];
  add_path(pdu, "t");
  coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, COAP_MEDIATYPE_APPLICATION_CBOR), buf);
  coap_add_data(pdu, n, payload);
  if (coap_send(fw.session, pdu) != COAP_INVALID_MID) fw.telemetry_sent = true;
}

static void code_text(coap_pdu_code_t code, char out[8]) { snprintf(out, 8, "%d.%02d", (code >> 5) & 7, code & 0x1f); }

/* ---------------------------------------------------------------------------------------------- */
/* snapshots                                                                                       */

/* Names of the keys a change added, removed or changed, as JSON arrays (names only: values may be secret). */
static bool same_value(const henge_field *a, const henge_field *b) {
  if (a->type == HENGE_TEXT || b->type == HENGE_TEXT) return a->type == b->type && a->text_len == b->text_len && memcmp(a->v.text, b->v.text, a->text_len) == 0;
  if (a->type == HENGE_BOOL || b->type == HENGE_BOOL) return a->type == b->type && a->v.b == b->v.b;
  double x = a->type == HENGE_INT ? (double)a->v.i : a->v.f;
  double y = b->type == HENGE_INT ? (double)b->v.i : b->v.f;
  if (a->type == HENGE_INT && b->type == HENGE_INT) return a->v.i == b->v.i;
  return x == y;
}

static void key_list(fw_buf *b, const henge_snapshot *s, const henge_snapshot *other, int which) {
  /* which: 0 added (in s, not in other), 1 changed (in both, different) */
  fw_buf_reset(b);
  fw_buf_puts(b, "[");
  bool first = true;
  /* Sorted output: pick names in order (n is small; quadratic is fine). */
  const char *last = NULL;
  size_t last_len = 0;
  for (;;) {
    const henge_field *best = NULL;
    for (uint16_t i = 0; i < s->count; i++) {
      const henge_field *f = &s->fields[i];
      const henge_field *g = NULL;
      bool in_other = other != NULL && henge_snapshot_find(other, f->key, f->key_len, &g) == HENGE_OK;
      bool wanted = which == 0 ? !in_other : (in_other && !same_value(f, g));
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
}

static void save_state(void) {
  char err[600];
  if (fw_state_save(fw.state_file, fw.o.id, &fw.state, err, sizeof err) != 0) {
    fw_line l;
    fw_line_start(&l);
    fw_line_raw(&l, "err", "{}");
    fw_line_str(&l, "why", err);
    fw_line_emit(&l, FW_ERROR, "could not save the state folder; the config file is applied");
  }
}

static void handle_snapshot(const uint8_t *data, size_t len, const uint8_t *etag, size_t etag_len, const char *via) {
  fw_buf_reset(&fw.inbox);
  fw_buf_put(&fw.inbox, data, len);
  if (fw.inbox.failed) {
    fw_log(FW_ERROR, "out of memory for a snapshot; ignored");
    return;
  }
  bool had = fw.state.has_applied;
  henge_mark before = fw.state.mark;
  henge_outcome outcome;
  henge_device_on_snapshot(&fw.dev, (const uint8_t *)fw.inbox.data, fw.inbox.len, etag, etag_len, fw.work, &outcome);
  if (outcome != HENGE_OUT_APPLIED) {
    if (outcome == HENGE_OUT_CURRENT || outcome == HENGE_OUT_OLDER) {
      fw_line l;
      fw_line_start(&l);
      fw_line_uint(&l, "version", fw.work->version);
      fw_line_str(&l, "via", via);
      fw_line_emit(&l, FW_DEBUG, outcome == HENGE_OUT_CURRENT ? "config is current" : "snapshot older than the applied one; ignored");
    }
    return;
  }
  henge_mark after;
  henge_mark_of(fw.work, &after);
  henge_decision why;
  henge_decide(had ? &before : NULL, &after, &why);
  fw_buf added, removed, changed;
  fw_buf_init(&added);
  fw_buf_init(&removed);
  fw_buf_init(&changed);
  key_list(&added, fw.work, had ? fw.applied : NULL, 0);
  if (had) key_list(&removed, fw.applied, fw.work, 0);
  else fw_buf_puts(&removed, "[]");
  key_list(&changed, fw.work, had ? fw.applied : NULL, 1);

  /* The new snapshot becomes the applied one: swap the buffers its fields point into, and the structs. */
  fw_buf tmp = fw.state.snapshot;
  fw.state.snapshot = fw.inbox;
  fw.inbox = tmp;
  henge_snapshot *s = fw.applied;
  fw.applied = fw.work;
  fw.work = s;
  fw.state.has_applied = true;
  fw.state.mark = after;
  fw.state.acked = false;
  fw.state.applied_at = wall_ms();
  save_state();

  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", after.version);
  fw_line_str(&l, "via", via);
  fw_line_uint(&l, "bytes", len);
  if (len > 1024) fw_line_bool(&l, "blockwise", true);
  if (had) fw_line_uint(&l, "previousVersion", before.version);
  else fw_line_null(&l, "previousVersion");
  fw_line_str(&l, "reason", henge_decision_name(why));
  if (why == HENGE_APPLY_NEW_INCARNATION) {
    char inc[17];
    for (int i = 0; i < 8; i++) sprintf(inc + 2 * i, "%02x", after.incarnation[i]);
    fw_line_str(&l, "incarnation", inc);
  }
  fw_line_raw(&l, "added", added.data ? added.data : "[]");
  fw_line_raw(&l, "removed", removed.data ? removed.data : "[]");
  fw_line_raw(&l, "changed", changed.data ? changed.data : "[]");
  fw_line_emit(&l, FW_INFO, "applied");
  fw_buf_free(&added);
  fw_buf_free(&removed);
  fw_buf_free(&changed);
  update_led(fw.applied);
}

/* ---------------------------------------------------------------------------------------------- */
/* libcoap handlers                                                                                */

static void on_config_response(const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  char code_s[8];
  code_text(code, code_s);
  coap_opt_iterator_t it;
  bool observing = coap_check_option(rcvd, COAP_OPTION_OBSERVE, &it) != NULL;
  bool was_registration = fw.reg_in_flight;
  if (COAP_RESPONSE_CLASS(code) != 2) {
    char reason[300];
    if (code == COAP_RESPONSE_CODE(404))
      snprintf(reason, sizeof reason, "the hub does not know device %s (add it with: henge device add %s)", fw.o.id, fw.o.id);
    else if (was_registration)
      snprintf(reason, sizeof reason, "registration answered %s", code_s);
    else
      snprintf(reason, sizeof reason, "the hub ended the observation (%s)", code_s);
    fail_session(true, reason);
    return;
  }
  if (was_registration) {
    fw.reg_in_flight = false;
    coap_opt_t *ma = coap_check_option(rcvd, COAP_OPTION_MAXAGE, &it);
    uint32_t max_age = ma ? coap_decode_var_bytes(coap_opt_value(ma), coap_opt_length(ma)) : COAP_DEFAULT_MAX_AGE;
    if (!observing) {
      /* No relation. libcoap also drops Observe when a Block2 transfer restarts after an ETag change:
         re-register once at once before believing the hub. */
      if (++fw.reg_without_observe >= 2) {
        fail_session(true, "the hub answered the registration without Observe: no relation");
        return;
      }
      fw.next_keepalive_ms = now_ms();
    } else {
      fw.reg_without_observe = 0;
      uint32_t delay = 1000;
      henge_device_keepalive_delay(&fw.dev, max_age, &delay);
      fw.next_keepalive_ms = now_ms() + delay;
    }
    if (fw.link != LINK_UP) {
      fw.link = LINK_UP;
      fw_line l;
      fw_line_start(&l);
      char hub[300];
      snprintf(hub, sizeof hub, "%s port %u", fw.host, fw.port);
      fw_line_str(&l, "hub", hub);
      char src[300];
      snprintf(src, sizeof src, "--hub %s", fw.o.hub);
      fw_line_str(&l, "source", src);
      const coap_address_t *local = coap_session_get_addr_local(fw.session);
      if (local) fw_line_uint(&l, "localPort", coap_address_get_port(local));
      fw_line_uint(&l, "keepaliveS", max_age);
      fw_line_uint(&l, "afterAttempts", fw.dev.backoff.attempts);
      fw_line_bool(&l, "coaps", fw.has_key);
      fw_line_emit(&l, FW_INFO, fw.connections == 0 ? "connected" : "reconnected");
      fw.connections++;
      henge_device_connected(&fw.dev);
    }
    fw.ack_due = true; /* an ack the hub never confirmed goes again after each registration */
  } else if (!observing) {
    /* A 2.xx without Observe outside a registration: the relation may have ended. Re-register now. */
    fw.next_keepalive_ms = now_ms();
  }
  const char *via = was_registration ? "registration" : "notification";
  if (code == COAP_RESPONSE_CODE(203)) {
    henge_outcome o;
    henge_device_on_valid(&fw.dev, &o);
    fw_line l;
    fw_line_start(&l);
    if (fw.state.has_applied) fw_line_uint(&l, "version", fw.state.mark.version);
    fw_line_str(&l, "via", via);
    fw_line_emit(&l, FW_DEBUG, "config is current");
  } else if (code == COAP_RESPONSE_CODE(205)) {
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(rcvd, &len, &data, &offset, &total)) {
      len = 0;
      data = (const uint8_t *)"";
    }
    if (offset != 0 || len != total) {
      fw_log(FW_WARN, "a partial body reached the handler; ignored (the next registration fetches it again)");
      return;
    }
    coap_opt_t *etag = coap_check_option(rcvd, COAP_OPTION_ETAG, &it);
    handle_snapshot(data, len, etag ? coap_opt_value(etag) : NULL, etag ? coap_opt_length(etag) : 0, via);
  }
  fw.ack_due = true;
}

static void on_ack_response(const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  char code_s[8];
  code_text(code, code_s);
  uint8_t cls = (uint8_t)COAP_RESPONSE_CLASS(code);
  fw.ack_in_flight = false;
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", fw.ack_sent.version);
  fw_line_str(&l, "status", henge_ack_status_name((henge_ack_status)fw.ack_sent.status));
  fw_line_str(&l, "code", code_s);
  if (cls == 2) {
    fw_line_emit(&l, FW_INFO, "ack delivered");
  } else if (cls == 5) {
    fw_line_emit(&l, FW_WARN, "the hub could not record the ack; sending it again after the next registration");
  } else {
    size_t len = 0;
    const uint8_t *data = NULL;
    if (coap_get_data(rcvd, &len, &data)) fw_line_strn(&l, "why", (const char *)data, len);
    fw_line_emit(&l, FW_ERROR, "the hub refused the ack");
  }
  bool was_acked = fw.dev.applied_acked;
  henge_device_on_ack_response(&fw.dev, &fw.ack_sent, cls, (uint8_t)(code & 0x1f));
  if (fw.dev.applied_acked && !was_acked && fw.state.has_applied) {
    fw.state.acked = true;
    save_state();
  }
  /* A newer ack may have become pending meanwhile. */
  if (cls != 5) fw.ack_due = true;
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *rcvd, const coap_mid_t mid) {
  (void)mid;
  if (session != fw.session || fw.tearing_down) return COAP_RESPONSE_OK;
  coap_bin_const_t token = coap_pdu_get_token(rcvd);
  if (token_is(token, fw.obs_token, fw.obs_token_len)) {
    if (fw_log_enabled(FW_TRACE)) {
      fw_line l;
      fw_line_start(&l);
      char c[8];
      code_text(coap_pdu_get_code(rcvd), c);
      fw_line_str(&l, "code", c);
      fw_line_bool(&l, "answer", sent != NULL);
      fw_line_emit(&l, FW_TRACE, "config message");
    }
    on_config_response(rcvd);
    return COAP_RESPONSE_OK;
  }
  if (fw.ack_in_flight && token_is(token, fw.ack_token, fw.ack_token_len)) {
    on_ack_response(rcvd);
    return COAP_RESPONSE_OK;
  }
  if (token_is(token, fw.tel_token, fw.tel_token_len)) {
    char c[8];
    code_text(coap_pdu_get_code(rcvd), c);
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "code", c);
    fw_line_emit(&l, FW_DEBUG, "telemetry sent");
    return COAP_RESPONSE_OK;
  }
  if (token_is(token, fw.dereg_token, fw.dereg_token_len)) {
    fw.dereg_answered = true;
    code_text(coap_pdu_get_code(rcvd), fw.dereg_code);
    return COAP_RESPONSE_OK;
  }
  /* Not ours (an old relation's notification): RST it, so the hub forgets it (RFC 7641 §3.6). */
  coap_pdu_type_t type = coap_pdu_get_type(rcvd);
  if (sent == NULL && (type == COAP_MESSAGE_CON || type == COAP_MESSAGE_NON)) return COAP_RESPONSE_FAIL;
  return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid) {
  (void)mid;
  if (session != fw.session || fw.tearing_down) return;
  if (reason == COAP_NACK_TLS_FAILED) {
    fail_session(false, "no DTLS session: the handshake failed (a wrong key, a device the hub does not know, or not a henge hub's coaps port)");
    return;
  }
  coap_bin_const_t token = {0, NULL};
  if (sent != NULL) token = coap_pdu_get_token(sent);
  if (reason == COAP_NACK_ICMP_ISSUE) {
    fw_log(FW_DEBUG, "ICMP: the hub's port is unreachable for now; retransmitting");
    return;
  }
  bool registration = sent != NULL && token_is(token, fw.obs_token, fw.obs_token_len);
  if (fw.ack_in_flight && sent != NULL && token_is(token, fw.ack_token, fw.ack_token_len)) {
    fw.ack_in_flight = false;
    fw_line l;
    fw_line_start(&l);
    fw_line_uint(&l, "version", fw.ack_sent.version);
    fw_line_emit(&l, FW_WARN, "the ack got no answer; sending it again after the next registration");
    return;
  }
  if (registration || sent == NULL) {
    if (reason == COAP_NACK_RST) fail_session(true, "the hub reset the registration (RST)");
    else if (reason == COAP_NACK_TOO_MANY_RETRIES) fail_session(false, "no answer to the registration after 4 retransmissions");
    else fail_session(false, "the registration could not be delivered");
  }
}

static int on_event(coap_session_t *session, const coap_event_t event) {
  if (session != fw.session || fw.tearing_down) return 0;
  switch (event) {
    case COAP_EVENT_DTLS_CONNECTED:
      fw.dtls_open = true;
      fw_log(FW_DEBUG, "DTLS session open");
      break;
    case COAP_EVENT_DTLS_CLOSED:
      fail_session(false, fw.dtls_open ? "DTLS session ended (the hub closed it or restarted)"
                                       : "no DTLS session: the handshake got no answer (is the hub running, on this coaps port?)");
      break;
    case COAP_EVENT_DTLS_ERROR:
      fail_session(false, "no DTLS session: the handshake failed (a wrong key, a device the hub does not know, or not a henge hub's coaps port)");
      break;
    case COAP_EVENT_SESSION_FAILED:
    case COAP_EVENT_SESSION_CLOSED:
      fail_session(false, "the session to the hub ended");
      break;
    case COAP_EVENT_PARTIAL_BLOCK:
      fw_log(FW_WARN, "a block-wise transfer was incomplete; the next registration fetches the snapshot again");
      break;
    default:
      break;
  }
  return 0;
}

static void on_coap_log(coap_log_t level, const char *message) {
  int l = level <= LOG_ERR ? FW_ERROR : level == LOG_WARNING ? FW_WARN : level <= LOG_INFO ? FW_DEBUG : FW_TRACE;
  size_t n = strlen(message);
  while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r')) n--;
  fw_line line;
  fw_line_start(&line);
  fw_line_strn(&line, "text", message, n);
  /* libcoap's own complaints (ICMP, refused sends, retransmissions) are expected while the hub is away,
     and henge-fw says what they mean for the device: debug, except emergencies. */
  fw_line_emit(&line, level <= LOG_ALERT ? FW_WARN : l == FW_TRACE ? FW_TRACE : FW_DEBUG, "libcoap");
}

/* ---------------------------------------------------------------------------------------------- */
/* sessions                                                                                        */

/*
 * One libcoap context per connection. Freeing the context deletes its retransmission queue before its
 * sessions: libcoap 4.3.1 moves a CON that met an ICMP error into that queue with a reference to a
 * session we are about to drop, and later retransmits on (and logs) the freed session (ASan found it:
 * a use-after-free or a leak after a failed DTLS handshake). Releasing the whole context avoids that.
 */
static bool new_context(void) {
  fw.ctx = coap_new_context(NULL);
  if (fw.ctx == NULL) return false;
  coap_context_set_block_mode(fw.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_register_response_handler(fw.ctx, on_response);
  coap_register_nack_handler(fw.ctx, on_nack);
  coap_register_event_handler(fw.ctx, on_event);
  return true;
}

static void teardown_session(void) {
  fw.tearing_down = true;
  if (fw.session != NULL) {
    coap_session_t *s = fw.session;
    fw.session = NULL;
    coap_session_release(s);
  }
  if (fw.ctx != NULL) {
    coap_free_context(fw.ctx);
    fw.ctx = NULL;
  }
  fw.tearing_down = false;
  fw.link = LINK_DOWN;
  /* A new session makes its tokens afresh (the same sequence): forget the old session's. */
  fw.ack_token_len = fw.tel_token_len = fw.dereg_token_len = 0;
  fw.reg_in_flight = false;
  fw.ack_in_flight = false;
}

static bool resolve_hub(coap_address_t *addr, char *err, size_t cap) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  char port[8];
  snprintf(port, sizeof port, "%u", fw.port);
  hints.ai_flags = AI_NUMERICSERV;
  int r = getaddrinfo(fw.host, port, &hints, &res);
  if (r != 0 || res == NULL) {
    snprintf(err, cap, "cannot resolve %s: %s", fw.host, gai_strerror(r));
    return false;
  }
  coap_address_init(addr);
  addr->size = (socklen_t)res->ai_addrlen;
  memcpy(&addr->addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

static bool connect_hub(void) {
  char err[300];
  coap_address_t addr;
  fw.session_failed = false;
  fw.dtls_open = false;
  if (!resolve_hub(&addr, err, sizeof err)) {
    fail_session(false, err);
    return false;
  }
  if (!new_context()) {
    fail_session(false, "cannot create a libcoap context");
    return false;
  }
  if (fw.has_key) {
    coap_dtls_cpsk_t psk;
    memset(&psk, 0, sizeof psk);
    psk.version = COAP_DTLS_CPSK_SETUP_VERSION;
    /* Identity: the device id. The key: the ASCII bytes of the key text (docs/protocol.md, "Security"). */
    psk.psk_info.identity.s = (const uint8_t *)fw.o.id;
    psk.psk_info.identity.length = strlen(fw.o.id);
    psk.psk_info.key.s = (const uint8_t *)fw.key;
    psk.psk_info.key.length = strlen(fw.key);
    fw.session = coap_new_client_session_psk2(fw.ctx, NULL, &addr, COAP_PROTO_DTLS, &psk);
  } else {
    fw.session = coap_new_client_session(fw.ctx, NULL, &addr, COAP_PROTO_UDP);
  }
  if (fw.session == NULL) {
    fail_session(false, fw.has_key ? "cannot open a DTLS session (libcoap)" : "cannot open a UDP session (libcoap)");
    return false;
  }
  /* henge-fw deregisters itself on shutdown; when a session ends because the hub went away there is
     nobody to tell. (libcoap 4.3.1's own cancel on release also leaks its PDU when the session is dead.) */
  coap_session_set_no_observe_cancel(fw.session);
  return send_registration();
}

static void deregister(void) {
  if (fw.session == NULL || fw.link != LINK_UP) return;
  fw.dereg_token_len = sizeof fw.dereg_token;
  coap_session_new_token(fw.session, &fw.dereg_token_len, fw.dereg_token);
  coap_pdu_t *pdu = new_request(COAP_REQUEST_CODE_GET, fw.dereg_token, fw.dereg_token_len);
  if (pdu == NULL) return;
  uint8_t buf[4];
  if (fw.state.has_applied) coap_add_option(pdu, COAP_OPTION_ETAG, HENGE_HASH_BYTES, fw.state.mark.hash);
  coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof buf, COAP_OBSERVE_CANCEL), buf);
  add_path(pdu, "c");
  if (coap_send(fw.session, pdu) == COAP_INVALID_MID) return;
  uint64_t until = now_ms() + DEREGISTER_WAIT_MS;
  while (!fw.dereg_answered && !fw.session_failed && now_ms() < until) coap_io_process(fw.ctx, 50);
  fw_line l;
  fw_line_start(&l);
  if (fw.dereg_answered) {
    fw_line_str(&l, "code", fw.dereg_code);
    fw_line_emit(&l, FW_INFO, "deregistered");
  } else {
    fw_line_emit(&l, FW_WARN, "deregistration got no answer");
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* the loop                                                                                        */

static void run(void) {
  fw.next_attempt_ms = now_ms();
  while (!stop_requested) {
    uint64_t now = now_ms();
    if (fw.session == NULL && now >= fw.next_attempt_ms) connect_hub();
    if (refresh_requested) {
      refresh_requested = 0;
      fw_log(FW_INFO, "re-registering now");
      if (fw.session != NULL && !fw.reg_in_flight) send_registration();
      else if (fw.session == NULL) fw.next_attempt_ms = now;
    }
    if (fw.link == LINK_UP && !fw.reg_in_flight && now >= fw.next_keepalive_ms) send_registration();
    if (fw.reg_in_flight && now_ms() > fw.reg_sent_ms + REGISTER_TIMEOUT_MS) fail_session(false, "no answer to the registration in 15 s");
    if (!fw.session_failed && fw.link == LINK_UP) {
      if (fw.ack_due && !fw.ack_in_flight) {
        fw.ack_due = false;
        send_pending_ack();
      }
      send_telemetry();
    }
    if (fw.session_failed) {
      teardown_session();
      fw.session_failed = false;
      uint32_t wait = 0;
      henge_device_retry_delay(&fw.dev, &wait);
      fw.next_attempt_ms = now_ms() + wait;
      fw_line l;
      fw_line_start(&l);
      char err[400], esc[340];
      fw_json_escape(esc, sizeof esc, fw.fail_reason, strlen(fw.fail_reason));
      snprintf(err, sizeof err, "{\"message\":\"%s\"}", esc);
      fw_line_raw(&l, "err", err);
      fw_line_uint(&l, "attempt", fw.dev.backoff.attempts);
      fw_line_uint(&l, "retryInMs", wait);
      if (fw.state.has_applied) fw_line_uint(&l, "appliedVersion", fw.state.mark.version);
      else fw_line_null(&l, "appliedVersion");
      bool not_known = strstr(fw.fail_reason, "does not know") != NULL;
      fw_line_emit(&l, not_known ? FW_ERROR : FW_WARN,
                   fw.fail_refused ? "the hub refused or ended the observation; keeping the last applied config and retrying"
                                   : "hub unreachable; keeping the last applied config and retrying");
      continue;
    }
    /* Sleep until the next thing to do, in slices (signals are seen at once either way). */
    uint64_t next = now + LOOP_SLICE_MS;
    if (fw.session == NULL && fw.next_attempt_ms < next) next = fw.next_attempt_ms;
    if (fw.link == LINK_UP && !fw.reg_in_flight && fw.next_keepalive_ms < next) next = fw.next_keepalive_ms;
    now = now_ms();
    uint32_t wait = next > now ? (uint32_t)(next - now) : 0;
    if (fw.ack_due && fw.link == LINK_UP && !fw.ack_in_flight) wait = 0;
    if (fw.ctx != NULL) {
      coap_io_process(fw.ctx, wait == 0 ? COAP_IO_NO_WAIT : wait);
    } else if (wait > 0) {
      struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
      nanosleep(&ts, NULL); /* a signal cuts it short */
    }
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* command line                                                                                    */

static void usage(FILE *to) {
  fprintf(to,
          "Usage: henge-fw --id <device> --out <file> --hub <host[:port]> [options]\n"
          "\n"
          "The henge device firmware for Linux (libcoap %s): observes this device's config on the hub\n"
          "(CoAP Observe, Block2), writes it to a file atomically, acks each version, re-registers\n"
          "before Max-Age runs out, and reconnects with backoff when the hub goes away.\n"
          "\n"
          "Options:\n"
          "  --id <device>          device id, as added with `henge device add` (required)\n"
          "  --hub <host[:port]>    hub address: host, host:port, [IPv6]:port (port 5684 with a key, else\n"
          "                         5683); required: this build cannot find the hub over mDNS yet\n"
          "  --out <file>           config file to write (atomically) (required)\n"
          "  --format <json|env>    file format (default: from the extension of --out, else json); env\n"
          "                         writes KEY='value' lines; yaml is not written by henge-fw yet\n"
          "  --state <dir>          state folder: last applied snapshot, lock (default ./.henge/agent-<id>);\n"
          "                         the same files as `henge agent`, which can take it over\n"
          "  --key-file <path>      the device key henge device add printed (or $HENGE_DEVICE_KEY, or\n"
          "                         <state>/key): talk coaps (DTLS-PSK, identity = device id); with no key\n"
          "                         at all, plain CoAP to a hub run with --insecure\n"
          "  --backoff-max <s>      longest wait between attempts to reach the hub (default 60)\n"
          "  --led <file>           an observable LED: the file holds \"on\", \"off\" or \"blink <ms>\",\n"
          "                         following the config fields `led` (boolean) and `blink_ms` (integer)\n"
          "  --log-level <level>    fatal, error, warn, info, debug, trace or silent (JSON lines on stderr;\n"
          "                         default info)\n"
          "  --help                 this text\n"
          "  --version              the firmware and libcoap versions\n"
          "\n"
          "Not in henge-fw yet (the Node agent has them): --exec, --exec-timeout, yaml output, mDNS discovery.\n"
          "Signals: SIGINT/SIGTERM deregister and exit 0; SIGHUP re-registers at once.\n"
          "Exit codes: 0 ok, 1 failure, 2 usage, 7 state folder in use.\n",
          libcoap_version());
}

static void usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "henge-fw: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (henge-fw --help)\n");
  exit(EXIT_USAGE);
}

static bool valid_device_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 63) return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
    if (!ok) return false;
  }
  return true;
}

/* host, host:port, [v6], [v6]:port, or a bare IPv6 address (as agent/hub-locator.ts parseHubAddress). */
static void parse_hub(const char *text, uint16_t default_port) {
  const char *port_text = NULL;
  char host[256];
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || (size_t)(close - text - 1) >= sizeof host) usage_error("--hub %s: give host[:port]", text);
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    if (close[1] == ':') port_text = close + 2;
    else if (close[1] != '\0') usage_error("--hub %s: give [IPv6]:port", text);
  } else {
    const char *colon = strchr(text, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
      snprintf(host, sizeof host, "%s", text); /* a bare IPv6 address */
    } else {
      size_t n = colon ? (size_t)(colon - text) : strlen(text);
      if (n >= sizeof host) usage_error("--hub %s: the host is too long", text);
      memcpy(host, text, n);
      host[n] = '\0';
      if (colon) port_text = colon + 1;
    }
  }
  if (host[0] == '\0' || strpbrk(host, " \t/") != NULL) usage_error("--hub %s: give host[:port]", text);
  unsigned long port = default_port;
  if (port_text != NULL) {
    char *end;
    port = strtoul(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || port < 1 || port > 65535) usage_error("--hub %s: port must be 1..65535", text);
  }
  snprintf(fw.host, sizeof fw.host, "%s", host);
  fw.port = (uint16_t)port;
}

static void absolute(const char *path, char out[PATH_MAX]) {
  if (path[0] == '/') {
    snprintf(out, PATH_MAX, "%s", path);
    return;
  }
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL) snprintf(cwd, sizeof cwd, ".");
  if ((size_t)snprintf(out, PATH_MAX, "%s/%s", cwd, path) >= PATH_MAX) usage_error("path too long: %s", path);
}

static void parse_args(int argc, char **argv) {
  enum { O_ID = 1, O_HUB, O_OUT, O_FORMAT, O_STATE, O_KEY, O_BACKOFF, O_LOG, O_LED, O_HELP, O_VERSION, O_EXEC, O_EXEC_TIMEOUT };
  static const struct option long_opts[] = {
      {"id", required_argument, 0, O_ID},         {"hub", required_argument, 0, O_HUB},
      {"out", required_argument, 0, O_OUT},       {"format", required_argument, 0, O_FORMAT},
      {"state", required_argument, 0, O_STATE},   {"key-file", required_argument, 0, O_KEY},
      {"backoff-max", required_argument, 0, O_BACKOFF}, {"log-level", required_argument, 0, O_LOG},
      {"led", required_argument, 0, O_LED},       {"help", no_argument, 0, O_HELP},
      {"version", no_argument, 0, O_VERSION},     {"exec", required_argument, 0, O_EXEC},
      {"exec-timeout", required_argument, 0, O_EXEC_TIMEOUT}, {0, 0, 0, 0},
  };
  fw.o.backoff_max_s = 60;
  fw.o.log_level = FW_INFO;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
    switch (c) {
      case O_ID: fw.o.id = optarg; break;
      case O_HUB: fw.o.hub = optarg; break;
      case O_OUT: fw.o.out = optarg; break;
      case O_FORMAT: fw.o.format = optarg; break;
      case O_STATE: fw.o.state = optarg; break;
      case O_KEY: fw.o.key_file = optarg; break;
      case O_LED: fw.o.led = optarg; break;
      case O_BACKOFF: {
        char *end;
        double v = strtod(optarg, &end);
        if (*optarg == '\0' || *end != '\0' || !(v >= 1 && v <= 86400)) usage_error("--backoff-max must be 1..86400 seconds, got %s", optarg);
        fw.o.backoff_max_s = v;
        break;
      }
      case O_LOG:
        fw.o.log_level = fw_log_level_from_name(optarg);
        if (fw.o.log_level < 0) usage_error("--log-level must be one of fatal, error, warn, info, debug, trace, silent; got %s", optarg);
        break;
      case O_HELP: usage(stdout); exit(0);
      case O_VERSION: printf("%s libcoap/%s\n", FW_NAME, libcoap_version()); exit(0);
      case O_EXEC:
      case O_EXEC_TIMEOUT: usage_error("%s: henge-fw does not run hooks yet (the Node agent, henge agent, does)", argv[optind - 1]); break;
      default: usage_error("unknown or incomplete option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) usage_error("unexpected argument %s", argv[optind]);
  if (fw.o.id == NULL || fw.o.out == NULL) usage_error("%s", "henge-fw needs --id <device> and --out <file>");
  if (!valid_device_id(fw.o.id)) usage_error("--id %s: a device id is 1-63 of a-z, 0-9 and -, starting with a letter or digit", fw.o.id);
  if (fw.o.hub == NULL) usage_error("%s", "henge-fw needs --hub <host[:port]>: mDNS discovery is not in this build yet");
}

static void on_signal(int sig) {
  if (sig == SIGHUP) refresh_requested = 1;
  else stop_requested = 1;
}

static void restore_out(void) {
  if (!fw.state.has_applied) return;
  char why[512];
  if (fw_render(fw.format, fw.applied, &fw.rendered, why, sizeof why) != HENGE_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", why);
    fw_line_uint(&l, "version", fw.state.mark.version);
    fw_line_emit(&l, FW_WARN, "cannot render the saved snapshot in this format; --out left as it is");
    return;
  }
  fw_buf current;
  fw_buf_init(&current);
  bool exists = fw_read_file(fw.out_path, &current) == 0;
  bool same = exists && current.len == fw.rendered.len && memcmp(current.data, fw.rendered.data, current.len) == 0;
  fw_buf_free(&current);
  if (same) return;
  if (fw_write_atomic(fw.out_path, fw.rendered.data, fw.rendered.len, -1, false, why, sizeof why) != 0) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", why);
    fw_line_emit(&l, FW_ERROR, "could not restore --out from the state folder");
    return;
  }
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", fw.state.mark.version);
  fw_line_str(&l, "out", fw.out_path);
  fw_line_str(&l, "was", exists ? "different" : "missing");
  fw_line_emit(&l, FW_INFO, "restored --out from the state folder");
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  absolute(fw.o.out, fw.out_path);
  fw.format = fw_format_from_path(fw.out_path);
  if (fw.o.format != NULL) {
    if (strcmp(fw.o.format, "json") == 0) fw.format = FW_FORMAT_JSON;
    else if (strcmp(fw.o.format, "env") == 0) fw.format = FW_FORMAT_ENV;
    else if (strcmp(fw.o.format, "yaml") == 0) fw.format = FW_FORMAT_YAML;
    else usage_error("--format must be json, yaml or env, got %s", fw.o.format);
  }
  if (fw.format == FW_FORMAT_YAML) usage_error("%s", "henge-fw does not write yaml yet: use --format json or env (or henge agent)");
  if (fw.o.state != NULL) {
    absolute(fw.o.state, fw.state_dir);
  } else {
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, ".henge/agent-%s", fw.o.id);
    absolute(rel, fw.state_dir);
  }
  snprintf(fw.state_file, sizeof fw.state_file, "%s/state.json", fw.state_dir);
  if (fw.o.led != NULL) absolute(fw.o.led, fw.led_path);

  char err[600];
  int k = fw_read_key(fw.o.key_file, fw.state_dir, fw.key, sizeof fw.key, err, sizeof err);
  if (k < 0) {
    fprintf(stderr, "henge-fw: %s\n", err);
    return fw.o.key_file != NULL ? EXIT_USAGE : 1;
  }
  fw.has_key = k == 1;
  parse_hub(fw.o.hub, fw.has_key ? DEFAULT_COAPS_PORT : DEFAULT_COAP_PORT);
  fw_log_setup(fw.o.log_level, fw.o.id, fw.has_key ? fw.key : NULL);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The state folder: created 0700, locked, read. */
  if (fw_mkdirs(fw.state_dir, 0700) != 0) {
    fprintf(stderr, "henge-fw: cannot create state folder %s: %s\n", fw.state_dir, strerror(errno));
    return 1;
  }
  int lr = fw_lock_state(fw.state_dir, err, sizeof err);
  if (lr != 0) {
    fprintf(stderr, "henge-fw: %s\n", err);
    return lr == -2 ? EXIT_CONFLICT : 1;
  }
  fw.applied = &fw.snaps[0];
  fw.work = &fw.snaps[1];
  fw_state_init(&fw.state);
  fw_buf_init(&fw.inbox);
  fw_buf_init(&fw.rendered);
  if (fw_state_load(fw.state_file, fw.o.id, &fw.state, fw.applied, err, sizeof err) != 0) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", err);
    fw_line_str(&l, "state", fw.state_file);
    fw_line_emit(&l, FW_WARN, "state folder unreadable; starting without a last applied config");
  }

  fw.platform.ctx = NULL;
  fw.platform.apply = p_apply;
  fw.platform.now_ms = p_now;
  fw.platform.random_u32 = p_random;
  fw.platform.log = p_log;
  fw.platform.discover = NULL; /* mDNS: not yet */
  henge_device_init(&fw.dev, &fw.platform, (uint32_t)(fw.o.backoff_max_s * 1000));
  if (fw.state.has_applied) henge_device_restore(&fw.dev, &fw.state.mark, fw.state.acked);

  /* --out's folder, then --out itself from the state folder when it is missing or differs. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", fw.out_path);
  char *slash = strrchr(dir, '/');
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    fw_mkdirs(dir, 0755);
  }
  restore_out();
  update_led(fw.state.has_applied ? fw.applied : NULL);

  coap_startup();
  coap_set_log_handler(on_coap_log);
  coap_set_log_level(fw.o.log_level <= FW_TRACE ? LOG_DEBUG : fw.o.log_level <= FW_DEBUG ? LOG_INFO : LOG_WARNING);
  if (fw.has_key && !coap_dtls_is_supported()) {
    fprintf(stderr, "henge-fw: this libcoap has no DTLS: build against libcoap-3-openssl or -gnutls\n");
    return 1;
  }
  /* One token for the life of the process: a re-registration refreshes the same observation. */
  fw.obs_token_len = 4;
  uint32_t t = random32();
  memcpy(fw.obs_token, &t, 4);

  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "hub", fw.o.hub);
  fw_line_bool(&l, "coaps", fw.has_key);
  fw_line_str(&l, "out", fw.out_path);
  fw_line_str(&l, "format", fw_format_name(fw.format));
  if (fw.o.led) fw_line_str(&l, "led", fw.led_path);
  fw_line_int(&l, "pid", (long long)getpid());
  fw_line_str(&l, "libcoap", libcoap_version());
  fw_line_emit(&l, FW_INFO, "agent started");

  run();

  fw_log(FW_INFO, "stopping");
  deregister();
  teardown_session();
  coap_cleanup();
  fw_state_free(&fw.state);
  fw_buf_free(&fw.inbox);
  fw_buf_free(&fw.rendered);
  memset(fw.key, 0, sizeof fw.key);
  fw_unlock_state();
  return 0;
}

/*
 * henge_mcu_client.c: see henge_mcu_client.h. The structure follows the Linux port: the session and
 * the requests (connect, register, post_cbor), the handlers (on_response, on_nack, on_event), and the
 * loop (henge_mcu_step). What goes next, and what an answer means for what is in flight, are decided by
 * ports/common/henge_link.c, as for henge-fw; this file carries it out and logs it. Everything is in the
 * henge_mcu the port owns; libcoap's handlers find it through their context's app data. The one static
 * is libcoap's log target (its log handler takes no argument).
 */
#include "henge_mcu_client.h"

#include <stdio.h>
#include <string.h>

#include "henge_coap.h"

/* Default ports (docs/protocol.md, "Transport"). */
#define PORT_COAP 5683u
#define PORT_COAPS 5684u

/* ---------------------------------------------------------------------------------------------- */
/* small things                                                                                    */

static uint64_t now_ms(const henge_mcu *c) { return c->port->now_ms(c->port->ctx); }

static void say(henge_mcu *c, henge_mcu_log_level level, const char *msg) {
  if (c->port->log != NULL) c->port->log(c->port->ctx, level, msg);
}

static henge_mcu *client_of(const coap_session_t *session) {
  return session != NULL ? (henge_mcu *)coap_get_app_data(coap_session_get_context(session)) : NULL;
}

void henge_led_of(const henge_snapshot *s, henge_led *out) {
  const henge_field *led = NULL, *blink = NULL;
  bool has_led = henge_snapshot_find(s, "led", 3, &led) == HENGE_OK && led->type == HENGE_BOOL;
  bool has_blink = henge_snapshot_find(s, "blink_ms", 8, &blink) == HENGE_OK;
  int64_t ms = 0;
  if (has_blink) {
    if (blink->type == HENGE_INT) ms = blink->v.i;
    else if (blink->type == HENGE_FLOAT && blink->v.f >= 1 && blink->v.f < 1e12) ms = (int64_t)(blink->v.f + 0.5);
  }
  out->blink_ms = 0;
  if (has_led && !led->v.b) {
    out->mode = HENGE_LED_OFF;
  } else if (ms > 0) {
    out->mode = HENGE_LED_BLINK;
    out->blink_ms = ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
  } else {
    out->mode = has_led && led->v.b ? HENGE_LED_ON : HENGE_LED_OFF;
  }
}

static void show_led(henge_mcu *c, const henge_led *led) {
  if (c->led_shown && c->led.mode == led->mode && c->led.blink_ms == led->blink_ms) return;
  c->led = *led;
  c->led_shown = true;
  c->port->set_led(c->port->ctx, led);
  if (led->mode == HENGE_LED_BLINK) snprintf(c->line, sizeof c->line, "led blink %u", (unsigned)led->blink_ms);
  else snprintf(c->line, sizeof c->line, "led %s", led->mode == HENGE_LED_ON ? "on" : "off");
  say(c, HENGE_MCU_INFO, c->line);
}

/* ---------------------------------------------------------------------------------------------- */
/* the platform the core calls                                                                     */

static henge_status p_apply(void *ctx, const henge_snapshot *s, const uint8_t *bytes, size_t len, const char **why) {
  henge_mcu *c = ctx;
  henge_status st = c->port->store(c->port->ctx, bytes, len);
  if (st != HENGE_OK) {
    *why = "the device could not store the snapshot in flash; the previous config is kept";
    return st == HENGE_E_REJECT ? HENGE_E_REJECT : HENGE_E_APPLY;
  }
  henge_led led;
  henge_led_of(s, &led);
  show_led(c, &led);
  snprintf(c->line, sizeof c->line, "applied version %llu (%u fields, %u bytes)", (unsigned long long)s->version, (unsigned)s->count, (unsigned)len);
  say(c, HENGE_MCU_INFO, c->line);
  return HENGE_OK;
}

static henge_status p_now(void *ctx, uint64_t *ms) {
  henge_mcu *c = ctx;
  *ms = now_ms(c);
  return HENGE_OK;
}

static henge_status p_random(void *ctx, uint32_t *r) {
  henge_mcu *c = ctx;
  *r = c->port->random32(c->port->ctx);
  return HENGE_OK;
}

static void p_log(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *f) {
  henge_mcu *c = ctx;
  char line[sizeof c->line];
  if (f->has_version)
    snprintf(line, sizeof line, "%s (version %llu%s%s)", msg, (unsigned long long)f->version, f->reason ? ": " : "", f->reason ? f->reason : "");
  else
    snprintf(line, sizeof line, "%s%s%s", msg, f->reason ? ": " : "", f->reason ? f->reason : "");
  say(c, (henge_mcu_log_level)level, line);
}

/* ---------------------------------------------------------------------------------------------- */
/* requests                                                                                        */

static void fail(henge_mcu *c, bool refused, const char *reason) {
  if (c->session_failed) return;
  c->session_failed = true;
  c->fail_refused = refused;
  snprintf(c->fail_reason, sizeof c->fail_reason, "%s", reason);
}

static coap_pdu_t *new_request(henge_mcu *c, coap_pdu_code_t code, const uint8_t *token, size_t token_len) {
  coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(c->session), coap_session_max_pdu_size(c->session));
  if (pdu == NULL) return NULL;
  if (!coap_add_token(pdu, token_len, token)) {
    coap_delete_pdu(pdu);
    return NULL;
  }
  return pdu;
}


/* GET /d/{id}/c, Observe 0, the applied snapshot's ETag (docs/protocol.md, "Observe lifecycle" 1). */
static bool send_registration(henge_mcu *c) {
  if (c->session == NULL) return false;
  coap_pdu_t *pdu = new_request(c, COAP_REQUEST_CODE_GET, c->link.obs_token, c->link.obs_token_len);
  if (pdu == NULL) return false;
  uint8_t buf[4];
  bool ok = true;
  if (c->dev.has_applied) ok = coap_add_option(pdu, COAP_OPTION_ETAG, HENGE_HASH_BYTES, c->dev.applied.hash) != 0;
  ok = ok && coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof buf, COAP_OBSERVE_ESTABLISH), buf) != 0;
  ok = ok && henge_coap_add_path(pdu, c->cfg.device_id, "c") == HENGE_OK;
  if (!ok) {
    coap_delete_pdu(pdu);
    return false;
  }
  coap_mid_t mid = coap_send(c->session, pdu);
  if (mid == COAP_INVALID_MID) {
    fail(c, false, "could not send the registration");
    return false;
  }
  return henge_link_registration_sent(&c->link, mid, now_ms(c)) == HENGE_OK;
}

/* POST CBOR to /d/{id}/{resource} with a new token; its message id into *mid. */
static bool post_cbor(henge_mcu *c, const char *resource, const uint8_t *payload, size_t n, uint8_t token[8], size_t *token_len, coap_mid_t *mid) {
  *token_len = 8;
  coap_session_new_token(c->session, token_len, token);
  coap_pdu_t *pdu = new_request(c, COAP_REQUEST_CODE_POST, token, *token_len);
  if (pdu == NULL) return false;
  bool ok = henge_coap_add_path(pdu, c->cfg.device_id, resource) == HENGE_OK && henge_coap_add_cbor(pdu, payload, n) == HENGE_OK;
  if (!ok) {
    coap_delete_pdu(pdu);
    return false;
  }
  *mid = coap_send(c->session, pdu);
  return *mid != COAP_INVALID_MID;
}

static void send_ack(henge_mcu *c) {
  const henge_ack *a;
  if (c->session == NULL || c->link.ack_in_flight || henge_device_pending(&c->dev, &a) != HENGE_OK) return;
  uint8_t payload[HENGE_ACK_MAX_BYTES];
  size_t n = 0;
  if (henge_ack_encode(a, payload, sizeof payload, &n) != HENGE_OK) return;
  uint8_t token[8];
  size_t token_len = 0;
  coap_mid_t mid = COAP_INVALID_MID;
  if (post_cbor(c, "a", payload, n, token, &token_len, &mid)) (void)henge_link_ack_sent(&c->link, a, token, token_len, mid, now_ms(c));
}

static void send_telemetry(henge_mcu *c) {
  if (c->link.telemetry_sent || c->session == NULL) return;
  /* coap_package_version() is "libcoap 4.3.5" (ESP-IDF's coap.h has no LIBCOAP_PACKAGE_VERSION). */
  const char *v = coap_package_version();
  const char *sp = strrchr(v, ' ');
  char name[128];
  int len = snprintf(name, sizeof name, "%s libcoap/%s", c->cfg.agent_name, sp != NULL ? sp + 1 : v);
  if (len < 0 || (size_t)len >= sizeof name) len = (int)strlen(name);
  uint8_t payload[160];
  size_t n = 0;
  if (henge_telemetry_encode_agent(name, (size_t)len, payload, sizeof payload, &n) != HENGE_OK) return;
  uint8_t token[8];
  size_t token_len = 0;
  coap_mid_t mid = COAP_INVALID_MID;
  if (post_cbor(c, "t", payload, n, token, &token_len, &mid)) (void)henge_link_telemetry_sent(&c->link, token, token_len);
}

/* ---------------------------------------------------------------------------------------------- */
/* newest ack first (docs/protocol.md, "Ack"), as henge_link decides                               */

/* What henge_link_next abandoned for the ack (it runs on in libcoap with NSTART 2, its answer ignored), said. */
static void say_abandoned(henge_mcu *c, henge_link_action action) {
  unsigned long long pending = (unsigned long long)c->dev.pending.version;
  if (action == HENGE_LINK_ACK_SUPERSEDES)
    snprintf(c->line, sizeof c->line, "newest ack first: the ack of version %llu in flight is superseded by version %llu",
             (unsigned long long)c->link.abandoned.version, pending);
  else
    snprintf(c->line, sizeof c->line, "newest ack first: the re-registration in flight yields to the ack of version %llu; registering again after it", pending);
  say(c, HENGE_MCU_DEBUG, c->line);
}

/*
 * Sends what henge_link_next says while the link is up: one exchange of the client's own at a time, in the
 * order of docs/protocol.md, "Ack"; while one is in flight, only an ack beside the exchange it supersedes.
 * HENGE_OK, or the core's failure (the link's failures are the session's).
 */
static henge_status pump(henge_mcu *c) {
  if (c->session == NULL || !c->link.up || c->session_failed) return HENGE_OK;
  uint64_t now = now_ms(c);
  bool ended = false;
  henge_status st = henge_coap_expire(&c->link, c->session, now, &ended);
  if (ended) say(c, HENGE_MCU_DEBUG, "the abandoned exchange's span is over");
  henge_link_action action = HENGE_LINK_IDLE;
  henge_status nst = henge_coap_next(&c->link, c->session, &c->dev, now, 0, &action);
  if (nst == HENGE_OK && (action == HENGE_LINK_SEND_ACK || henge_link_abandons(action))) {
    if (henge_link_abandons(action)) say_abandoned(c, action);
    send_ack(c);
    /* An ack that did not go, and was not beside another exchange, is due no more: what comes after it goes now. */
    if (action == HENGE_LINK_SEND_ACK && !c->link.ack_in_flight) nst = henge_coap_next(&c->link, c->session, &c->dev, now, 0, &action);
    else action = HENGE_LINK_IDLE;
  }
  if (nst != HENGE_OK) return nst;
  if (action == HENGE_LINK_REGISTER) send_registration(c);
  else if (action == HENGE_LINK_SEND_TELEMETRY) send_telemetry(c);
  return st;
}

/* Ends the session when a registration has been wanted too long without an answer (in flight, or due and held). */
static henge_status check_registration(henge_mcu *c) {
  if (c->session == NULL || c->session_failed) return HENGE_OK;
  bool overdue = false;
  henge_status st = henge_link_registration_overdue(&c->link, now_ms(c), &overdue);
  if (overdue) fail(c, false, "no answer to the registration in 15 s");
  return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* handlers                                                                                        */

/*
 * A message with the observation's token that answers no request of ours (`sent` NULL: a notification, or
 * a separate response): libcoap has just ended every request with that token; a re-registration in
 * flight counts as abandoned (henge_link_token_cancelled) and goes again right after the ack.
 */
static henge_status on_token_cancelled(henge_mcu *c) {
  bool reregistration_ended = false;
  henge_status st = henge_coap_token_cancelled(&c->link, c->session, &reregistration_ended);
  if (reregistration_ended) say(c, HENGE_MCU_DEBUG, "a notification ended the re-registration in flight; registering again after the ack");
  return st;
}

static void on_config_response(henge_mcu *c, const coap_pdu_t *sent, const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  char code_s[8];
  henge_coap_code_text(code, code_s);
  coap_opt_iterator_t it;
  bool observing = coap_check_option(rcvd, COAP_OPTION_OBSERVE, &it) != NULL;
  if (sent == NULL) (void)on_token_cancelled(c); /* cannot fail: non-NULL pointers */
  bool was_registration = c->link.reg_in_flight;
  if (COAP_RESPONSE_CLASS(code) != 2) {
    char reason[sizeof c->fail_reason];
    if (code == COAP_RESPONSE_CODE(404)) snprintf(reason, sizeof reason, "the hub does not know device %s (henge device add %s)", c->cfg.device_id, c->cfg.device_id);
    else snprintf(reason, sizeof reason, was_registration ? "registration answered %s" : "the hub ended the observation (%s)", code_s);
    fail(c, true, reason);
    return;
  }
  /* The relation, the registration's answer and the keepalive (or a registration due at once): henge_link's. */
  coap_opt_t *ma = coap_check_option(rcvd, COAP_OPTION_MAXAGE, &it);
  uint32_t max_age = ma ? coap_decode_var_bytes(coap_opt_value(ma), coap_opt_length(ma)) : COAP_DEFAULT_MAX_AGE;
  henge_link_config answer;
  (void)henge_link_config_answer(&c->link, &c->dev, now_ms(c), observing, max_age, &answer); /* a failure: the keepalive in 1 s */
  if (answer.no_relation) {
    fail(c, true, "the hub answered the registration without Observe: no relation");
    return;
  }
  if (answer.came_up) {
    snprintf(c->line, sizeof c->line, "%s %s port %u (keepalive %u s, after %u attempts)", c->connections == 0 ? "connected to" : "reconnected to",
             c->cfg.hub_host, (unsigned)c->cfg.hub_port, (unsigned)max_age, (unsigned)c->dev.backoff.attempts);
    say(c, HENGE_MCU_INFO, c->line);
    c->connections++;
    henge_device_connected(&c->dev);
  }
  if (code == COAP_RESPONSE_CODE(203)) {
    henge_outcome o;
    henge_device_on_valid(&c->dev, &o);
  } else if (code == COAP_RESPONSE_CODE(205)) {
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(rcvd, &len, &data, &offset, &total)) {
      len = 0;
      data = (const uint8_t *)"";
    }
    if (offset != 0 || len != total) {
      say(c, HENGE_MCU_WARN, "a partial body reached the handler; the next registration fetches it again");
      return;
    }
    coap_opt_t *etag = coap_check_option(rcvd, COAP_OPTION_ETAG, &it);
    henge_outcome o;
    henge_device_on_snapshot(&c->dev, data, len, etag ? coap_opt_value(etag) : NULL, etag ? coap_opt_length(etag) : 0, &c->work, &o);
  }
  c->link.ack_due = true; /* an ack the hub never confirmed goes again after each registration */
}

/*
 * An answer to the exchange a newer ack abandoned: it settles nothing (a late 2.04 to a superseded ack marks
 * nothing acked; a late answer to an abandoned re-registration is not used as a registration: the one sent
 * after the ack counts). NSTART is 1 again. HENGE_OK, or the helper's failure.
 */
static henge_status on_abandoned_answer(henge_mcu *c, const coap_pdu_t *rcvd) {
  char code_s[8];
  henge_coap_code_text(coap_pdu_get_code(rcvd), code_s);
  if (c->link.abandoned.kind == HENGE_LINK_ABANDONED_ACK)
    snprintf(c->line, sizeof c->line, "a late answer to the superseded ack of version %llu: %s; ignored", (unsigned long long)c->link.abandoned.version, code_s);
  else
    snprintf(c->line, sizeof c->line, "a late answer to an abandoned re-registration: %s; ignored", code_s);
  say(c, HENGE_MCU_DEBUG, c->line);
  return henge_coap_ended(&c->link, c->session, HENGE_LINK_RX_ABANDONED, (uint8_t)COAP_RESPONSE_CLASS(coap_pdu_get_code(rcvd)));
}

static void on_ack_response(henge_mcu *c, const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  uint8_t cls = (uint8_t)COAP_RESPONSE_CLASS(code);
  const henge_ack *sent = &c->link.ack_sent;
  char code_s[8];
  henge_coap_code_text(code, code_s);
  snprintf(c->line, sizeof c->line, "ack of version %llu (%s): %s", (unsigned long long)sent->version, henge_ack_status_name((henge_ack_status)sent->status),
           code_s);
  say(c, cls == 2 ? HENGE_MCU_INFO : HENGE_MCU_WARN, c->line);
  henge_device_on_ack_response(&c->dev, sent, cls, (uint8_t)(code & 0x1f));
  (void)henge_coap_ended(&c->link, c->session, HENGE_LINK_RX_ACK, cls); /* due again unless a 5.xx: a newer ack may be pending */
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *rcvd, const coap_mid_t mid) {
  (void)mid;
  henge_mcu *c = client_of(session);
  if (c == NULL || session != c->session || c->tearing_down) return COAP_RESPONSE_OK;
  henge_link_rx rx = HENGE_LINK_RX_NONE;
  (void)henge_coap_rx_of(&c->link, coap_pdu_get_token(rcvd), sent != NULL ? coap_pdu_get_mid(sent) : COAP_INVALID_MID, &rx); /* cannot fail */
  switch (rx) {
    case HENGE_LINK_RX_ABANDONED:
      (void)on_abandoned_answer(c, rcvd); /* cannot fail: non-NULL pointers */
      return COAP_RESPONSE_OK;
    case HENGE_LINK_RX_CONFIG:
      on_config_response(c, sent, rcvd);
      return COAP_RESPONSE_OK;
    case HENGE_LINK_RX_ACK:
      on_ack_response(c, rcvd);
      return COAP_RESPONSE_OK;
    case HENGE_LINK_RX_TELEMETRY:
      (void)henge_coap_ended(&c->link, c->session, rx, (uint8_t)COAP_RESPONSE_CLASS(coap_pdu_get_code(rcvd)));
      return COAP_RESPONSE_OK;
    default:
      break;
  }
  /* Not ours (an old relation's notification): RST it, so the hub forgets it (RFC 7641 §3.6). */
  coap_pdu_type_t type = coap_pdu_get_type(rcvd);
  if (sent == NULL && (type == COAP_MESSAGE_CON || type == COAP_MESSAGE_NON)) return COAP_RESPONSE_FAIL;
  return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid) {
  henge_mcu *c = client_of(session);
  if (c == NULL || session != c->session || c->tearing_down) return;
  if (reason == COAP_NACK_TLS_FAILED) {
    fail(c, false, "the DTLS handshake failed (a wrong key, or a device the hub does not know)");
    return;
  }
  if (reason == COAP_NACK_ICMP_ISSUE) return; /* libcoap retransmits */
  coap_bin_const_t token = {0, NULL};
  if (sent != NULL) token = coap_pdu_get_token(sent);
  henge_link_rx rx = HENGE_LINK_RX_NONE;
  (void)henge_coap_rx_of(&c->link, token, sent != NULL ? mid : COAP_INVALID_MID, &rx); /* cannot fail: non-NULL pointers */
  if (rx == HENGE_LINK_RX_ABANDONED || rx == HENGE_LINK_RX_TELEMETRY || rx == HENGE_LINK_RX_ACK) {
    /* Ended unanswered (or reset): the abandoned exchange, NSTART 1 again and nothing else; the telemetry,
       which goes once (its loss is no failure); the ack, pending still: it goes again after the next registration. */
    (void)henge_coap_ended(&c->link, c->session, rx, HENGE_LINK_UNANSWERED); /* cannot fail: non-NULL pointers */
    if (rx == HENGE_LINK_RX_ABANDONED) say(c, HENGE_MCU_DEBUG, "the abandoned exchange ended without an answer");
    if (rx == HENGE_LINK_RX_ACK) say(c, HENGE_MCU_WARN, "the ack got no answer; it goes again after the next registration");
    return;
  }
  if (sent == NULL || rx == HENGE_LINK_RX_CONFIG) {
    fail(c, reason == COAP_NACK_RST, reason == COAP_NACK_RST ? "the hub reset the registration (RST)"
                                     : reason == COAP_NACK_TOO_MANY_RETRIES ? "no answer to the registration after 4 retransmissions"
                                                                            : "the registration could not be delivered");
  }
}

static int on_event(coap_session_t *session, const coap_event_t event) {
  henge_mcu *c = client_of(session);
  if (c == NULL || session != c->session || c->tearing_down) return 0;
  switch (event) {
    case COAP_EVENT_DTLS_CONNECTED:
      c->dtls_open = true;
      break;
    case COAP_EVENT_DTLS_CLOSED:
      fail(c, false, c->dtls_open ? "the DTLS session ended (the hub closed it or restarted)" : "the DTLS handshake got no answer");
      break;
    case COAP_EVENT_DTLS_ERROR:
      fail(c, false, "the DTLS handshake failed (a wrong key, or a device the hub does not know)");
      break;
    case COAP_EVENT_SESSION_FAILED:
    case COAP_EVENT_SESSION_CLOSED:
      fail(c, false, "the session to the hub ended");
      break;
    default:
      break;
  }
  return 0;
}

/* libcoap's log handler takes no argument: its lines go to the one client that started libcoap. */
static henge_mcu *log_target;

static void on_coap_log(coap_log_t level, const char *message) {
  if (log_target == NULL) return;
  char line[sizeof log_target->line];
  size_t n = strlen(message);
  while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r')) n--;
  snprintf(line, sizeof line, "libcoap: %.*s", (int)n, message);
  say(log_target, level <= 3 ? HENGE_MCU_WARN : HENGE_MCU_DEBUG, line);
}

/* ---------------------------------------------------------------------------------------------- */
/* the session                                                                                     */

static void teardown(henge_mcu *c) {
  c->tearing_down = true;
  if (c->session != NULL) {
    coap_session_t *s = c->session;
    c->session = NULL;
    coap_session_release(s);
  }
  if (c->ctx != NULL) {
    /* The whole context: its retransmission queue may still hold PDUs of the session (ports/linux/link.c). */
    coap_free_context(c->ctx);
    c->ctx = NULL;
  }
  c->tearing_down = false;
  (void)henge_link_reset(&c->link); /* down, nothing in flight or abandoned; cannot fail with a non-NULL pointer */
}

static void connect_hub(henge_mcu *c) {
  c->session_failed = false;
  c->dtls_open = false;
  coap_address_t addr;
  coap_address_init(&addr);
  if (c->port->resolve(c->port->ctx, c->cfg.hub_host, c->cfg.hub_port, &addr) != HENGE_OK) {
    snprintf(c->line, sizeof c->line, "cannot resolve %s", c->cfg.hub_host);
    fail(c, false, c->line);
    return;
  }
  c->ctx = coap_new_context(NULL);
  if (c->ctx == NULL) {
    fail(c, false, "cannot create a libcoap context (out of memory?)");
    return;
  }
  coap_set_app_data(c->ctx, c);
  coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_register_response_handler(c->ctx, on_response);
  coap_register_nack_handler(c->ctx, on_nack);
  coap_register_event_handler(c->ctx, on_event);
  if (c->port->context_created != NULL) c->port->context_created(c->port->ctx, c->ctx);
  if (c->cfg.key != NULL) {
    coap_dtls_cpsk_t psk;
    memset(&psk, 0, sizeof psk);
    psk.version = COAP_DTLS_CPSK_SETUP_VERSION;
    /* Identity: the device id; the key: the ASCII bytes of the key text (docs/protocol.md, "Security"). */
    psk.psk_info.identity.s = (const uint8_t *)c->cfg.device_id;
    psk.psk_info.identity.length = strlen(c->cfg.device_id);
    psk.psk_info.key.s = (const uint8_t *)c->cfg.key;
    psk.psk_info.key.length = strlen(c->cfg.key);
    c->session = coap_new_client_session_psk2(c->ctx, NULL, &addr, COAP_PROTO_DTLS, &psk);
  } else {
    c->session = coap_new_client_session(c->ctx, NULL, &addr, COAP_PROTO_UDP);
  }
  if (c->session == NULL) {
    fail(c, false, "cannot open a session to the hub (libcoap)");
    return;
  }
  /* When a session ends because the hub went away there is nobody to tell. */
  coap_session_set_no_observe_cancel(c->session);
  send_registration(c);
}

static void retry_later(henge_mcu *c) {
  teardown(c);
  c->session_failed = false;
  uint32_t wait = 0;
  if (henge_device_retry_delay(&c->dev, &wait) != HENGE_OK) wait = 1000;
  c->next_attempt_ms = now_ms(c) + wait;
  snprintf(c->line, sizeof c->line, "%s: %s; keeping the applied config, attempt %u in %u ms",
           c->fail_refused ? "the hub refused or ended the observation" : "hub unreachable", c->fail_reason, (unsigned)c->dev.backoff.attempts,
           (unsigned)wait);
  say(c, HENGE_MCU_WARN, c->line);
}

/* ---------------------------------------------------------------------------------------------- */
/* the API                                                                                         */

static bool valid_device_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 63) return false;
  for (size_t i = 0; i < n; i++) {
    char ch = id[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (i > 0 && ch == '-');
    if (!ok) return false;
  }
  return true;
}

henge_status henge_mcu_start(henge_mcu *c, const henge_mcu_config *cfg, const henge_mcu_port *port, const uint8_t *applied, size_t applied_len) {
  if (c == NULL || cfg == NULL || port == NULL || port->resolve == NULL || port->now_ms == NULL || port->random32 == NULL || port->store == NULL ||
      port->set_led == NULL)
    return HENGE_E_ARG;
  if (cfg->device_id == NULL || !valid_device_id(cfg->device_id) || cfg->hub_host == NULL || cfg->hub_host[0] == '\0') return HENGE_E_ARG;
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  if (c->cfg.key != NULL && c->cfg.key[0] == '\0') c->cfg.key = NULL;
  if (c->cfg.hub_port == 0) c->cfg.hub_port = (uint16_t)(c->cfg.key != NULL ? PORT_COAPS : PORT_COAP);
  if (c->cfg.backoff_cap_ms == 0) c->cfg.backoff_cap_ms = 60000;
  if (c->cfg.agent_name == NULL) c->cfg.agent_name = "henge-fw-mcu/0.1.0";
  c->port = port;

  c->platform.ctx = c;
  c->platform.apply = p_apply;
  c->platform.now_ms = p_now;
  c->platform.random_u32 = p_random;
  c->platform.log = p_log;
  c->platform.discover = NULL;
  henge_status st = henge_device_init(&c->dev, &c->platform, c->cfg.backoff_cap_ms);
  if (st != HENGE_OK) return st;

  /* The snapshot applied before the restart: its version baseline and its LED. The hub never
     confirmed its ack as far as this device knows, so the ack goes again (acks are idempotent). */
  henge_led led = {HENGE_LED_OFF, 0};
  if (applied != NULL && applied_len > 0) {
    henge_mark mark;
    if (henge_snapshot_decode(applied, applied_len, &c->work) == HENGE_OK && henge_mark_of(&c->work, &mark) == HENGE_OK) {
      henge_device_restore(&c->dev, &mark, false);
      henge_led_of(&c->work, &led);
      snprintf(c->line, sizeof c->line, "restored the applied config, version %llu", (unsigned long long)mark.version);
      say(c, HENGE_MCU_INFO, c->line);
    } else {
      say(c, HENGE_MCU_WARN, "the stored config does not decode; starting without one");
    }
  }
  show_led(c, &led);

  coap_startup();
  log_target = c;
  coap_set_log_handler(on_coap_log);
  coap_set_log_level((coap_log_t)4); /* warnings: LOG_WARNING in libcoap 4.3.1, COAP_LOG_WARN from 4.3.2 */
  if (c->cfg.key != NULL && !coap_dtls_is_supported()) {
    say(c, HENGE_MCU_ERROR, "this libcoap has no DTLS, and the device has a key");
    return HENGE_E_UNSUPPORTED;
  }
  uint32_t t = port->random32(port->ctx);
  uint8_t obs_token[4];
  memcpy(obs_token, &t, sizeof obs_token);
  (void)henge_link_init(&c->link, obs_token, sizeof obs_token); /* cannot fail: 4 bytes */
  c->next_attempt_ms = now_ms(c);
  return HENGE_OK;
}

henge_status henge_mcu_step(henge_mcu *c, uint32_t max_wait_ms, uint32_t *idle_ms) {
  if (c == NULL || idle_ms == NULL) return HENGE_E_ARG;
  *idle_ms = 0;
  uint64_t now = now_ms(c);
  if (c->session == NULL && !c->session_failed && now >= c->next_attempt_ms) connect_hub(c);
  /* Registration, ack, re-registration, telemetry: one at a time, newest ack first. */
  if (pump(c) != HENGE_OK) say(c, HENGE_MCU_ERROR, "the firmware core refused a call");
  (void)check_registration(c); /* cannot fail */
  if (c->session_failed) {
    retry_later(c);
    return HENGE_OK;
  }
  /* Until the next thing to do, at most max_wait_ms. */
  now = now_ms(c);
  uint64_t next = now + (max_wait_ms < HENGE_MCU_SLICE_MS ? max_wait_ms : HENGE_MCU_SLICE_MS);
  uint64_t link_next = UINT64_MAX;
  if (c->session == NULL && c->next_attempt_ms < next) next = c->next_attempt_ms;
  if (henge_link_next_ms(&c->link, &link_next) == HENGE_OK && link_next < next) next = link_next;
  uint32_t wait = next > now ? (uint32_t)(next - now) : 0;
  if (c->ctx == NULL) {
    *idle_ms = wait;
    return HENGE_OK;
  }
  coap_io_process(c->ctx, wait == 0 ? COAP_IO_NO_WAIT : wait);
  return HENGE_OK;
}

henge_status henge_mcu_refresh(henge_mcu *c) {
  if (c == NULL) return HENGE_E_ARG;
  /* Due now: it goes as soon as no exchange is in flight (one in flight already answers for it). */
  bool due = false;
  (void)henge_link_refresh(&c->link, now_ms(c), &due); /* cannot fail: non-NULL pointers */
  if (!due && c->session == NULL) c->next_attempt_ms = now_ms(c);
  return HENGE_OK;
}

henge_status henge_mcu_stop(henge_mcu *c) {
  if (c == NULL) return HENGE_E_ARG;
  teardown(c);
  if (log_target == c) log_target = NULL;
  coap_cleanup();
  return HENGE_OK;
}

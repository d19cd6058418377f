/*
 * link_rx.c: the libcoap handlers (link_rx.h).
 *
 * Whose an answer or a NACK is, and what it changes in what is in flight, are henge_link's
 * (ports/common/henge_link.h, the same for the microcontroller client); these handlers log, hand the
 * snapshot and the ack's answer to the core, and end the session when the hub refuses.
 *
 * The handlers keep the signatures libcoap requires (on_response, on_nack, on_event, fw_link_rx_log).
 * on_config_response, on_ack_response, on_token_cancelled, on_abandoned_answer and on_unanswered return an fw_status:
 * FW_OK, or a failure they have logged;
 * on_response hands libcoap COAP_RESPONSE_OK either way (our own failure is no reason to RST the hub).
 * Pure helpers that cannot fail: fw_of (token matching and code text are in ports/common/henge_coap.c); fw_link_rx_install only registers.
 */
#include "link_rx.h"

#include <stdio.h>
#include <string.h>

#include "device_io.h"
#include "henge_coap.h"
#include "fw_ctx.h"
#include "fw_log.h"
#include "link.h"
#include "sys.h"

/* The henge-fw a session belongs to (its context's app data); NULL for none. */
static fw_ctx *fw_of(const coap_session_t *session) {
  return session != NULL ? coap_get_app_data(coap_session_get_context(session)) : NULL;
}

/* The link is up (henge_link_config_answer said so): log "connected" (or "reconnected") and reset the backoff. */
static fw_status link_up(fw_ctx *fw, uint32_t max_age) {
  fw_line l;
  fw_line_start(&l);
  char hub[300];
  snprintf(hub, sizeof hub, "%s port %u", fw->cfg.host, fw->cfg.port);
  fw_line_str(&l, "hub", hub);
  fw_line_str(&l, "source", fw->hub_source);
  const coap_address_t *local = coap_session_get_addr_local(fw->session);
  if (local) fw_line_uint(&l, "localPort", coap_address_get_port(local));
  fw_line_uint(&l, "keepaliveS", max_age);
  fw_line_uint(&l, "afterAttempts", fw->dev.backoff.attempts);
  fw_line_bool(&l, "coaps", fw->has_key);
  fw_line_emit(&l, FW_INFO, fw->connections == 0 ? "connected" : "reconnected");
  fw->connections++;
  henge_status hs = henge_device_connected(&fw->dev);
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_device_connected", hs);
}

/*
 * A message with the observation's token that answers no request of ours (`sent` NULL: a notification,
 * or a separate response): libcoap has just ended every request with that token; a re-registration in
 * flight counts as abandoned (henge_link_token_cancelled) and goes again right after the ack.
 */
static fw_status on_token_cancelled(fw_ctx *fw) {
  bool reregistration_ended = false;
  henge_status hs = henge_coap_token_cancelled(&fw->link, fw->session, &reregistration_ended);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_coap_token_cancelled", hs);
  if (reregistration_ended) fw_log(FW_DEBUG, "a notification ended the re-registration in flight; registering again after the ack");
  return FW_OK;
}

/* An answer to the registration, or a notification (`sent` NULL when it answers no request). */
static fw_status on_config_response(fw_ctx *fw, const coap_pdu_t *sent, const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  char code_s[8];
  henge_coap_code_text(code, code_s);
  coap_opt_iterator_t it;
  bool observing = coap_check_option(rcvd, COAP_OPTION_OBSERVE, &it) != NULL;
  fw_status st = FW_OK;
  if (sent == NULL) st = on_token_cancelled(fw);
  bool was_registration = fw->link.reg_in_flight;
  if (COAP_RESPONSE_CLASS(code) != 2) {
    char reason[300];
    if (code == COAP_RESPONSE_CODE(404))
      snprintf(reason, sizeof reason, "the hub does not know device %s (add it with: henge device add %s)", fw->cfg.id, fw->cfg.id);
    else if (was_registration)
      snprintf(reason, sizeof reason, "registration answered %s", code_s);
    else
      snprintf(reason, sizeof reason, "the hub ended the observation (%s)", code_s);
    fw_link_fail(fw, true, reason);
    return st;
  }
  /* The relation, the registration's answer and the keepalive (or a registration due at once): henge_link's. */
  coap_opt_t *ma = coap_check_option(rcvd, COAP_OPTION_MAXAGE, &it);
  uint32_t max_age = ma ? coap_decode_var_bytes(coap_opt_value(ma), coap_opt_length(ma)) : COAP_DEFAULT_MAX_AGE;
  henge_link_config answer;
  henge_status lhs = henge_link_config_answer(&fw->link, &fw->dev, fw_now_ms(), observing, max_age, &answer);
  if (lhs != HENGE_OK) st = fw_device_core_failed("henge_device_keepalive_delay", lhs); /* its only failure; the keepalive in 1 s */
  if (answer.no_relation) {
    fw_link_fail(fw, true, "the hub answered the registration without Observe: no relation");
    return st;
  }
  if (answer.came_up && link_up(fw, max_age) != FW_OK) st = FW_E_CORE;
  if (answer.registration) fw->link.ack_due = true; /* an ack the hub never confirmed goes again after each registration */
  const char *via = was_registration ? "registration" : "notification";
  if (code == COAP_RESPONSE_CODE(203)) {
    henge_outcome o;
    henge_status hs = henge_device_on_valid(&fw->dev, &o);
    if (hs != HENGE_OK) st = fw_device_core_failed("henge_device_on_valid", hs);
    fw_line l;
    fw_line_start(&l);
    if (fw->state.has_applied) fw_line_uint(&l, "version", fw->state.mark.version);
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
      return st;
    }
    coap_opt_t *etag = coap_check_option(rcvd, COAP_OPTION_ETAG, &it);
    fw_status sst = fw_device_on_snapshot(fw, data, len, etag ? coap_opt_value(etag) : NULL, etag ? coap_opt_length(etag) : 0, via);
    if (sst != FW_OK) st = sst;
  }
  fw->link.ack_due = true;
  return st;
}

/*
 * An answer to the exchange a newer ack abandoned (newest ack first): it settles nothing. A late 2.04 to
 * a superseded ack does not mark anything acked (the newer ack's answer does that); a late answer to an
 * abandoned re-registration is not used as a registration (the one sent after the ack counts). NSTART
 * is 1 again. FW_OK, or the core's failure.
 */
static fw_status on_abandoned_answer(fw_ctx *fw, const coap_pdu_t *rcvd) {
  char code_s[8];
  henge_coap_code_text(coap_pdu_get_code(rcvd), code_s);
  fw_line l;
  fw_line_start(&l);
  bool ack = fw->link.abandoned.kind == HENGE_LINK_ABANDONED_ACK;
  if (ack) fw_line_uint(&l, "version", fw->link.abandoned.version);
  fw_line_str(&l, "code", code_s);
  fw_line_emit(&l, FW_DEBUG, ack ? "a late answer to a superseded ack; ignored" : "a late answer to an abandoned re-registration; ignored");
  henge_status hs = henge_coap_ended(&fw->link, fw->session, HENGE_LINK_RX_ABANDONED, (uint8_t)COAP_RESPONSE_CLASS(coap_pdu_get_code(rcvd)));
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_coap_ended", hs);
}

/* The hub's answer to the ack in flight. */
static fw_status on_ack_response(fw_ctx *fw, const coap_pdu_t *rcvd) {
  coap_pdu_code_t code = coap_pdu_get_code(rcvd);
  char code_s[8];
  henge_coap_code_text(code, code_s);
  uint8_t cls = (uint8_t)COAP_RESPONSE_CLASS(code);
  const henge_ack *sent = &fw->link.ack_sent;
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", sent->version);
  fw_line_str(&l, "status", henge_ack_status_name((henge_ack_status)sent->status));
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
  fw_status st = FW_OK;
  bool was_acked = fw->dev.applied_acked;
  henge_status hs = henge_device_on_ack_response(&fw->dev, sent, cls, (uint8_t)(code & 0x1f));
  if (hs != HENGE_OK) st = fw_device_core_failed("henge_device_on_ack_response", hs);
  if (fw->dev.applied_acked && !was_acked && fw->state.has_applied) {
    fw->state.acked = true;
    fw_status sst = fw_device_save_state(fw);
    if (sst != FW_OK) st = sst;
  }
  /* No longer in flight; due again (a newer ack may have become pending meanwhile) unless a 5.xx. */
  hs = henge_coap_ended(&fw->link, fw->session, HENGE_LINK_RX_ACK, cls);
  if (hs != HENGE_OK) st = fw_device_core_failed("henge_coap_ended", hs);
  return st;
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *rcvd, const coap_mid_t mid) {
  (void)mid;
  fw_ctx *fw = fw_of(session);
  if (fw == NULL || session != fw->session || fw->tearing_down) return COAP_RESPONSE_OK;
  coap_bin_const_t token = coap_pdu_get_token(rcvd);
  henge_link_rx rx = HENGE_LINK_RX_NONE;
  (void)henge_coap_rx_of(&fw->link, token, sent != NULL ? coap_pdu_get_mid(sent) : COAP_INVALID_MID, &rx); /* cannot fail: non-NULL pointers */
  if (rx == HENGE_LINK_RX_ABANDONED) {
    (void)on_abandoned_answer(fw, rcvd); /* logged */
    return COAP_RESPONSE_OK;
  }
  if (rx == HENGE_LINK_RX_CONFIG) {
    if (fw_log_enabled(FW_TRACE)) {
      fw_line l;
      fw_line_start(&l);
      char c[8];
      henge_coap_code_text(coap_pdu_get_code(rcvd), c);
      fw_line_str(&l, "code", c);
      fw_line_bool(&l, "answer", sent != NULL);
      fw_line_emit(&l, FW_TRACE, "config message");
    }
    /* A failure is logged; the next registration fetches the snapshot again. */
    (void)on_config_response(fw, sent, rcvd);
    return COAP_RESPONSE_OK;
  }
  if (rx == HENGE_LINK_RX_ACK) {
    /* A state.json that cannot be saved is logged; the hub has the ack either way. */
    (void)on_ack_response(fw, rcvd);
    return COAP_RESPONSE_OK;
  }
  if (rx == HENGE_LINK_RX_TELEMETRY) {
    (void)henge_coap_ended(&fw->link, fw->session, rx, (uint8_t)COAP_RESPONSE_CLASS(coap_pdu_get_code(rcvd))); /* cannot fail: non-NULL pointers */
    char c[8];
    henge_coap_code_text(coap_pdu_get_code(rcvd), c);
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "code", c);
    fw_line_emit(&l, FW_DEBUG, "telemetry sent");
    return COAP_RESPONSE_OK;
  }
  if (henge_coap_token_is(token, fw->dereg_token, fw->dereg_token_len)) {
    fw->dereg_answered = true;
    henge_coap_code_text(coap_pdu_get_code(rcvd), fw->dereg_code);
    return COAP_RESPONSE_OK;
  }
  /* Not ours (an old relation's notification): RST it, so the hub forgets it (RFC 7641 §3.6). */
  coap_pdu_type_t type = coap_pdu_get_type(rcvd);
  if (sent == NULL && (type == COAP_MESSAGE_CON || type == COAP_MESSAGE_NON)) return COAP_RESPONSE_FAIL;
  return COAP_RESPONSE_OK;
}

/* The exchange `rx` names ended without an answer (henge_link_ended). FW_OK, or the failure, logged. */
static fw_status on_unanswered(fw_ctx *fw, henge_link_rx rx) {
  henge_status hs = henge_coap_ended(&fw->link, fw->session, rx, HENGE_LINK_UNANSWERED);
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_coap_ended", hs);
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid) {
  fw_ctx *fw = fw_of(session);
  if (fw == NULL || session != fw->session || fw->tearing_down) return;
  if (reason == COAP_NACK_TLS_FAILED) {
    fw_link_fail(fw, false, "no DTLS session: the handshake failed (a wrong key, a device the hub does not know, or not a henge hub's coaps port)");
    return;
  }
  coap_bin_const_t token = {0, NULL};
  if (sent != NULL) token = coap_pdu_get_token(sent);
  if (reason == COAP_NACK_ICMP_ISSUE) {
    fw_log(FW_DEBUG, "ICMP: the hub's port is unreachable for now; retransmitting");
    return;
  }
  henge_link_rx rx = HENGE_LINK_RX_NONE;
  (void)henge_coap_rx_of(&fw->link, token, sent != NULL ? mid : COAP_INVALID_MID, &rx); /* cannot fail: non-NULL pointers */
  switch (rx) {
    case HENGE_LINK_RX_ABANDONED: /* the exchange an ack abandoned ended unanswered (or reset): NSTART 1 again, nothing else */
      (void)on_unanswered(fw, rx); /* logged */
      fw_log(FW_DEBUG, "the abandoned exchange ended without an answer");
      return;
    case HENGE_LINK_RX_TELEMETRY: /* telemetry goes once; its loss is no failure */
      (void)on_unanswered(fw, rx);
      return;
    case HENGE_LINK_RX_ACK: { /* still pending: it goes again after the next registration */
      (void)on_unanswered(fw, rx);
      fw_line l;
      fw_line_start(&l);
      fw_line_uint(&l, "version", fw->link.ack_sent.version);
      fw_line_emit(&l, FW_WARN, "the ack got no answer; sending it again after the next registration");
      return;
    }
    default:
      break;
  }
  if (rx == HENGE_LINK_RX_CONFIG || sent == NULL) {
    if (reason == COAP_NACK_RST) fw_link_fail(fw, true, "the hub reset the registration (RST)");
    else if (reason == COAP_NACK_TOO_MANY_RETRIES) fw_link_fail(fw, false, "no answer to the registration after 4 retransmissions");
    else fw_link_fail(fw, false, "the registration could not be delivered");
  }
}

static int on_event(coap_session_t *session, const coap_event_t event) {
  fw_ctx *fw = fw_of(session);
  if (fw == NULL || session != fw->session || fw->tearing_down) return 0;
  switch (event) {
    case COAP_EVENT_DTLS_CONNECTED:
      fw->dtls_open = true;
      fw_log(FW_DEBUG, "DTLS session open");
      break;
    case COAP_EVENT_DTLS_CLOSED:
      fw_link_fail(fw, false, fw->dtls_open ? "DTLS session ended (the hub closed it or restarted)"
                                            : "no DTLS session: the handshake got no answer (is the hub running, on this coaps port?)");
      break;
    case COAP_EVENT_DTLS_ERROR:
      fw_link_fail(fw, false, "no DTLS session: the handshake failed (a wrong key, a device the hub does not know, or not a henge hub's coaps port)");
      break;
    case COAP_EVENT_SESSION_FAILED:
    case COAP_EVENT_SESSION_CLOSED:
      fw_link_fail(fw, false, "the session to the hub ended");
      break;
    case COAP_EVENT_PARTIAL_BLOCK:
      fw_log(FW_WARN, "a block-wise transfer was incomplete; the next registration fetches the snapshot again");
      break;
    default:
      break;
  }
  return 0;
}

void fw_link_rx_log(coap_log_t level, const char *message) {
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

void fw_link_rx_install(coap_context_t *ctx) {
  coap_register_response_handler(ctx, on_response);
  coap_register_nack_handler(ctx, on_nack);
  coap_register_event_handler(ctx, on_event);
}

/*
 * link.c: the CoAP session and the requests henge-fw sends (link.h), one exchange of its own at a time,
 * newest ack first (fw_link_pump; docs/firmware.md, "Newest ack first").
 *
 * What goes next, and when, is decided by ports/common/henge_link.c (the same for the microcontroller
 * client); this file carries it out on libcoap and logs it.
 *
 * Functions that can fail return an fw_status. Four cannot and return nothing: fw_link_fail (it
 * records a reason), log_abandoned (a log line), fw_link_teardown and fw_link_stop (they release what
 * libcoap holds).
 */
#include "link.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "device_io.h"
#include "henge_coap.h"
#include "fw_log.h"
#include "link_rx.h"
#include "sys.h"

void fw_link_fail(fw_ctx *fw, bool refused, const char *reason) {
  if (fw->session_failed) return;
  fw->session_failed = true;
  fw->fail_refused = refused;
  snprintf(fw->fail_reason, sizeof fw->fail_reason, "%s", reason);
}

/* ---------------------------------------------------------------------------------------------- */
/* requests                                                                                        */

/* A CON request with the given token, into *out. FW_OK or FW_E_COAP. */
static fw_status new_request(fw_ctx *fw, coap_pdu_code_t code, const uint8_t *token, size_t token_len, coap_pdu_t **out) {
  coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(fw->session), coap_session_max_pdu_size(fw->session));
  if (pdu == NULL) return FW_E_COAP;
  if (!coap_add_token(pdu, token_len, token)) {
    coap_delete_pdu(pdu);
    return FW_E_COAP;
  }
  *out = pdu;
  return FW_OK;
}

static fw_status add_option(coap_pdu_t *pdu, coap_option_num_t number, size_t len, const uint8_t *data) {
  return coap_add_option(pdu, number, len, data) != 0 ? FW_OK : FW_E_COAP;
}

/* A shared helper's status as the port's: libcoap refused to add to the PDU. */
static fw_status pdu_status(henge_status st) { return st == HENGE_OK ? FW_OK : FW_E_COAP; }

/* A GET of /d/{id}/c with the applied snapshot's ETag and Observe `observe` (0 register, 1 deregister). */
static fw_status config_request(fw_ctx *fw, const uint8_t *token, size_t token_len, uint32_t observe, coap_pdu_t **out) {
  coap_pdu_t *pdu = NULL;
  fw_status st = new_request(fw, COAP_REQUEST_CODE_GET, token, token_len, &pdu);
  if (st != FW_OK) return st;
  uint8_t buf[4];
  if (fw->state.has_applied) st = add_option(pdu, COAP_OPTION_ETAG, HENGE_HASH_BYTES, fw->state.mark.hash);
  if (st == FW_OK) st = add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof buf, observe), buf);
  if (st == FW_OK) st = pdu_status(henge_coap_add_path(pdu, fw->cfg.id, "c"));
  if (st != FW_OK) {
    coap_delete_pdu(pdu);
    return st;
  }
  *out = pdu;
  return FW_OK;
}

/* A POST of CBOR `payload` to /d/{id}/{resource} with a new token (written to token, *token_len), its message id into *mid. */
static fw_status post_cbor(fw_ctx *fw, const char *resource, const uint8_t *payload, size_t n, uint8_t token[8], size_t *token_len, coap_mid_t *mid) {
  *token_len = 8;
  coap_session_new_token(fw->session, token_len, token);
  coap_pdu_t *pdu = NULL;
  fw_status st = new_request(fw, COAP_REQUEST_CODE_POST, token, *token_len, &pdu);
  if (st != FW_OK) return st;
  st = pdu_status(henge_coap_add_path(pdu, fw->cfg.id, resource));
  if (st == FW_OK) st = pdu_status(henge_coap_add_cbor(pdu, payload, n));
  if (st != FW_OK) {
    coap_delete_pdu(pdu);
    return st;
  }
  *mid = coap_send(fw->session, pdu);
  return *mid == COAP_INVALID_MID ? FW_E_COAP : FW_OK;
}

fw_status fw_link_register(fw_ctx *fw) {
  if (fw->session == NULL) return FW_E_COAP;
  coap_pdu_t *pdu = NULL;
  fw_status st = config_request(fw, fw->link.obs_token, fw->link.obs_token_len, COAP_OBSERVE_ESTABLISH, &pdu);
  if (st != FW_OK) return st;
  coap_mid_t mid = coap_send(fw->session, pdu);
  if (mid == COAP_INVALID_MID) {
    fw_link_fail(fw, false, "could not send the registration");
    return FW_E_COAP;
  }
  henge_status hs = henge_link_registration_sent(&fw->link, mid, fw_now_ms());
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_link_registration_sent", hs);
}

/* The abandoned exchange's span is over (libcoap gave it up without a word, e.g. after an empty ACK). */
static fw_status expire_abandoned(fw_ctx *fw, uint64_t now) {
  bool ended = false;
  henge_status hs = henge_coap_expire(&fw->link, fw->session, now, &ended);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_coap_expire", hs);
  if (ended) fw_log(FW_DEBUG, "the abandoned exchange's span is over");
  return FW_OK;
}

/* Newest ack first: the exchange in flight that henge_link_next abandoned for the ack (it runs on in libcoap, its answer ignored). */
static void log_abandoned(const fw_ctx *fw, henge_link_action action) {
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", fw->dev.pending.version);
  if (action == HENGE_LINK_ACK_SUPERSEDES) {
    fw_line_uint(&l, "supersedes", fw->link.abandoned.version);
    fw_line_emit(&l, FW_DEBUG, "newest ack first: the ack in flight is superseded (its answer will be ignored)");
  } else {
    fw_line_emit(&l, FW_DEBUG, "newest ack first: the re-registration in flight yields to the ack; registering again after it");
  }
}

fw_status fw_link_pump(fw_ctx *fw, bool ack_only) {
  if (fw->session == NULL || !fw->link.up || fw->session_failed) return FW_OK;
  uint64_t now = fw_now_ms();
  fw_status st = expire_abandoned(fw, now);
  unsigned flags = (ack_only ? HENGE_LINK_ACK_ONLY : 0u) | (fw->hook_busy ? HENGE_LINK_ACK_HELD : 0u); /* a hook's ack waits for its end */
  henge_link_action action = HENGE_LINK_IDLE;
  henge_status hs = henge_coap_next(&fw->link, fw->session, &fw->dev, now, flags, &action);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_coap_next", hs);
  fw_status sst = FW_OK;
  switch (action) {
    case HENGE_LINK_REGISTER:
      sst = fw_link_register(fw);
      break;
    case HENGE_LINK_ACK_SUPERSEDES:
    case HENGE_LINK_ACK_BEFORE_REREGISTRATION:
      log_abandoned(fw, action);
      sst = fw_link_send_ack(fw);
      break;
    case HENGE_LINK_SEND_ACK:
      sst = fw_link_send_ack(fw); /* an ack is pending: it goes, or its failure is returned */
      break;
    case HENGE_LINK_SEND_TELEMETRY:
      sst = fw_link_send_telemetry(fw);
      break;
    default:
      break;
  }
  return sst != FW_OK ? sst : st;
}

fw_status fw_link_next_ms(const fw_ctx *fw, uint64_t *at_ms) {
  if (fw == NULL || at_ms == NULL) return FW_E_COAP;
  *at_ms = UINT64_MAX;
  if (fw->session == NULL || fw->session_failed) return FW_OK;
  return henge_link_next_ms(&fw->link, at_ms) == HENGE_OK ? FW_OK : FW_E_COAP;
}

fw_status fw_link_check_registration(fw_ctx *fw) {
  if (fw == NULL) return FW_E_COAP;
  if (fw->session == NULL || fw->session_failed) return FW_OK;
  bool overdue = false;
  henge_status hs = henge_link_registration_overdue(&fw->link, fw_now_ms(), &overdue);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_link_registration_overdue", hs);
  if (overdue) fw_link_fail(fw, false, "no answer to the registration in 15 s");
  return FW_OK;
}

fw_status fw_link_send_ack(fw_ctx *fw) {
  if (fw->session == NULL || fw->link.ack_in_flight) return FW_OK;
  const henge_ack *a;
  henge_status hs = henge_device_pending(&fw->dev, &a);
  if (hs == HENGE_E_NOT_FOUND) return FW_OK;
  if (hs != HENGE_OK) return fw_device_core_failed("henge_device_pending", hs);
  uint8_t payload[HENGE_ACK_MAX_BYTES];
  size_t n = 0;
  hs = henge_ack_encode(a, payload, sizeof payload, &n);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_ack_encode", hs);
  uint8_t token[8];
  size_t token_len = 0;
  coap_mid_t mid = COAP_INVALID_MID;
  fw_status st = post_cbor(fw, "a", payload, n, token, &token_len, &mid);
  if (st != FW_OK) return st;
  hs = henge_link_ack_sent(&fw->link, a, token, token_len, mid, fw_now_ms());
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_link_ack_sent", hs);
}

fw_status fw_link_send_telemetry(fw_ctx *fw) {
  if (fw->link.telemetry_sent || fw->session == NULL) return FW_OK;
  char name[128];
  int len = snprintf(name, sizeof name, "%s libcoap/%s", FW_NAME, fw_libcoap_version());
  uint8_t payload[160];
  size_t n = 0;
  henge_status hs = henge_telemetry_encode_agent(name, (size_t)len, payload, sizeof payload, &n);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_telemetry_encode_agent", hs);
  uint8_t token[8];
  size_t token_len = 0;
  coap_mid_t mid = COAP_INVALID_MID;
  fw_status st = post_cbor(fw, "t", payload, n, token, &token_len, &mid);
  if (st != FW_OK) return st;
  hs = henge_link_telemetry_sent(&fw->link, token, token_len);
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_link_telemetry_sent", hs);
}

fw_status fw_link_deregister(fw_ctx *fw) {
  if (fw->session == NULL || !fw->link.up) return FW_OK;
  fw->dereg_token_len = sizeof fw->dereg_token;
  coap_session_new_token(fw->session, &fw->dereg_token_len, fw->dereg_token);
  coap_pdu_t *pdu = NULL;
  fw_status st = config_request(fw, fw->dereg_token, fw->dereg_token_len, COAP_OBSERVE_CANCEL, &pdu);
  if (st != FW_OK) return st;
  if (coap_send(fw->session, pdu) == COAP_INVALID_MID) return FW_E_COAP;
  uint64_t until = fw_now_ms() + FW_DEREGISTER_WAIT_MS;
  while (!fw->dereg_answered && !fw->session_failed && fw_now_ms() < until) coap_io_process(fw->ctx, 50);
  fw_line l;
  fw_line_start(&l);
  if (fw->dereg_answered) {
    fw_line_str(&l, "code", fw->dereg_code);
    fw_line_emit(&l, FW_INFO, "deregistered");
    return FW_OK;
  }
  fw_line_emit(&l, FW_WARN, "deregistration got no answer");
  return FW_E_COAP;
}

/* ---------------------------------------------------------------------------------------------- */
/* sessions                                                                                        */

/*
 * One libcoap context per connection. Freeing the context deletes its retransmission queue before its
 * sessions: libcoap 4.3.1 moves a CON that met an ICMP error into that queue with a reference to a
 * session we are about to drop, and later retransmits on (and logs) the freed session (ASan found it:
 * a use-after-free or a leak after a failed DTLS handshake). Releasing the whole context avoids that.
 * The handlers find `fw` through the context's app data.
 */
static fw_status new_context(fw_ctx *fw) {
  fw->ctx = coap_new_context(NULL);
  if (fw->ctx == NULL) return FW_E_COAP;
  coap_set_app_data(fw->ctx, fw);
  coap_context_set_block_mode(fw->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  fw_link_rx_install(fw->ctx);
  return FW_OK;
}

void fw_link_teardown(fw_ctx *fw) {
  fw->tearing_down = true;
  if (fw->session != NULL) {
    coap_session_t *s = fw->session;
    fw->session = NULL;
    coap_session_release(s);
  }
  if (fw->ctx != NULL) {
    coap_free_context(fw->ctx);
    fw->ctx = NULL;
  }
  fw->tearing_down = false;
  /* A new session makes its tokens afresh (the same sequence): forget the old session's. */
  fw->dereg_token_len = 0;
  (void)henge_link_reset(&fw->link); /* down, nothing in flight or abandoned; cannot fail with a non-NULL pointer */
}

/* The hub's address (the name resolved now). FW_OK, or FW_E_COAP with the reason in err. */
static fw_status resolve_hub(const fw_ctx *fw, coap_address_t *addr, char *err, size_t cap) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  char port[8];
  snprintf(port, sizeof port, "%u", fw->cfg.port);
  hints.ai_flags = AI_NUMERICSERV;
  int r = getaddrinfo(fw->cfg.host, port, &hints, &res);
  if (r != 0 || res == NULL) {
    snprintf(err, cap, "cannot resolve %s: %s", fw->cfg.host, gai_strerror(r));
    return FW_E_COAP;
  }
  coap_address_init(addr);
  addr->size = (socklen_t)res->ai_addrlen;
  memcpy(&addr->addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return FW_OK;
}

fw_status fw_link_connect(fw_ctx *fw) {
  char err[300];
  coap_address_t addr;
  fw->session_failed = false;
  fw->dtls_open = false;
  if (fw->cfg.hub == NULL) {
    /* No --hub: find it over mDNS before every connection (it may have moved), keeping the pinned id. */
    uint16_t port = 0;
    henge_status hs = henge_device_discover(&fw->dev, fw->cfg.host, sizeof fw->cfg.host, &port);
    if (hs != HENGE_OK) {
      fw_link_fail(fw, false, fw->discover_err[0] ? fw->discover_err : henge_status_name(hs));
      return FW_E_COAP;
    }
    fw->cfg.port = port;
  }
  fw_status st = resolve_hub(fw, &addr, err, sizeof err);
  if (st != FW_OK) {
    fw_link_fail(fw, false, err);
    return st;
  }
  st = new_context(fw);
  if (st != FW_OK) {
    fw_link_fail(fw, false, "cannot create a libcoap context");
    return st;
  }
  if (fw->has_key) {
    coap_dtls_cpsk_t psk;
    memset(&psk, 0, sizeof psk);
    psk.version = COAP_DTLS_CPSK_SETUP_VERSION;
    /* Identity: the device id. The key: the ASCII bytes of the key text (docs/protocol.md, "Security"). */
    psk.psk_info.identity.s = (const uint8_t *)fw->cfg.id;
    psk.psk_info.identity.length = strlen(fw->cfg.id);
    psk.psk_info.key.s = (const uint8_t *)fw->key;
    psk.psk_info.key.length = strlen(fw->key);
    fw->session = coap_new_client_session_psk2(fw->ctx, NULL, &addr, COAP_PROTO_DTLS, &psk);
  } else {
    fw->session = coap_new_client_session(fw->ctx, NULL, &addr, COAP_PROTO_UDP);
  }
  if (fw->session == NULL) {
    fw_link_fail(fw, false, fw->has_key ? "cannot open a DTLS session (libcoap)" : "cannot open a UDP session (libcoap)");
    return FW_E_COAP;
  }
  /* henge-fw deregisters itself on shutdown; when a session ends because the hub went away there is
     nobody to tell. (libcoap 4.3.1's own cancel on release also leaks its PDU when the session is dead.) */
  coap_session_set_no_observe_cancel(fw->session);
  return fw_link_register(fw);
}

/* ---------------------------------------------------------------------------------------------- */
/* libcoap itself                                                                                  */

fw_status fw_link_start(fw_ctx *fw) {
  coap_startup();
  coap_set_log_handler(fw_link_rx_log);
  coap_set_log_level(fw->cfg.log_level <= FW_TRACE ? LOG_DEBUG : fw->cfg.log_level <= FW_DEBUG ? LOG_INFO : LOG_WARNING);
  if (fw->has_key && !coap_dtls_is_supported()) {
    fprintf(stderr, "henge-fw: this libcoap has no DTLS: build against libcoap-3-openssl or -gnutls\n");
    return FW_E_COAP;
  }
  uint32_t t = fw_random32();
  uint8_t obs_token[4];
  memcpy(obs_token, &t, sizeof obs_token);
  henge_status hs = henge_link_init(&fw->link, obs_token, sizeof obs_token);
  return hs == HENGE_OK ? FW_OK : fw_device_core_failed("henge_link_init", hs);
}

void fw_link_stop(fw_ctx *fw) {
  fw_link_teardown(fw);
  coap_cleanup();
}

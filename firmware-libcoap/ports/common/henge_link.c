/* henge_link.c: see henge_link.h. */
#include "henge_link.h"

#include <string.h>

/* The keepalive when the core cannot say (its random source failed). */
#define FALLBACK_KEEPALIVE_MS 1000u

static bool token_is(const uint8_t *t, size_t t_len, const uint8_t *tok, size_t len) {
  return len > 0 && t_len == len && t != NULL && memcmp(t, tok, len) == 0;
}

/* The device's own exchange in flight (an abandoned one is libcoap's business now). */
static bool own_in_flight(const henge_link *l) { return l->reg_in_flight || l->ack_in_flight || l->tel_in_flight; }

henge_status henge_link_init(henge_link *l, const uint8_t *obs_token, size_t obs_token_len) {
  if (l == NULL || obs_token == NULL || obs_token_len == 0 || obs_token_len > HENGE_LINK_TOKEN_MAX) return HENGE_E_ARG;
  memset(l, 0, sizeof *l);
  memcpy(l->obs_token, obs_token, obs_token_len);
  l->obs_token_len = obs_token_len;
  l->reg_mid = l->ack_mid = l->abandoned.mid = HENGE_LINK_NO_MID;
  return HENGE_OK;
}

static void forget_abandoned(henge_link *l) {
  memset(&l->abandoned, 0, sizeof l->abandoned);
  l->abandoned.mid = HENGE_LINK_NO_MID;
}

henge_status henge_link_reset(henge_link *l) {
  if (l == NULL) return HENGE_E_ARG;
  l->up = false;
  /* A new session makes its tokens afresh (the same sequence): forget the old session's. */
  l->ack_token_len = l->tel_token_len = 0;
  l->reg_in_flight = false;
  l->reg_wanted_ms = 0;
  l->observing = false;
  l->ack_in_flight = false;
  l->tel_in_flight = false;
  forget_abandoned(l); /* gone with the context */
  return HENGE_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* what to send next                                                                               */

/* The exchange in flight is abandoned: it runs on in libcoap, its answer ignored, until `sent_ms` + its span. */
static henge_status abandon(henge_link *l, henge_link_abandoned_kind kind, const uint8_t *token, size_t token_len, int mid, uint64_t version,
                            uint64_t sent_ms) {
  if (token_len == 0 || token_len > sizeof l->abandoned.token || l->abandoned.kind != HENGE_LINK_ABANDONED_NONE) return HENGE_E_ARG;
  l->abandoned.kind = kind;
  memcpy(l->abandoned.token, token, token_len);
  l->abandoned.token_len = token_len;
  l->abandoned.mid = mid;
  l->abandoned.version = version;
  l->abandoned.until_ms = sent_ms + HENGE_LINK_EXCHANGE_SPAN_MS;
  return HENGE_OK;
}

/*
 * An exchange of the device's own is in flight and the ack is wanted. If that exchange is an ack the
 * pending one supersedes, or a re-registration of the relation the device holds, it is abandoned (the
 * re-registration is due again: it goes right after the ack) and the ack goes now, beside it. Otherwise
 * (the same ack, the first registration, the telemetry, or an abandoned exchange still running) the ack
 * waits.
 */
static henge_status ack_beside(henge_link *l, const henge_device *dev, henge_link_action *action) {
  if (l->abandoned.kind != HENGE_LINK_ABANDONED_NONE) return HENGE_OK; /* one at a time: two exchanges outstanding at most */
  const henge_ack *a;
  henge_status st = henge_device_pending(dev, &a);
  if (st != HENGE_OK) {
    l->ack_due = false;
    return st == HENGE_E_NOT_FOUND ? HENGE_OK : st;
  }
  if (l->ack_in_flight) {
    bool supersedes = false;
    st = henge_device_ack_supersedes(dev, &l->ack_sent, &supersedes);
    if (st != HENGE_OK) return st;
    if (!supersedes) {
      l->ack_due = false; /* this very ack is on its way; its answer makes the ack due again */
      return HENGE_OK;
    }
    st = abandon(l, HENGE_LINK_ABANDONED_ACK, l->ack_token, l->ack_token_len, l->ack_mid, l->ack_sent.version, l->ack_sent_ms);
    if (st != HENGE_OK) return st;
    l->ack_in_flight = false;
    *action = HENGE_LINK_ACK_SUPERSEDES;
  } else if (l->reg_in_flight && l->observing) {
    st = abandon(l, HENGE_LINK_ABANDONED_REGISTRATION, l->obs_token, l->obs_token_len, l->reg_mid, 0, l->reg_sent_ms);
    if (st != HENGE_OK) return st;
    l->reg_in_flight = false;
    l->next_keepalive_ms = l->reg_sent_ms; /* due: it goes right after the ack */
    *action = HENGE_LINK_ACK_BEFORE_REREGISTRATION;
  } else {
    return HENGE_OK;
  }
  l->ack_due = false;
  return HENGE_OK;
}

henge_status henge_link_next(henge_link *l, const henge_device *dev, uint64_t now_ms, unsigned flags, henge_link_action *action) {
  if (l == NULL || dev == NULL || action == NULL) return HENGE_E_ARG;
  *action = HENGE_LINK_IDLE;
  if (!l->up) return HENGE_OK;
  bool ack_only = (flags & HENGE_LINK_ACK_ONLY) != 0;
  bool ack_wanted = l->ack_due && (flags & HENGE_LINK_ACK_HELD) == 0;
  if (own_in_flight(l)) return ack_wanted ? ack_beside(l, dev, action) : HENGE_OK;
  bool reg_due = !ack_only && now_ms >= l->next_keepalive_ms;
  if (reg_due && !l->observing) {
    *action = HENGE_LINK_REGISTER; /* no relation: registering comes first */
    return HENGE_OK;
  }
  if (ack_wanted) {
    l->ack_due = false;
    const henge_ack *a;
    henge_status st = henge_device_pending(dev, &a);
    if (st == HENGE_OK) {
      *action = HENGE_LINK_SEND_ACK;
      return HENGE_OK;
    }
    if (st != HENGE_E_NOT_FOUND) return st;
  }
  if (reg_due) *action = HENGE_LINK_REGISTER;
  else if (!ack_only && !l->telemetry_sent) *action = HENGE_LINK_SEND_TELEMETRY;
  return HENGE_OK;
}

bool henge_link_abandons(henge_link_action action) {
  return action == HENGE_LINK_ACK_SUPERSEDES || action == HENGE_LINK_ACK_BEFORE_REREGISTRATION;
}

henge_status henge_link_next_ms(const henge_link *l, uint64_t *at_ms) {
  if (l == NULL || at_ms == NULL) return HENGE_E_ARG;
  *at_ms = UINT64_MAX;
  if (!l->up) return HENGE_OK;
  if (l->abandoned.kind != HENGE_LINK_ABANDONED_NONE) *at_ms = l->abandoned.until_ms;
  if (!own_in_flight(l) && l->next_keepalive_ms < *at_ms) *at_ms = l->next_keepalive_ms;
  return HENGE_OK;
}

henge_status henge_link_registration_overdue(const henge_link *l, uint64_t now_ms, bool *overdue) {
  if (l == NULL || overdue == NULL) return HENGE_E_ARG;
  *overdue = false;
  uint64_t since;
  if (l->reg_wanted_ms != 0) since = l->reg_wanted_ms;
  else if (l->up && now_ms >= l->next_keepalive_ms) since = l->next_keepalive_ms; /* due, held behind an exchange */
  else return HENGE_OK;
  *overdue = now_ms > since + HENGE_LINK_REGISTER_TIMEOUT_MS;
  return HENGE_OK;
}

henge_status henge_link_refresh(henge_link *l, uint64_t now_ms, bool *due) {
  if (l == NULL || due == NULL) return HENGE_E_ARG;
  *due = l->up && !l->reg_in_flight;
  if (*due) l->next_keepalive_ms = now_ms;
  return HENGE_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* what was sent                                                                                   */

henge_status henge_link_registration_sent(henge_link *l, int mid, uint64_t now_ms) {
  if (l == NULL) return HENGE_E_ARG;
  /* Wanted since it fell due (it may have waited for the ack), or since the one it replaces was sent. */
  if (l->reg_wanted_ms == 0) l->reg_wanted_ms = l->up && l->next_keepalive_ms < now_ms ? l->next_keepalive_ms : now_ms;
  l->reg_in_flight = true;
  l->reg_sent_ms = now_ms;
  l->reg_mid = mid;
  return HENGE_OK;
}

henge_status henge_link_ack_sent(henge_link *l, const henge_ack *ack, const uint8_t *token, size_t token_len, int mid, uint64_t now_ms) {
  if (l == NULL || ack == NULL || token == NULL || token_len == 0 || token_len > sizeof l->ack_token) return HENGE_E_ARG;
  if (ack->message != NULL && ack->message_len > sizeof l->ack_sent_msg) return HENGE_E_ARG;
  memcpy(l->ack_token, token, token_len);
  l->ack_token_len = token_len;
  l->ack_mid = mid;
  l->ack_sent_ms = now_ms;
  l->ack_sent = *ack;
  if (ack->message != NULL) {
    memcpy(l->ack_sent_msg, ack->message, ack->message_len);
    l->ack_sent.message = l->ack_sent_msg;
  }
  l->ack_in_flight = true;
  return HENGE_OK;
}

henge_status henge_link_telemetry_sent(henge_link *l, const uint8_t *token, size_t token_len) {
  if (l == NULL || token == NULL || token_len == 0 || token_len > sizeof l->tel_token) return HENGE_E_ARG;
  memcpy(l->tel_token, token, token_len);
  l->tel_token_len = token_len;
  l->telemetry_sent = l->tel_in_flight = true;
  return HENGE_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* what came back                                                                                  */

henge_status henge_link_rx_of(const henge_link *l, const uint8_t *token, size_t token_len, int mid, henge_link_rx *rx) {
  if (l == NULL || rx == NULL || (token == NULL && token_len != 0)) return HENGE_E_ARG;
  const henge_link_abandoned *a = &l->abandoned;
  if (a->kind == HENGE_LINK_ABANDONED_ACK ? token_is(token, token_len, a->token, a->token_len)
                                          : a->kind == HENGE_LINK_ABANDONED_REGISTRATION && mid != HENGE_LINK_NO_MID && mid == a->mid)
    *rx = HENGE_LINK_RX_ABANDONED;
  else if (token_is(token, token_len, l->obs_token, l->obs_token_len))
    *rx = HENGE_LINK_RX_CONFIG;
  else if (l->ack_in_flight && token_is(token, token_len, l->ack_token, l->ack_token_len))
    *rx = HENGE_LINK_RX_ACK;
  else if (token_is(token, token_len, l->tel_token, l->tel_token_len))
    *rx = HENGE_LINK_RX_TELEMETRY;
  else
    *rx = HENGE_LINK_RX_NONE;
  return HENGE_OK;
}

henge_status henge_link_ended(henge_link *l, henge_link_rx rx, uint8_t code_class, bool *was_abandoned) {
  if (l == NULL) return HENGE_E_ARG;
  if (was_abandoned != NULL) *was_abandoned = false;
  switch (rx) {
    case HENGE_LINK_RX_ABANDONED:
      if (was_abandoned != NULL) *was_abandoned = l->abandoned.kind != HENGE_LINK_ABANDONED_NONE;
      forget_abandoned(l);
      break;
    case HENGE_LINK_RX_ACK:
      l->ack_in_flight = false;
      if (code_class != HENGE_LINK_UNANSWERED && code_class != 5) l->ack_due = true; /* a newer ack may have become pending meanwhile */
      break;
    case HENGE_LINK_RX_TELEMETRY:
      l->tel_in_flight = false; /* telemetry goes once; its loss is no failure */
      break;
    default:
      break;
  }
  return HENGE_OK;
}

henge_status henge_link_expire(henge_link *l, uint64_t now_ms, bool *ended) {
  if (l == NULL || ended == NULL) return HENGE_E_ARG;
  *ended = l->abandoned.kind != HENGE_LINK_ABANDONED_NONE && now_ms >= l->abandoned.until_ms;
  if (*ended) forget_abandoned(l);
  return HENGE_OK;
}

henge_status henge_link_token_cancelled(henge_link *l, bool *abandoned_ended, bool *reregistration_ended) {
  if (l == NULL || abandoned_ended == NULL || reregistration_ended == NULL) return HENGE_E_ARG;
  *abandoned_ended = *reregistration_ended = false;
  if (!l->up) return HENGE_OK;
  if (l->abandoned.kind == HENGE_LINK_ABANDONED_REGISTRATION) {
    forget_abandoned(l);
    *abandoned_ended = true;
  }
  if (l->reg_in_flight && l->observing) {
    l->reg_in_flight = false;
    l->next_keepalive_ms = l->reg_sent_ms; /* due: it goes right after the ack */
    *reregistration_ended = true;
  }
  return HENGE_OK;
}

henge_status henge_link_config_answer(henge_link *l, henge_device *dev, uint64_t now_ms, bool observe, uint32_t max_age_s, henge_link_config *out) {
  if (l == NULL || dev == NULL || out == NULL) return HENGE_E_ARG;
  memset(out, 0, sizeof *out);
  out->registration = l->reg_in_flight;
  l->observing = observe;
  if (!out->registration) {
    if (!observe) l->next_keepalive_ms = now_ms; /* outside a registration: the relation may have ended; re-register now */
    return HENGE_OK;
  }
  l->reg_in_flight = false;
  l->reg_wanted_ms = 0;
  henge_status st = HENGE_OK;
  if (!observe) {
    /* No relation. libcoap also drops Observe when a Block2 transfer restarts after an ETag change:
       re-register once at once before believing the hub. */
    if (++l->reg_without_observe >= 2) {
      out->no_relation = true;
      return HENGE_OK;
    }
    l->next_keepalive_ms = now_ms;
  } else {
    l->reg_without_observe = 0;
    uint32_t delay = FALLBACK_KEEPALIVE_MS;
    st = henge_device_keepalive_delay(dev, max_age_s, &delay);
    if (st != HENGE_OK) delay = FALLBACK_KEEPALIVE_MS;
    l->next_keepalive_ms = now_ms + delay;
  }
  out->came_up = !l->up;
  l->up = true;
  return st;
}

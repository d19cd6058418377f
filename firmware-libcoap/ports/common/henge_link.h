/*
 * henge_link.h: the decisions of a device client's CoAP link to the hub, shared by both C clients
 * (henge-fw in ports/linux, the microcontroller client in ports/pico-w used by the Pico W and ESP32
 * ports): which of the device's own exchanges goes next (the registration, the ack, a re-registration,
 * the telemetry; newest ack first, docs/protocol.md, "Ack"), when something is due that no message will
 * announce, whether a registration has waited too long for its answer, and what an answer, a NACK or a
 * cancelled request means (docs/firmware.md, "Newest ack first (both C clients)").
 *
 * No libcoap, no clock, no I/O, no allocation: the client passes the time in, carries out what it is
 * told (the requests, their log lines in its own words, ending the session), and keeps the libcoap side
 * of an abandoned exchange (NSTART) through ports/common/henge_coap.h. Message ids are libcoap's
 * (coap_mid_t, an int; HENGE_LINK_NO_MID is its COAP_INVALID_MID). Every function returns a
 * henge_status: HENGE_E_ARG for a NULL pointer or a token that does not fit, nothing changed then.
 */
#ifndef HENGE_LINK_H
#define HENGE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "henge.h"

/* A registration wanted (in flight, or due and held behind an exchange in flight) this long without an answer ends the session. */
#define HENGE_LINK_REGISTER_TIMEOUT_MS 15000u

/*
 * The longest an exchange can last: RFC 7252 MAX_TRANSMIT_WAIT with libcoap's defaults (ACK_TIMEOUT 2 s,
 * ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4: 93 s), and a margin. By then libcoap has given it up, even if
 * no callback said so (an empty ACK stops its retransmissions silently).
 */
#define HENGE_LINK_EXCHANGE_SPAN_MS 95000u

/* No message id (libcoap's COAP_INVALID_MID): a notification answers no request of ours. */
#define HENGE_LINK_NO_MID (-1)

/* The longest token the link keeps (RFC 7252: 8 bytes). */
#define HENGE_LINK_TOKEN_MAX 8u

/*
 * Newest ack first on a libcoap that cannot end an exchange (4.3.1 has no public call for it): the
 * exchange a newer ack supersedes, an older ack or a re-registration, is abandoned but runs on inside
 * libcoap until it is answered, reset or given up; its answer is recognised and ignored. One at a time.
 */
typedef enum henge_link_abandoned_kind {
  HENGE_LINK_ABANDONED_NONE = 0,
  HENGE_LINK_ABANDONED_ACK = 1,         /* an ack POST: known by its token (each ack has its own) */
  HENGE_LINK_ABANDONED_REGISTRATION = 2 /* a re-registration: known by its message id (its token is the observation's) */
} henge_link_abandoned_kind;

typedef struct henge_link_abandoned {
  henge_link_abandoned_kind kind;
  uint8_t token[HENGE_LINK_TOKEN_MAX];
  size_t token_len;
  int mid;
  uint64_t version;  /* an abandoned ack's version (for the log) */
  uint64_t until_ms; /* over by then, whatever libcoap said */
} henge_link_abandoned;

/* What the link knows between two events. The client owns it (static storage or its own struct); henge_link_init first. */
typedef struct henge_link {
  bool up; /* a registration was answered since the session began (the "connected" line) */
  /* The registration: GET /d/{id}/c with Observe, the observation's token for the life of the client. */
  uint8_t obs_token[HENGE_LINK_TOKEN_MAX];
  size_t obs_token_len;
  bool observing; /* the relation is held: the last registration answer or notification had Observe */
  bool reg_in_flight;
  uint64_t reg_sent_ms;
  uint64_t reg_wanted_ms; /* since then a registration has been wanted and not answered (0: none is) */
  int reg_mid;
  int reg_without_observe;    /* registrations answered without Observe in a row */
  uint64_t next_keepalive_ms; /* a registration is due from then (in the past: at once, after the ack) */
  /* The ack: POST /d/{id}/a of the core's pending ack. */
  bool ack_due; /* the pending ack (if any) should go when the rules let it */
  bool ack_in_flight;
  uint64_t ack_sent_ms;
  henge_ack ack_sent; /* a copy of the ack as it was posted (its message in ack_sent_msg) */
  char ack_sent_msg[HENGE_ACK_MESSAGE_MAX];
  uint8_t ack_token[HENGE_LINK_TOKEN_MAX];
  size_t ack_token_len;
  int ack_mid;
  /* The telemetry: POST /d/{id}/t once per client. */
  bool telemetry_sent;
  bool tel_in_flight;
  uint8_t tel_token[HENGE_LINK_TOKEN_MAX];
  size_t tel_token_len;
  /* The exchange an ack superseded, running on in libcoap beside it (its answer ignored). */
  henge_link_abandoned abandoned;
} henge_link;

/* A new link (down, nothing in flight or due) with the observation's token (1 to 8 bytes). */
henge_status henge_link_init(henge_link *l, const uint8_t *obs_token, size_t obs_token_len);

/*
 * The session is gone (its libcoap context freed): down, nothing in flight, no relation, no abandoned
 * exchange, the tokens of the old session forgotten. The observation's token, the ack due, the keepalive
 * and whether the telemetry went stay.
 */
henge_status henge_link_reset(henge_link *l);

/* ---------------------------------------------------------------------------------------------- */
/* what to send next                                                                               */

typedef enum henge_link_action {
  HENGE_LINK_IDLE = 0,      /* nothing now */
  HENGE_LINK_REGISTER = 1,  /* GET /d/{id}/c, Observe 0 (then henge_link_registration_sent) */
  HENGE_LINK_SEND_ACK = 2,  /* POST the core's pending ack (then henge_link_ack_sent) */
  /* The ack in flight is superseded and abandoned now (l->abandoned: its version): NSTART 2, then POST
     the pending ack beside it. */
  HENGE_LINK_ACK_SUPERSEDES = 3,
  /* The re-registration in flight yields to the pending ack: abandoned now, and due again (it goes right
     after the ack). NSTART 2, then POST the ack beside it. */
  HENGE_LINK_ACK_BEFORE_REREGISTRATION = 4,
  HENGE_LINK_SEND_TELEMETRY = 5 /* POST {"_agent": ...} (then henge_link_telemetry_sent) */
} henge_link_action;

/* henge_link_next's flags. */
#define HENGE_LINK_ACK_ONLY 1u /* the ack and nothing else: no registration, no telemetry (stopping) */
#define HENGE_LINK_ACK_HELD 2u /* the ack waits whatever is due (henge-fw: an --exec hook runs) */

/*
 * The next of the device's own exchanges, at `now_ms`, into *action: one at a time, in the order of
 * docs/protocol.md, "Ack": while the link is up, a registration while no relation is held, the newest
 * ack, a re-registration (keepalive, refresh, or one that yielded to an ack), then the telemetry (once).
 * While an exchange of the device's own is in flight only an ack may go, beside the exchange it
 * supersedes: an older ack, or a re-registration of the relation the device holds; not while another
 * abandoned exchange runs (two CON exchanges outstanding at most).
 *
 * It books its decision: the ack due is taken (or dropped, when nothing is pending or that very ack is
 * on its way), and a superseded exchange moves into l->abandoned (its span from when it was first sent).
 * An ack action is only given while the core has an ack pending (`dev`). The client carries the action
 * out; when an ack it was told to send did not go (no PDU, a refused send), it may ask again: the ack is
 * no longer due, so what comes after it is said. HENGE_OK, HENGE_E_ARG, or the core's failure
 * (henge_device_pending, henge_device_ack_supersedes: nothing abandoned).
 */
henge_status henge_link_next(henge_link *l, const henge_device *dev, uint64_t now_ms, unsigned flags, henge_link_action *action);

/* Whether `action` abandons an exchange (NSTART 2 while it runs): HENGE_LINK_ACK_SUPERSEDES or _ACK_BEFORE_REREGISTRATION. */
bool henge_link_abandons(henge_link_action action);

/*
 * When something is due that no message will announce, into *at_ms (UINT64_MAX: nothing), while the link
 * is up: the keepalive when no exchange of the device's own is in flight; the end of an abandoned
 * exchange's span.
 */
henge_status henge_link_next_ms(const henge_link *l, uint64_t *at_ms);

/*
 * Whether a registration has been wanted more than HENGE_LINK_REGISTER_TIMEOUT_MS at `now_ms` without an
 * answer, into *overdue: in flight, or (link up) due and held behind an exchange in flight. The client
 * then ends the session.
 */
henge_status henge_link_registration_overdue(const henge_link *l, uint64_t now_ms, bool *overdue);

/*
 * Re-register now (SIGHUP, a button): due at `now_ms` when the link is up and no registration is in flight
 * (one in flight already answers for it); *due says whether it took. When it did not and there is no
 * session, the client may try to connect now instead.
 */
henge_status henge_link_refresh(henge_link *l, uint64_t now_ms, bool *due);

/* ---------------------------------------------------------------------------------------------- */
/* what was sent                                                                                   */

/* The registration went with message id `mid` at `now_ms`: in flight, and wanted since it fell due (or since now). */
henge_status henge_link_registration_sent(henge_link *l, int mid, uint64_t now_ms);

/* `ack` (the core's pending ack; its message is copied) went with `token` and message id `mid` at `now_ms`: in flight. */
henge_status henge_link_ack_sent(henge_link *l, const henge_ack *ack, const uint8_t *token, size_t token_len, int mid, uint64_t now_ms);

/* The telemetry went with `token`: in flight, and never again. */
henge_status henge_link_telemetry_sent(henge_link *l, const uint8_t *token, size_t token_len);

/* ---------------------------------------------------------------------------------------------- */
/* what came back                                                                                  */

/* Whose an answer or a NACK is. */
typedef enum henge_link_rx {
  HENGE_LINK_RX_NONE = 0,      /* none of the link's exchanges (an old relation's notification; henge-fw: its deregistration) */
  HENGE_LINK_RX_ABANDONED = 1, /* the abandoned exchange's: a late answer, or its end; it settles nothing (henge_link_ended) */
  HENGE_LINK_RX_CONFIG = 2,    /* the observation's token: the registration's answer, or a notification (a NACK: the registration's) */
  HENGE_LINK_RX_ACK = 3,       /* the ack in flight's */
  HENGE_LINK_RX_TELEMETRY = 4  /* the telemetry's */
} henge_link_rx;

/*
 * Whose an answer or a NACK is, into *rx: `token` is the answer's (or the NACKed request's; length 0 for
 * none), `mid` the message id of the request it answers or the NACKed one (HENGE_LINK_NO_MID when there is
 * none, e.g. a notification). The abandoned exchange first: an ack by its token, a re-registration by its
 * message id.
 */
henge_status henge_link_rx_of(const henge_link *l, const uint8_t *token, size_t token_len, int mid, henge_link_rx *rx);

/* henge_link_ended's code class of an exchange that ended without an answer (its NACK: given up, reset). */
#define HENGE_LINK_UNANSWERED 0xffu

/*
 * The exchange `rx` names has ended: answered with a code of class `code_class` (2 for 2.04), or not at all
 * (HENGE_LINK_UNANSWERED). The ack: no longer in flight, and due again unless the hub could not
 * record it (5.xx) or it got no answer (both go again after the next registration). The telemetry: no
 * longer in flight. The abandoned exchange: forgotten (*was_abandoned true when there was one: NSTART 1
 * again). Nothing for HENGE_LINK_RX_CONFIG and _NONE. `was_abandoned` may be NULL.
 */
henge_status henge_link_ended(henge_link *l, henge_link_rx rx, uint8_t code_class, bool *was_abandoned);

/* Ends the abandoned exchange (as henge_link_ended) when its span is over at `now_ms`; *ended says whether it did now. */
henge_status henge_link_expire(henge_link *l, uint64_t now_ms, bool *ended);

/*
 * A message with the observation's token that answers no request of ours (a notification, or a separate
 * response) while the link is up: libcoap has just ended every request with that token (handle_response
 * cancels them on any such message), so a re-registration in flight, and an abandoned one, will never be
 * answered. The abandoned re-registration is forgotten (*abandoned_ended: NSTART 1 again). The
 * re-registration in flight counts as abandoned (*reregistration_ended): this message is a notification,
 * and the device registers again right after the ack it brings. A first registration, or one while no
 * relation is held, is not: this message is its answer. Nothing while the link is down.
 */
henge_status henge_link_token_cancelled(henge_link *l, bool *abandoned_ended, bool *reregistration_ended);

/* What a 2.xx with the observation's token did (henge_link_config_answer). */
typedef struct henge_link_config {
  bool registration; /* it answered the registration in flight (else it is a notification) */
  bool no_relation;  /* the registration was answered without Observe twice in a row: end the session, refused */
  bool came_up;      /* the first registration answered since the session began: the link is up now */
} henge_link_config;

/*
 * A 2.xx with the observation's token at `now_ms`, with Observe or not (`observe`), Max-Age `max_age_s`:
 * the relation is held or not; the registration in flight is answered (wanted no more): the keepalive
 * at 70-85 % of Max-Age (henge_device_keepalive_delay: the core's random source), or at once when the
 * answer had no Observe (once: libcoap also drops Observe when a Block2 transfer restarts), and the link
 * up; a notification without Observe makes a registration due at once (the relation may have ended).
 * What comes with a refusal (not 2.xx) is the client's: whose it is, l->reg_in_flight, says which words.
 * HENGE_OK, HENGE_E_ARG, or henge_device_keepalive_delay's failure (the keepalive in 1 s then, the rest done).
 */
henge_status henge_link_config_answer(henge_link *l, henge_device *dev, uint64_t now_ms, bool observe, uint32_t max_age_s, henge_link_config *out);

#endif

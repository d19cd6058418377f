/*
 * The link's decisions (ports/common/henge_link.c), both C clients': what goes next, newest ack first
 * (docs/protocol.md, "Ack"), when, whether a registration waited too long, and whose an answer or a
 * NACK is. The last two cases run every state the decision reads against a model transcribed from the
 * clients' code before it was shared (henge-fw's fw_link_pump and ack_beside, the MCU client's pump).
 */
#include <string.h>

#include "henge.h"
#include "henge_link.h"
#include "henge_test.h"

static henge_status fixed_random(void *ctx, uint32_t *r) {
  (void)ctx;
  *r = 0x80000000u;
  return HENGE_OK;
}

static henge_status failing_random(void *ctx, uint32_t *r) {
  (void)ctx;
  (void)r;
  return HENGE_E_UNSUPPORTED;
}

static henge_platform P;
static henge_device dev;
static henge_link L;

static const uint8_t OBS[4] = {0xde, 0xad, 0xbe, 0xef};
static const uint8_t TOK_A[8] = {1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t TOK_B[8] = {2, 2, 2, 2, 2, 2, 2, 2};
static const uint8_t TOK_T[8] = {3, 3, 3, 3, 3, 3, 3, 3};

static void setup(void) {
  memset(&P, 0, sizeof P);
  P.random_u32 = fixed_random;
  HT_EQ_INT(henge_device_init(&dev, &P, 8000), HENGE_OK);
  HT_EQ_INT(henge_link_init(&L, OBS, sizeof OBS), HENGE_OK);
}

/* The core has the "applied" ack of `version` pending (0: nothing pending). */
static void pending(uint64_t version) {
  dev.has_pending = version != 0;
  memset(&dev.pending, 0, sizeof dev.pending);
  dev.pending.version = version;
  dev.pending.status = HENGE_ACK_APPLIED;
}

static henge_link_action next_at(uint64_t now, unsigned flags) {
  henge_link_action a = HENGE_LINK_IDLE;
  HT_EQ_INT(henge_link_next(&L, &dev, now, flags, &a), HENGE_OK);
  return a;
}

static henge_link_rx rx_of(const uint8_t *token, size_t len, int mid) {
  henge_link_rx rx = HENGE_LINK_RX_NONE;
  HT_EQ_INT(henge_link_rx_of(&L, token, len, mid, &rx), HENGE_OK);
  return rx;
}

/* Connected: the first registration (message id 10) sent at `t` and answered with Observe and Max-Age 60. */
static void connect_at(uint64_t t) {
  HT_EQ_INT(henge_link_registration_sent(&L, 10, t), HENGE_OK);
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, t + 100, true, 60, &c), HENGE_OK);
  HT_CHECK(c.registration && c.came_up && !c.no_relation);
}

static void registration_then_ack_then_reregistration_then_telemetry(void) {
  setup();
  pending(7);
  L.ack_due = true;
  /* Down: nothing, not even the ack; nothing is due by time either. */
  HT_EQ_INT(next_at(1000, 0), HENGE_LINK_IDLE);
  uint64_t at = 0;
  HT_EQ_INT(henge_link_next_ms(&L, &at), HENGE_OK);
  HT_CHECK(at == UINT64_MAX);
  /* The first registration is in flight: wanted since now; the ack waits behind it. */
  HT_EQ_INT(henge_link_registration_sent(&L, 10, 1000), HENGE_OK);
  HT_CHECK(L.reg_in_flight && L.reg_wanted_ms == 1000 && L.reg_mid == 10);
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 1100, true, 60, &c), HENGE_OK);
  HT_CHECK(c.registration && c.came_up && !c.no_relation);
  HT_CHECK(L.up && L.observing && !L.reg_in_flight && L.reg_wanted_ms == 0);
  /* The keepalive at 70-85 % of Max-Age. */
  HT_CHECK(L.next_keepalive_ms >= 1100 + 42000 && L.next_keepalive_ms <= 1100 + 51000);
  uint64_t keepalive = L.next_keepalive_ms;
  /* The ack, then nothing while it is in flight. */
  HT_EQ_INT(next_at(1200, 0), HENGE_LINK_SEND_ACK);
  HT_CHECK(!L.ack_due);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 8, 11, 1200), HENGE_OK);
  HT_CHECK(L.ack_in_flight && L.ack_sent.version == 7 && L.ack_sent_ms == 1200 && L.ack_mid == 11);
  HT_EQ_INT(next_at(1300, 0), HENGE_LINK_IDLE);
  /* Nothing due by time while it is in flight: the keepalive waits for it. */
  HT_EQ_INT(henge_link_next_ms(&L, &at), HENGE_OK);
  HT_CHECK(at == UINT64_MAX);
  /* Answered 2.04: due again (a newer ack may be pending); the core has none: the telemetry. */
  HT_EQ_INT(rx_of(TOK_A, 8, 11), HENGE_LINK_RX_ACK);
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_ACK, 2, NULL), HENGE_OK);
  HT_CHECK(!L.ack_in_flight && L.ack_due);
  pending(0);
  HT_EQ_INT(next_at(1400, 0), HENGE_LINK_SEND_TELEMETRY);
  HT_CHECK(!L.ack_due);
  HT_EQ_INT(henge_link_telemetry_sent(&L, TOK_T, 8), HENGE_OK);
  HT_EQ_INT(next_at(1500, 0), HENGE_LINK_IDLE);
  HT_EQ_INT(rx_of(TOK_T, 8, 12), HENGE_LINK_RX_TELEMETRY);
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_TELEMETRY, 2, NULL), HENGE_OK);
  /* Once: nothing more until the keepalive, which is when the loop wakes up. */
  HT_EQ_INT(next_at(1600, 0), HENGE_LINK_IDLE);
  HT_EQ_INT(henge_link_next_ms(&L, &at), HENGE_OK);
  HT_EQ_INT(at, keepalive);
  HT_EQ_INT(next_at(keepalive, 0), HENGE_LINK_REGISTER);
  /* The re-registration went late: it has been wanted since it fell due. */
  HT_EQ_INT(henge_link_registration_sent(&L, 13, keepalive + 500), HENGE_OK);
  HT_EQ_INT(L.reg_wanted_ms, keepalive);
  HT_EQ_INT(henge_link_config_answer(&L, &dev, keepalive + 600, true, 60, &c), HENGE_OK);
  HT_CHECK(c.registration && !c.came_up);
}

static void without_a_relation_the_registration_goes_first(void) {
  setup();
  connect_at(1000);
  /* A notification without Observe: the relation may have ended; a registration is due at once and
     goes before the ack. */
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 2000, false, 60, &c), HENGE_OK);
  HT_CHECK(!c.registration && !c.came_up && !c.no_relation && !L.observing);
  HT_EQ_INT(L.next_keepalive_ms, 2000);
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(2000, 0), HENGE_LINK_REGISTER);
  HT_CHECK(L.ack_due);
  HT_EQ_INT(henge_link_registration_sent(&L, 20, 2000), HENGE_OK);
  /* A registration while no relation is held does not yield to the ack. */
  HT_EQ_INT(next_at(2050, 0), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due && L.abandoned.kind == HENGE_LINK_ABANDONED_NONE);
  /* Answered without Observe: once more at once (libcoap drops Observe when Block2 restarts) ... */
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 2100, false, 60, &c), HENGE_OK);
  HT_CHECK(c.registration && !c.no_relation && L.next_keepalive_ms == 2100);
  HT_EQ_INT(next_at(2100, 0), HENGE_LINK_REGISTER);
  HT_EQ_INT(henge_link_registration_sent(&L, 21, 2100), HENGE_OK);
  /* ... and the second time in a row there is no relation: the client ends the session. */
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 2200, false, 60, &c), HENGE_OK);
  HT_CHECK(c.registration && c.no_relation && !c.came_up);
  /* One answer with Observe in between starts the count again. */
  setup();
  connect_at(1000);
  HT_EQ_INT(henge_link_registration_sent(&L, 30, 3000), HENGE_OK);
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 3100, false, 60, &c), HENGE_OK);
  HT_CHECK(!c.no_relation);
  HT_EQ_INT(henge_link_registration_sent(&L, 31, 3100), HENGE_OK);
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 3200, true, 60, &c), HENGE_OK);
  HT_EQ_INT(henge_link_registration_sent(&L, 32, 3300), HENGE_OK);
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 3400, false, 60, &c), HENGE_OK);
  HT_CHECK(!c.no_relation);
}

static void a_newer_ack_goes_beside_the_older_one(void) {
  setup();
  connect_at(1000);
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(2000, 0), HENGE_LINK_SEND_ACK);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 8, 40, 2000), HENGE_OK);
  /* The very ack on its way (a registration's answer makes it due again): it waits for its answer. */
  L.ack_due = true;
  HT_EQ_INT(next_at(2100, 0), HENGE_LINK_IDLE);
  HT_CHECK(!L.ack_due && L.ack_in_flight);
  /* A newer snapshot's ack: the one in flight is abandoned, the new one goes now. */
  pending(8);
  L.ack_due = true;
  henge_link_action a = next_at(2200, 0);
  HT_EQ_INT(a, HENGE_LINK_ACK_SUPERSEDES);
  HT_CHECK(henge_link_abandons(a));
  HT_CHECK(!L.ack_due && !L.ack_in_flight);
  HT_EQ_INT(L.abandoned.kind, HENGE_LINK_ABANDONED_ACK);
  HT_EQ_INT(L.abandoned.version, 7);
  HT_EQ_INT(L.abandoned.mid, 40);
  HT_EQ_INT(L.abandoned.until_ms, 2000 + HENGE_LINK_EXCHANGE_SPAN_MS);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_B, 8, 41, 2200), HENGE_OK);
  /* The old ack's late answer is the abandoned exchange's, the new one's is the ack's. */
  HT_EQ_INT(rx_of(TOK_A, 8, 40), HENGE_LINK_RX_ABANDONED);
  HT_EQ_INT(rx_of(TOK_B, 8, 41), HENGE_LINK_RX_ACK);
  /* Woken up at the end of the abandoned exchange's span (the ack in flight holds the keepalive back). */
  uint64_t at = 0;
  HT_EQ_INT(henge_link_next_ms(&L, &at), HENGE_OK);
  HT_EQ_INT(at, 2000 + HENGE_LINK_EXCHANGE_SPAN_MS);
  /* A third ack while both run waits: one abandoned exchange at a time (two outstanding at most). */
  pending(9);
  L.ack_due = true;
  HT_EQ_INT(next_at(2300, 0), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due);
  /* The late answer ends the abandoned exchange; then the third ack supersedes the second. */
  bool was = false;
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_ABANDONED, 2, &was), HENGE_OK);
  HT_CHECK(was && L.abandoned.kind == HENGE_LINK_ABANDONED_NONE);
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_ABANDONED, 2, &was), HENGE_OK);
  HT_CHECK(!was);
  HT_EQ_INT(rx_of(TOK_A, 8, 40), HENGE_LINK_RX_NONE);
  HT_EQ_INT(next_at(2400, 0), HENGE_LINK_ACK_SUPERSEDES);
  HT_EQ_INT(L.abandoned.version, 8);
  /* Its span over, it is forgotten (libcoap gave it up without a word). */
  bool ended = true;
  HT_EQ_INT(henge_link_expire(&L, 2200 + HENGE_LINK_EXCHANGE_SPAN_MS - 1, &ended), HENGE_OK);
  HT_CHECK(!ended && L.abandoned.kind == HENGE_LINK_ABANDONED_ACK);
  HT_EQ_INT(henge_link_expire(&L, 2200 + HENGE_LINK_EXCHANGE_SPAN_MS, &ended), HENGE_OK);
  HT_CHECK(ended && L.abandoned.kind == HENGE_LINK_ABANDONED_NONE);
  HT_EQ_INT(henge_link_expire(&L, 2200 + HENGE_LINK_EXCHANGE_SPAN_MS, &ended), HENGE_OK);
  HT_CHECK(!ended);
}

static void a_reregistration_yields_to_the_ack_and_goes_again_after_it(void) {
  setup();
  connect_at(1000);
  HT_EQ_INT(next_at(1200, 0), HENGE_LINK_SEND_TELEMETRY);
  HT_EQ_INT(henge_link_telemetry_sent(&L, TOK_T, 8), HENGE_OK);
  /* The telemetry in flight: the ack waits for it. */
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(1300, 0), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due);
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_TELEMETRY, HENGE_LINK_UNANSWERED, NULL), HENGE_OK);
  L.ack_due = false;
  /* The keepalive re-registration is in flight (sent late: wanted since it fell due). */
  uint64_t due = L.next_keepalive_ms;
  HT_EQ_INT(next_at(due, 0), HENGE_LINK_REGISTER);
  HT_EQ_INT(henge_link_registration_sent(&L, 50, due + 10), HENGE_OK);
  HT_EQ_INT(L.reg_wanted_ms, due);
  /* The ack comes due: the re-registration is abandoned and due again at once, the ack goes beside it. */
  L.ack_due = true;
  henge_link_action a = next_at(due + 20, 0);
  HT_EQ_INT(a, HENGE_LINK_ACK_BEFORE_REREGISTRATION);
  HT_CHECK(henge_link_abandons(a));
  HT_CHECK(!L.reg_in_flight && !L.ack_due);
  HT_EQ_INT(L.abandoned.kind, HENGE_LINK_ABANDONED_REGISTRATION);
  HT_EQ_INT(L.abandoned.mid, 50);
  HT_EQ_INT(L.abandoned.until_ms, due + 10 + HENGE_LINK_EXCHANGE_SPAN_MS);
  HT_EQ_INT(L.next_keepalive_ms, due + 10);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 8, 51, due + 20), HENGE_OK);
  /* Its late answer (message id 50) is the abandoned exchange's; a notification (no message id) and the
     next registration's answer (51 is the ack's, 52) are the observation's. */
  HT_EQ_INT(rx_of(OBS, 4, 50), HENGE_LINK_RX_ABANDONED);
  HT_EQ_INT(rx_of(OBS, 4, HENGE_LINK_NO_MID), HENGE_LINK_RX_CONFIG);
  HT_EQ_INT(rx_of(OBS, 4, 52), HENGE_LINK_RX_CONFIG);
  /* The registration waits for the ack (one exchange of its own at a time) ... */
  HT_EQ_INT(next_at(due + 30, 0), HENGE_LINK_IDLE);
  /* ... and still counts as wanted since it fell due: 15 s later the session ends. */
  bool overdue = true;
  HT_EQ_INT(henge_link_registration_overdue(&L, due + HENGE_LINK_REGISTER_TIMEOUT_MS, &overdue), HENGE_OK);
  HT_CHECK(!overdue);
  HT_EQ_INT(henge_link_registration_overdue(&L, due + HENGE_LINK_REGISTER_TIMEOUT_MS + 1, &overdue), HENGE_OK);
  HT_CHECK(overdue);
  /* The ack answered (nothing pending any more): the registration goes right after it. */
  HT_EQ_INT(henge_link_ended(&L, HENGE_LINK_RX_ACK, 2, NULL), HENGE_OK);
  pending(0);
  HT_EQ_INT(next_at(due + 40, 0), HENGE_LINK_REGISTER);
  HT_EQ_INT(henge_link_registration_sent(&L, 53, due + 40), HENGE_OK);
  HT_EQ_INT(L.reg_wanted_ms, due);
  /* A registration in flight and one abandoned: a newer ack waits for one of them to end. */
  pending(8);
  L.ack_due = true;
  HT_EQ_INT(next_at(due + 50, 0), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due && L.reg_in_flight);
}

static void a_notification_ends_the_reregistration_in_flight(void) {
  setup();
  bool abandoned = true, rereg = true;
  /* Down (no relation yet): the first registration's separate answer, nothing cancelled. */
  HT_EQ_INT(henge_link_registration_sent(&L, 10, 1000), HENGE_OK);
  HT_EQ_INT(henge_link_token_cancelled(&L, &abandoned, &rereg), HENGE_OK);
  HT_CHECK(!abandoned && !rereg && L.reg_in_flight);
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 1100, true, 60, &c), HENGE_OK);
  /* A re-registration in flight: the notification ended it inside libcoap; it goes again after the ack. */
  HT_EQ_INT(henge_link_registration_sent(&L, 11, 5000), HENGE_OK);
  HT_EQ_INT(henge_link_token_cancelled(&L, &abandoned, &rereg), HENGE_OK);
  HT_CHECK(!abandoned && rereg && !L.reg_in_flight);
  HT_EQ_INT(L.next_keepalive_ms, 5000);
  /* ... and the notification is not taken for its answer. */
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 5100, true, 60, &c), HENGE_OK);
  HT_CHECK(!c.registration);
  HT_EQ_INT(L.next_keepalive_ms, 5000);
  /* An abandoned re-registration ends with it too. */
  HT_EQ_INT(henge_link_registration_sent(&L, 12, 6000), HENGE_OK);
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(6100, 0), HENGE_LINK_ACK_BEFORE_REREGISTRATION);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 8, 13, 6100), HENGE_OK);
  HT_EQ_INT(henge_link_token_cancelled(&L, &abandoned, &rereg), HENGE_OK);
  HT_CHECK(abandoned && !rereg && L.abandoned.kind == HENGE_LINK_ABANDONED_NONE && L.ack_in_flight);
  /* An abandoned ack is not the observation's: it stays. */
  pending(8);
  L.ack_due = true;
  HT_EQ_INT(next_at(6200, 0), HENGE_LINK_ACK_SUPERSEDES);
  HT_EQ_INT(henge_link_token_cancelled(&L, &abandoned, &rereg), HENGE_OK);
  HT_CHECK(!abandoned && !rereg && L.abandoned.kind == HENGE_LINK_ABANDONED_ACK);
}

static void the_flags_hold_the_ack_or_everything_else(void) {
  setup();
  connect_at(1000);
  pending(7);
  /* Stopping: the ack and nothing else, not even a registration while no relation is held. */
  L.ack_due = true;
  L.observing = false;
  L.next_keepalive_ms = 0;
  HT_EQ_INT(next_at(5000, HENGE_LINK_ACK_ONLY), HENGE_LINK_SEND_ACK);
  pending(0);
  HT_EQ_INT(next_at(5000, HENGE_LINK_ACK_ONLY), HENGE_LINK_IDLE);
  /* A hook runs: its ack waits; the registration and the telemetry go. */
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(5000, HENGE_LINK_ACK_HELD), HENGE_LINK_REGISTER);
  L.observing = true;
  L.next_keepalive_ms = 9000;
  HT_EQ_INT(next_at(5000, HENGE_LINK_ACK_HELD), HENGE_LINK_SEND_TELEMETRY);
  HT_CHECK(L.ack_due);
  HT_EQ_INT(henge_link_telemetry_sent(&L, TOK_T, 8), HENGE_OK);
  HT_EQ_INT(next_at(5000, HENGE_LINK_ACK_HELD), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due);
  /* Held, it does not go beside an exchange either; released, it does not go beside the telemetry. */
  HT_EQ_INT(next_at(5000, 0), HENGE_LINK_IDLE);
  HT_CHECK(L.ack_due);
}

static void refresh_overdue_and_reset(void) {
  setup();
  bool due = true, overdue = true;
  /* Down: a refresh does not take (the client connects now instead). */
  HT_EQ_INT(henge_link_refresh(&L, 500, &due), HENGE_OK);
  HT_CHECK(!due);
  HT_EQ_INT(henge_link_registration_sent(&L, 10, 1000), HENGE_OK);
  HT_EQ_INT(henge_link_registration_overdue(&L, 1000 + HENGE_LINK_REGISTER_TIMEOUT_MS, &overdue), HENGE_OK);
  HT_CHECK(!overdue);
  HT_EQ_INT(henge_link_registration_overdue(&L, 1001 + HENGE_LINK_REGISTER_TIMEOUT_MS, &overdue), HENGE_OK);
  HT_CHECK(overdue);
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 1100, true, 60, &c), HENGE_OK);
  /* Due and held behind an exchange: wanted since it fell due. */
  uint64_t k = L.next_keepalive_ms;
  HT_EQ_INT(henge_link_registration_overdue(&L, k + HENGE_LINK_REGISTER_TIMEOUT_MS, &overdue), HENGE_OK);
  HT_CHECK(!overdue);
  HT_EQ_INT(henge_link_registration_overdue(&L, k + HENGE_LINK_REGISTER_TIMEOUT_MS + 1, &overdue), HENGE_OK);
  HT_CHECK(overdue);
  /* Up, nothing in flight: a refresh makes the registration due now. */
  HT_EQ_INT(henge_link_refresh(&L, 2000, &due), HENGE_OK);
  HT_CHECK(due && L.next_keepalive_ms == 2000);
  HT_EQ_INT(henge_link_registration_sent(&L, 11, 2000), HENGE_OK);
  /* One in flight already answers for it. */
  HT_EQ_INT(henge_link_refresh(&L, 2100, &due), HENGE_OK);
  HT_CHECK(!due && L.next_keepalive_ms == 2000);
  /* The session is gone: down, nothing in flight or abandoned, the old session's tokens forgotten;
     the observation's token, the ack due and the telemetry sent stay. */
  pending(7);
  L.ack_due = true;
  HT_EQ_INT(next_at(2200, 0), HENGE_LINK_ACK_BEFORE_REREGISTRATION);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 8, 12, 2200), HENGE_OK);
  HT_EQ_INT(henge_link_telemetry_sent(&L, TOK_T, 8), HENGE_OK);
  L.ack_due = true;
  HT_EQ_INT(henge_link_reset(&L), HENGE_OK);
  HT_CHECK(!L.up && !L.observing && !L.reg_in_flight && !L.ack_in_flight && !L.tel_in_flight && L.reg_wanted_ms == 0);
  HT_CHECK(L.abandoned.kind == HENGE_LINK_ABANDONED_NONE && L.ack_due && L.telemetry_sent);
  HT_EQ_INT(rx_of(TOK_A, 8, 12), HENGE_LINK_RX_NONE);
  HT_EQ_INT(rx_of(TOK_T, 8, 13), HENGE_LINK_RX_NONE);
  HT_EQ_INT(rx_of(OBS, 4, 11), HENGE_LINK_RX_CONFIG);
  HT_EQ_INT(henge_link_registration_overdue(&L, 1000000, &overdue), HENGE_OK);
  HT_CHECK(!overdue);
}

static void the_keepalive_falls_back_to_one_second(void) {
  setup();
  P.random_u32 = failing_random;
  HT_EQ_INT(henge_link_registration_sent(&L, 10, 1000), HENGE_OK);
  henge_link_config c;
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 1100, true, 60, &c), HENGE_E_UNSUPPORTED);
  /* Everything else is done: the link is up, the registration answered. */
  HT_CHECK(c.registration && c.came_up && L.up && !L.reg_in_flight);
  HT_EQ_INT(L.next_keepalive_ms, 2100);
}

static void bad_arguments_change_nothing(void) {
  setup();
  henge_link_action a;
  henge_link_rx rx;
  henge_link_config c;
  bool b = false, b2 = false;
  uint64_t at = 0;
  uint8_t long_token[9] = {0};
  HT_EQ_INT(henge_link_init(NULL, OBS, 4), HENGE_E_ARG);
  HT_EQ_INT(henge_link_init(&L, NULL, 4), HENGE_E_ARG);
  HT_EQ_INT(henge_link_init(&L, OBS, 0), HENGE_E_ARG);
  HT_EQ_INT(henge_link_init(&L, long_token, 9), HENGE_E_ARG);
  HT_EQ_INT(L.obs_token_len, 4);
  HT_EQ_INT(henge_link_reset(NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_next(NULL, &dev, 0, 0, &a), HENGE_E_ARG);
  HT_EQ_INT(henge_link_next(&L, NULL, 0, 0, &a), HENGE_E_ARG);
  HT_EQ_INT(henge_link_next(&L, &dev, 0, 0, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_next_ms(NULL, &at), HENGE_E_ARG);
  HT_EQ_INT(henge_link_next_ms(&L, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_registration_overdue(NULL, 0, &b), HENGE_E_ARG);
  HT_EQ_INT(henge_link_registration_overdue(&L, 0, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_refresh(NULL, 0, &b), HENGE_E_ARG);
  HT_EQ_INT(henge_link_refresh(&L, 0, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_registration_sent(NULL, 1, 0), HENGE_E_ARG);
  pending(7);
  HT_EQ_INT(henge_link_ack_sent(NULL, &dev.pending, TOK_A, 8, 1, 0), HENGE_E_ARG);
  HT_EQ_INT(henge_link_ack_sent(&L, NULL, TOK_A, 8, 1, 0), HENGE_E_ARG);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, NULL, 8, 1, 0), HENGE_E_ARG);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, TOK_A, 0, 1, 0), HENGE_E_ARG);
  HT_EQ_INT(henge_link_ack_sent(&L, &dev.pending, long_token, 9, 1, 0), HENGE_E_ARG);
  henge_ack big = dev.pending;
  big.message = "x";
  big.message_len = HENGE_ACK_MESSAGE_MAX + 1;
  HT_EQ_INT(henge_link_ack_sent(&L, &big, TOK_A, 8, 1, 0), HENGE_E_ARG);
  HT_CHECK(!L.ack_in_flight);
  HT_EQ_INT(henge_link_telemetry_sent(NULL, TOK_T, 8), HENGE_E_ARG);
  HT_EQ_INT(henge_link_telemetry_sent(&L, NULL, 8), HENGE_E_ARG);
  HT_EQ_INT(henge_link_telemetry_sent(&L, long_token, 9), HENGE_E_ARG);
  HT_CHECK(!L.telemetry_sent);
  HT_EQ_INT(henge_link_rx_of(NULL, TOK_A, 8, 1, &rx), HENGE_E_ARG);
  HT_EQ_INT(henge_link_rx_of(&L, NULL, 8, 1, &rx), HENGE_E_ARG);
  HT_EQ_INT(henge_link_rx_of(&L, TOK_A, 8, 1, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_rx_of(&L, NULL, 0, HENGE_LINK_NO_MID, &rx), HENGE_OK);
  HT_EQ_INT(rx, HENGE_LINK_RX_NONE);
  HT_EQ_INT(henge_link_ended(NULL, HENGE_LINK_RX_ACK, 2, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_expire(NULL, 0, &b), HENGE_E_ARG);
  HT_EQ_INT(henge_link_expire(&L, 0, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_token_cancelled(NULL, &b, &b2), HENGE_E_ARG);
  HT_EQ_INT(henge_link_token_cancelled(&L, NULL, &b2), HENGE_E_ARG);
  HT_EQ_INT(henge_link_token_cancelled(&L, &b, NULL), HENGE_E_ARG);
  HT_EQ_INT(henge_link_config_answer(NULL, &dev, 0, true, 60, &c), HENGE_E_ARG);
  HT_EQ_INT(henge_link_config_answer(&L, NULL, 0, true, 60, &c), HENGE_E_ARG);
  HT_EQ_INT(henge_link_config_answer(&L, &dev, 0, true, 60, NULL), HENGE_E_ARG);
  HT_CHECK(!L.up);
}

/* ---------------------------------------------------------------------------------------------- */
/* every state against the clients' code before it was shared                                      */

/* What the pump did, and the state it left. */
typedef struct model_out {
  henge_link_action action;
  bool ack_due, ack_in_flight, reg_in_flight;
  uint64_t next_keepalive_ms;
  henge_link_abandoned_kind abandoned;
} model_out;

/*
 * fw_link_pump and ack_beside as they were (the MCU client's pump is the same without the flags), an
 * exchange sent recorded as the action: `pend` 0 nothing pending, 1 the ack in flight again, 2 another.
 */
static model_out old_pump(const henge_link *s, int pend, bool reg_due_by_time, unsigned flags) {
  model_out o = {HENGE_LINK_IDLE, s->ack_due, s->ack_in_flight, s->reg_in_flight, s->next_keepalive_ms, s->abandoned.kind};
  bool ack_only = (flags & HENGE_LINK_ACK_ONLY) != 0;
  if (!s->up) return o;
  bool ack_wanted = s->ack_due && (flags & HENGE_LINK_ACK_HELD) == 0;
  if (s->reg_in_flight || s->ack_in_flight || s->tel_in_flight) {
    if (!ack_wanted || s->abandoned.kind != HENGE_LINK_ABANDONED_NONE) return o;
    if (pend == 0) {
      o.ack_due = false;
      return o;
    }
    if (s->ack_in_flight) {
      if (pend == 1) {
        o.ack_due = false;
        return o;
      }
      o.abandoned = HENGE_LINK_ABANDONED_ACK;
      o.ack_in_flight = false;
      o.action = HENGE_LINK_ACK_SUPERSEDES;
    } else if (s->reg_in_flight && s->observing && s->up) {
      o.abandoned = HENGE_LINK_ABANDONED_REGISTRATION;
      o.reg_in_flight = false;
      o.next_keepalive_ms = s->reg_sent_ms;
      o.action = HENGE_LINK_ACK_BEFORE_REREGISTRATION;
    } else {
      return o;
    }
    o.ack_due = false;
    return o;
  }
  bool reg_due = !ack_only && reg_due_by_time;
  if (reg_due && !s->observing) {
    o.action = HENGE_LINK_REGISTER;
    return o;
  }
  if (ack_wanted) {
    o.ack_due = false;
    if (pend != 0) {
      o.action = HENGE_LINK_SEND_ACK;
      return o;
    }
  }
  if (reg_due) o.action = HENGE_LINK_REGISTER;
  else if (!ack_only && !s->telemetry_sent) o.action = HENGE_LINK_SEND_TELEMETRY;
  return o;
}

static void next_agrees_with_the_old_pump_in_every_state(void) {
  int states = 0, mismatches = 0;
  for (unsigned bits = 0; bits < (1u << 9); bits++) {
    for (int abandoned = 0; abandoned < 3; abandoned++) {
      for (int pend = 0; pend < 3; pend++) {
        for (unsigned flags = 0; flags < 4; flags++) {
          setup();
          L.up = (bits & 1u) != 0;
          L.observing = (bits & 2u) != 0;
          L.reg_in_flight = (bits & 4u) != 0;
          L.ack_in_flight = (bits & 8u) != 0;
          L.tel_in_flight = (bits & 16u) != 0;
          L.telemetry_sent = (bits & 32u) != 0;
          L.ack_due = (bits & 64u) != 0;
          bool reg_due_by_time = (bits & 128u) != 0;
          bool other_version = (bits & 256u) != 0; /* "another" ack: another version, or another outcome */
          L.reg_sent_ms = 3000;
          L.reg_mid = 5;
          L.next_keepalive_ms = 10000;
          uint64_t now = reg_due_by_time ? 10000 : 9999;
          pending(7);
          L.ack_sent = dev.pending;
          memcpy(L.ack_token, TOK_A, 8);
          L.ack_token_len = 8;
          L.ack_sent_ms = 4000;
          if (pend == 0) dev.has_pending = false;
          if (pend == 2 && other_version) dev.pending.version = 8;
          if (pend == 2 && !other_version) dev.pending.status = HENGE_ACK_FAILED;
          L.abandoned.kind = (henge_link_abandoned_kind)abandoned;
          henge_link before = L;
          model_out want = old_pump(&before, pend, reg_due_by_time, flags);
          henge_link_action got = HENGE_LINK_IDLE;
          HT_EQ_INT(henge_link_next(&L, &dev, now, flags, &got), HENGE_OK);
          bool same = got == want.action && L.ack_due == want.ack_due && L.ack_in_flight == want.ack_in_flight && L.reg_in_flight == want.reg_in_flight &&
                      L.next_keepalive_ms == want.next_keepalive_ms && L.abandoned.kind == want.abandoned;
          /* What moved into `abandoned` is the exchange that was in flight, over at its span. */
          if (same && abandoned == 0 && want.abandoned == HENGE_LINK_ABANDONED_ACK)
            same = L.abandoned.token_len == 8 && memcmp(L.abandoned.token, TOK_A, 8) == 0 && L.abandoned.version == 7 &&
                   L.abandoned.until_ms == 4000 + HENGE_LINK_EXCHANGE_SPAN_MS;
          if (same && abandoned == 0 && want.abandoned == HENGE_LINK_ABANDONED_REGISTRATION)
            same = L.abandoned.mid == 5 && L.abandoned.until_ms == 3000 + HENGE_LINK_EXCHANGE_SPAN_MS;
          if (!same) {
            if (mismatches++ < 5)
              fprintf(stderr, "    state bits %03x abandoned %d pending %d flags %u: action %d (want %d)\n", bits, abandoned, pend, flags, (int)got,
                      (int)want.action);
          }
          states++;
        }
      }
    }
  }
  HT_EQ_INT(mismatches, 0);
  HT_EQ_INT(states, 512 * 3 * 3 * 4);
}

/* on_response and on_nack as they were: the abandoned exchange, the observation, the ack in flight, the telemetry. */
static henge_link_rx old_rx(const henge_link *s, const uint8_t *t, size_t n, int mid) {
  bool late = false;
  if (s->abandoned.kind == HENGE_LINK_ABANDONED_ACK) late = n > 0 && n == s->abandoned.token_len && memcmp(t, s->abandoned.token, n) == 0;
  else if (s->abandoned.kind == HENGE_LINK_ABANDONED_REGISTRATION) late = mid != HENGE_LINK_NO_MID && mid == s->abandoned.mid;
  if (late) return HENGE_LINK_RX_ABANDONED;
  if (n > 0 && n == s->obs_token_len && memcmp(t, s->obs_token, n) == 0) return HENGE_LINK_RX_CONFIG;
  if (s->ack_in_flight && n > 0 && n == s->ack_token_len && memcmp(t, s->ack_token, n) == 0) return HENGE_LINK_RX_ACK;
  if (n > 0 && n == s->tel_token_len && memcmp(t, s->tel_token, n) == 0) return HENGE_LINK_RX_TELEMETRY;
  return HENGE_LINK_RX_NONE;
}

static void rx_of_agrees_with_the_old_handlers(void) {
  static const uint8_t OTHER[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  const uint8_t *tokens[] = {OBS, TOK_A, TOK_B, TOK_T, OTHER, NULL};
  const size_t lens[] = {4, 8, 8, 8, 8, 0};
  const int mids[] = {HENGE_LINK_NO_MID, 5, 6};
  int mismatches = 0;
  for (int abandoned = 0; abandoned < 3; abandoned++) {
    for (int ack_in_flight = 0; ack_in_flight < 2; ack_in_flight++) {
      for (size_t t = 0; t < 6; t++) {
        for (size_t m = 0; m < 3; m++) {
          setup();
          L.ack_in_flight = ack_in_flight != 0;
          memcpy(L.ack_token, TOK_B, 8);
          L.ack_token_len = 8;
          memcpy(L.tel_token, TOK_T, 8);
          L.tel_token_len = 8;
          L.abandoned.kind = (henge_link_abandoned_kind)abandoned;
          L.abandoned.token_len = abandoned == HENGE_LINK_ABANDONED_ACK ? 8 : 4;
          memcpy(L.abandoned.token, abandoned == HENGE_LINK_ABANDONED_ACK ? TOK_A : OBS, L.abandoned.token_len);
          L.abandoned.mid = 5;
          if (rx_of(tokens[t], lens[t], mids[m]) != old_rx(&L, tokens[t], lens[t], mids[m])) mismatches++;
        }
      }
    }
  }
  HT_EQ_INT(mismatches, 0);
}

const ht_case link_cases[] = {
    {"link - registration, then the ack, then the keepalive re-registration; the telemetry once", registration_then_ack_then_reregistration_then_telemetry},
    {"link - without a relation the registration goes first; no Observe twice in a row ends it", without_a_relation_the_registration_goes_first},
    {"link - newest ack first: a newer ack goes beside the older one, whose late answer is ignored", a_newer_ack_goes_beside_the_older_one},
    {"link - newest ack first: a re-registration yields to the ack and goes right after it", a_reregistration_yields_to_the_ack_and_goes_again_after_it},
    {"link - a notification ends the re-registration in flight (and an abandoned one)", a_notification_ends_the_reregistration_in_flight},
    {"link - stopping sends only the ack; a running hook holds the ack back", the_flags_hold_the_ack_or_everything_else},
    {"link - refresh, the 15 s registration timeout, and a reset after the session ends", refresh_overdue_and_reset},
    {"link - the keepalive is 1 s when the core's random source fails", the_keepalive_falls_back_to_one_second},
    {"link - bad arguments are refused and change nothing", bad_arguments_change_nothing},
    {"link - henge_link_next agrees with the clients' old pump in every state (18,432 states)", next_agrees_with_the_old_pump_in_every_state},
    {"link - henge_link_rx_of agrees with the clients' old answer and NACK handlers", rx_of_agrees_with_the_old_handlers},
    {NULL, NULL},
};

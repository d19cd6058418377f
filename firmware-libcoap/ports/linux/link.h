/*
 * link.h: henge-fw's CoAP link to the hub, on libcoap: one libcoap context and one session per
 * connection (plain CoAP, or DTLS-PSK with the device key), the requests (the registration, GET
 * /d/{id}/c with Observe; the ack, POST /d/{id}/a; telemetry, POST /d/{id}/t once; the
 * deregistration), and the session's failure, which the loop (main.c) turns into a reconnect with
 * backoff. What comes back is link_rx.c's.
 */
#ifndef FW_LINK_H
#define FW_LINK_H

#include <stdbool.h>

#include "fw_ctx.h"
#include "fw_status.h"

/* Deregistration on shutdown is best effort: this long at most. */
#define FW_DEREGISTER_WAIT_MS 2000

/*
 * libcoap's startup, its log into henge-fw's, and the observation's token (one for the life of the
 * process: a re-registration refreshes the same observation). FW_OK, or FW_E_COAP when henge-fw has a
 * key and this libcoap has no DTLS (said on stderr).
 */
fw_status fw_link_start(fw_ctx *fw);

/* Tears the session down and ends libcoap. Cannot fail. */
void fw_link_stop(fw_ctx *fw);

/*
 * A new context and session to the hub (the name resolved again), then the registration. FW_OK, or the
 * failure, recorded as the session's (fw_link_fail) except when the registration's PDU could not be
 * built (FW_E_COAP without a recorded failure, as before the port's split).
 */
fw_status fw_link_connect(fw_ctx *fw);

/*
 * GET /d/{id}/c, Observe 0, ETag of the applied snapshot, now. FW_OK (in flight), or FW_E_COAP: no
 * session, no PDU, or the send refused (that last one recorded as the session's failure).
 */
fw_status fw_link_register(fw_ctx *fw);

/*
 * Sends what is due while the link is up, one exchange of the device's own at a time (NSTART 1), as
 * henge_link_next (ports/common/henge_link.h) decides, in the order of docs/protocol.md, "Ack" ("Newest
 * ack first"): a registration while the device holds no relation, the newest ack, a re-registration
 * (keepalive, SIGHUP, or one that yielded to the ack), then the telemetry. While an exchange is in flight
 * only an ack may go, beside the exchange it supersedes: an older ack, or a re-registration of the
 * relation the device holds (registered again right after the ack). libcoap 4.3.1 cannot end that
 * exchange: it runs on beside the ack (NSTART 2 meanwhile, at most two CON exchanges outstanding) and its
 * answer is ignored (link_rx.c). `ack_only`: the ack and nothing else (stopping); the ack of a running
 * --exec hook waits. FW_OK, or the failure of a send (logged, or recorded as the session's).
 */
fw_status fw_link_pump(fw_ctx *fw, bool ack_only);

/*
 * When fw_link_pump has something to do that no message will announce, into *at_ms (UINT64_MAX: nothing;
 * henge_link_next_ms): the keepalive, when no exchange of the device's own is in flight; the end of an
 * abandoned exchange's span. FW_OK, or FW_E_COAP for a NULL argument.
 */
fw_status fw_link_next_ms(const fw_ctx *fw, uint64_t *at_ms);

/*
 * Ends the session (fw_link_fail) when a registration has been wanted for HENGE_LINK_REGISTER_TIMEOUT_MS
 * (15 s) without an answer (henge_link_registration_overdue): in flight, or due and held behind an exchange
 * in flight; a new session, and a new DTLS handshake, follow. FW_OK (checked), or FW_E_COAP for a NULL
 * argument.
 */
fw_status fw_link_check_registration(fw_ctx *fw);

/*
 * POSTs the core's pending ack now, unless one is in flight (fw_link_pump decides when). FW_OK (sent, or
 * nothing to send), FW_E_COAP or FW_E_CORE.
 */
fw_status fw_link_send_ack(fw_ctx *fw);

/* POSTs {"_agent": "henge-fw/... libcoap/..."} once per process. FW_OK (sent, or sent already), FW_E_COAP or FW_E_CORE. */
fw_status fw_link_send_telemetry(fw_ctx *fw);

/*
 * Cancels the observation (GET with Observe 1) and waits for the answer, FW_DEREGISTER_WAIT_MS at most,
 * logging "deregistered" or "deregistration got no answer". FW_OK (answered, or no registration to
 * cancel), FW_E_COAP (not sent, or no answer).
 */
fw_status fw_link_deregister(fw_ctx *fw);

/* Releases the session and the context, and forgets the requests in flight (an abandoned one too). Cannot fail. */
void fw_link_teardown(fw_ctx *fw);

/* Records that the session failed (the first reason counts); the loop tears it down. Cannot fail. */
void fw_link_fail(fw_ctx *fw, bool refused, const char *reason);

#endif

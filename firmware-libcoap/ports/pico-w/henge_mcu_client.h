/*
 * henge_mcu_client.h: the device side of docs/protocol.md on libcoap, for microcontrollers. One client
 * per device: it keeps the observation of /d/{id}/c (registration with the applied snapshot's ETag,
 * re-registration at 70-85 % of Max-Age, Block2 reassembly by libcoap), hands each snapshot to the
 * portable core (core/henge.h) for the version rules, stores what applies through the port, POSTs the
 * ack and, once, the telemetry {"_agent": ...}, and reconnects with backoff and full jitter when the hub
 * goes away. The same decisions, in the same order, as the Linux port (ports/linux/link.c,
 * link_rx.c, main.c), without files, signals or a heap of its own.
 *
 * Only libcoap's public API and the core: the Pico W port (lwIP raw API, mbedTLS) and the ESP32 port
 * (ESP-IDF, espressif/coap) share this file, and ports/pico-w/host/ builds it against Debian's
 * libcoap3-dev to run it against a real hub. What differs between them is behind henge_mcu_port.
 *
 * Not thread-safe: call everything from the one task that runs the loop (henge_mcu_step).
 */
#ifndef HENGE_MCU_CLIENT_H
#define HENGE_MCU_CLIENT_H

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "henge.h"
#include "henge_coap.h"
#include "henge_link.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the LED shows (the same rule as ports/linux/render.c fw_led_state). */
typedef enum henge_led_mode { HENGE_LED_OFF = 0, HENGE_LED_ON = 1, HENGE_LED_BLINK = 2 } henge_led_mode;

typedef struct henge_led {
  henge_led_mode mode;
  uint32_t blink_ms; /* HENGE_LED_BLINK: on this long, off this long */
} henge_led;

/*
 * The LED of a snapshot: `led` (boolean) false is off; else `blink_ms` (an integer, or a float of at
 * least 1, rounded) above 0 blinks; else `led` true is on; else off. Cannot fail.
 */
void henge_led_of(const henge_snapshot *s, henge_led *out);

typedef enum henge_mcu_log_level { HENGE_MCU_DEBUG = 0, HENGE_MCU_INFO = 1, HENGE_MCU_WARN = 2, HENGE_MCU_ERROR = 3 } henge_mcu_log_level;

/* What a port brings. Every function is required unless marked optional. */
typedef struct henge_mcu_port {
  void *ctx;
  /* The hub's address now (a name is resolved again on every connection). HENGE_OK or HENGE_E_NOT_FOUND. */
  henge_status (*resolve)(void *ctx, const char *host, uint16_t port, coap_address_t *out);
  /* Milliseconds from any fixed point, never going back. */
  uint64_t (*now_ms)(void *ctx);
  /* A uniformly distributed 32-bit number (need not be cryptographic). */
  uint32_t (*random32)(void *ctx);
  /*
   * Keeps the snapshot's bytes as the applied config, atomically (the A/B slots, henge_slots_write):
   * HENGE_OK, or HENGE_E_APPLY (the previous config stays; acked "failed").
   */
  henge_status (*store)(void *ctx, const uint8_t *bytes, size_t len);
  /* Shows the LED state (called on start and whenever it changes). */
  void (*set_led)(void *ctx, const henge_led *led);
  /* Optional: a line for people (no newline at the end). */
  void (*log)(void *ctx, henge_mcu_log_level level, const char *msg);
  /* Optional: the port's own setup of each new libcoap context (the Pico W's lwIP input wait handler). */
  void (*context_created)(void *ctx, coap_context_t *coap);
} henge_mcu_port;

typedef struct henge_mcu_config {
  const char *device_id;   /* [a-z0-9][a-z0-9-]{0,62} */
  const char *hub_host;    /* a name or an address */
  uint16_t hub_port;       /* 0: 5684 with a key, else 5683 */
  const char *key;         /* the device key text (43 characters) for DTLS-PSK; NULL: plain CoAP (hub --insecure) */
  uint32_t backoff_cap_ms; /* the longest wait between attempts (0: 60 s) */
  const char *agent_name;  /* telemetry _agent, e.g. "henge-fw-pico-w/0.1.0"; libcoap's version is added */
} henge_mcu_config;

typedef struct henge_mcu {
  henge_mcu_config cfg;
  const henge_mcu_port *port;
  henge_platform platform;
  henge_device dev;
  henge_snapshot work;
  henge_led led;
  bool led_shown;

  coap_context_t *ctx;
  coap_session_t *session;
  bool tearing_down;
  bool dtls_open;
  unsigned connections;
  uint64_t next_attempt_ms;
  /* What is in flight, due or abandoned, and whether the link is up and the relation held: the decisions
     are henge_link's (ports/common/henge_link.h, shared with henge-fw), the requests this client's. */
  henge_link link;
  bool session_failed;
  bool fail_refused;
  char fail_reason[160];
  char line[320]; /* log line scratch */
} henge_mcu;

/* A registration wanted (in flight, or due and waiting for an exchange in flight) this long without an answer ends the session. */
#define HENGE_MCU_REGISTER_TIMEOUT_MS HENGE_LINK_REGISTER_TIMEOUT_MS
/* The longest single wait in coap_io_process. */
#define HENGE_MCU_SLICE_MS 250u

/*
 * Starts the client: libcoap's startup, the core's device, and the applied snapshot restored from the
 * port's storage (`applied`, `applied_len`: its bytes, or NULL). HENGE_OK, HENGE_E_ARG (a config
 * field missing or malformed), HENGE_E_UNSUPPORTED (a key, and this libcoap has no DTLS). A restored
 * snapshot that does not decode is logged and ignored.
 */
henge_status henge_mcu_start(henge_mcu *c, const henge_mcu_config *cfg, const henge_mcu_port *port, const uint8_t *applied, size_t applied_len);

/*
 * Does what is due (connect, register, ack, re-register, telemetry, retry: one exchange at a time, newest
 * ack first as docs/protocol.md, "Ack" says; an ack goes at once beside an older ack or a re-registration
 * in flight, which runs on in libcoap with NSTART 2 and whose answer is ignored) and then, while a session is open,
 * lets libcoap wait for and handle input (coap_io_process) for at most `max_wait_ms`, less when
 * something is due sooner. Without a session (waiting to retry) it does not wait: `*idle_ms` says how
 * long the port may sleep (keeping its network stack polled) before the next call; with a session it
 * is 0. Call it forever. HENGE_OK; failures of the link are handled inside (logged, retried with
 * backoff).
 */
henge_status henge_mcu_step(henge_mcu *c, uint32_t max_wait_ms, uint32_t *idle_ms);

/* Re-register now (a button, a network change). HENGE_OK. */
henge_status henge_mcu_refresh(henge_mcu *c);

/* Ends the session and libcoap (e.g. before a firmware update). HENGE_OK. */
henge_status henge_mcu_stop(henge_mcu *c);

#ifdef __cplusplus
}
#endif

#endif /* HENGE_MCU_CLIENT_H */

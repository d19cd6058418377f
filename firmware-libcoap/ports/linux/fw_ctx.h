/*
 * fw_ctx.h: everything henge-fw keeps between two events, in one struct that the modules share by
 * pointer. main.c owns the only instance (static storage: the two decoded snapshots are large);
 * libcoap's handlers find it through their context's app data (link.c, link_rx.c), the core's
 * platform callbacks through henge_platform.ctx (device_io.c).
 *
 *   args.c       fills cfg
 *   main.c       key, the loop's timers (next_attempt_ms), the startup and shutdown order
 *   device_io.c  the device: platform, dev, snaps, state, inbox, rendered, the LED
 *   link.c       the libcoap context and session, the requests (link: what is in flight), the session's failure
 *   link_rx.c    what the responses, NACKs and events change in all of the above
 *   discover.c   the mDNS search (browse, hub_source, discover_err) when there is no --hub
 *   device_io.c  also --exec around an apply (hook_*, previous, queued); the process is hook.c's
 */
#ifndef FW_CTX_H
#define FW_CTX_H

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "henge.h"
#include "henge_coap.h"
#include "hook.h"
#include "render.h"
#include "state.h"

typedef struct fw_ctx {
  fw_config cfg;
  char key[520]; /* the device key, wiped at exit */
  bool has_key;

  /* the device */
  henge_platform platform;
  henge_device dev;
  henge_snapshot snaps[2];
  henge_snapshot *applied; /* the applied snapshot (valid when state.has_applied); its texts point into state.snapshot */
  henge_snapshot *work;    /* decoding target; its texts point into inbox */
  fw_state state;
  fw_buf inbox;
  fw_buf rendered;
  fw_buf keys_added, keys_removed, keys_changed; /* the "applied" line's key lists, reused */
  char apply_why[512];
  char led_now[48];

  /* --exec: an apply whose hook runs. Meanwhile its ack is held (the core has it pending as "applied"),
     and snapshots that arrive are not applied: the newest waits in `queued` for the hook to end. */
  fw_hook hook;
  bool hook_busy;
  fw_hook_result hook_result;
  fw_buf previous;   /* --out before the apply (when had_previous), put back if the hook fails */
  bool had_previous;
  const char *hook_via;           /* "registration" or "notification" */
  uint8_t hook_etag[9];           /* the snapshot's ETag (9 bytes: longer than a hash, refused alike) */
  size_t hook_etag_len;
  bool hook_has_etag;
  bool core_had_applied;          /* the core's applied snapshot before the apply, to go back to */
  bool core_acked;
  henge_mark core_applied;
  const char *hook_failure;       /* while the core is told the hook failed: p_apply fails with this */
  const char *hook_error;         /* ... and p_log names this error (HENGE_E_EXEC_FAILED) */
  fw_buf queued;
  bool has_queued;
  uint8_t queued_etag[9];
  size_t queued_etag_len;
  bool queued_has_etag;
  const char *queued_via;

  /* finding the hub: `--hub <text>` or `mdns <instance>` (the "connected" line's source) */
  char hub_source[300];
  henge_dnssd_browse browse; /* the last mDNS search (discover.c) */
  char discover_err[300];

  /* the link */
  coap_context_t *ctx;
  coap_session_t *session;
  bool tearing_down;
  bool dtls_open; /* this session's handshake completed */
  int connections; /* successful registrations after a (re)connect */
  uint64_t next_attempt_ms;
  /* What is in flight, due or abandoned, and whether the link is up and the relation held: the decisions
     are henge_link's (ports/common/henge_link.h), the requests link.c's. */
  henge_link link;
  uint8_t dereg_token[8];
  size_t dereg_token_len;
  bool dereg_answered;
  char dereg_code[8];
  bool session_failed;
  bool fail_refused;
  char fail_reason[300];
} fw_ctx;

#endif

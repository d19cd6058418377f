/*
 * henge-fw: the Linux port of the henge firmware. libcoap does CoAP (observe, Block2, retransmission,
 * DTLS-PSK); the portable core (core/henge.h) decides what to apply and what to ack; the port is the
 * glue, one concept a file:
 *
 *   main.c       signals, the loop, startup and shutdown (this file)
 *   args.c       the command line: options, paths, --out format, hub address
 *   fw_ctx.h     the state the modules share, one struct passed by pointer
 *   device_io.c  the core's platform (apply = write --out), the LED file, state.json, a snapshot's arrival,
 *                --exec around an apply (hook.c runs the process)
 *   changes.c    the key lists of the "applied" line
 *   link.c       the libcoap context and session, the requests (register, ack, telemetry, deregister)
 *   link_rx.c    libcoap's handlers: responses, NACKs, events, its log
 *   discover.c   without --hub: the hub over mDNS (a one-shot DNS-SD browse; the DNS messages are the core's)
 *   render.c, state.c, fsutil.c, fw_log.c, sys.c: --out and LED rendering, state.json, files and the
 *   lock and the key, JSON log lines, clocks and randomness
 *
 * The loop (docs/protocol.md, "Observe lifecycle"): register (GET /d/{id}/c, Observe 0, ETag of the
 * applied snapshot), handle the snapshot of every response and notification, POST the ack, re-register
 * at 70-85 % of Max-Age, one request at a time and newest ack first (link.c, fw_link_pump); when the
 * hub is gone (the registration gets no answer, an RST, a DTLS alert, a refusal) keep the applied config
 * and reconnect with exponential backoff and full jitter.
 *
 * main() turns the statuses of startup into exit codes. Nothing else here returns a status: on_signal
 * is a signal handler, install_signals cannot fail (sigaction refuses only invalid signals), and the
 * loop (run, retry_later) carries on after every failure by design (a failed send is the session's
 * failure: torn down and retried with backoff; anything else is logged) until a signal ends it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "device_io.h"
#include "fsutil.h"
#include "fw_ctx.h"
#include "fw_log.h"
#include "fw_status.h"
#include "henge.h"
#include "link.h"
#include "sys.h"

/* The longest single wait in coap_io_process, so that signals are seen promptly. */
#define LOOP_SLICE_MS 250
/* While a --exec hook runs, how often its pipes, exit and deadline are looked at. */
#define HOOK_SLICE_MS 10
/* How long stopping lets a hook in progress finish (the Node agent's STOP_DRAIN_MS). */
#define STOP_DRAIN_MS 5000

enum { EXIT_USAGE = 2, EXIT_CONFLICT = 7 };

/* Set by the signal handler, read by the loop: the only state outside fw_ctx (a handler takes no pointer). */
static volatile sig_atomic_t stop_requested, refresh_requested;

/* henge-fw's state; static storage, as its two decoded snapshots are large. Only main() names it. */
static fw_ctx the_fw;

static void on_signal(int sig) {
  if (sig == SIGHUP) refresh_requested = 1;
  else stop_requested = 1;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* The session failed: tear it down, schedule the next attempt with backoff, and say why. */
static void retry_later(fw_ctx *fw) {
  fw_link_teardown(fw);
  fw->session_failed = false;
  uint32_t wait = 0;
  henge_status hs = henge_device_retry_delay(&fw->dev, &wait);
  if (hs != HENGE_OK) {
    (void)fw_device_core_failed("henge_device_retry_delay", hs); /* logged; retry at once */
    wait = 0;
  }
  fw->next_attempt_ms = fw_now_ms() + wait;
  fw_line l;
  fw_line_start(&l);
  char err[400], esc[340];
  fw_json_escape(esc, sizeof esc, fw->fail_reason, strlen(fw->fail_reason));
  snprintf(err, sizeof err, "{\"message\":\"%s\"}", esc);
  fw_line_raw(&l, "err", err);
  fw_line_uint(&l, "attempt", fw->dev.backoff.attempts);
  fw_line_uint(&l, "retryInMs", wait);
  if (fw->state.has_applied) fw_line_uint(&l, "appliedVersion", fw->state.mark.version);
  else fw_line_null(&l, "appliedVersion");
  bool not_known = strstr(fw->fail_reason, "does not know") != NULL;
  fw_line_emit(&l, not_known ? FW_ERROR : FW_WARN,
               fw->fail_refused ? "the hub refused or ended the observation; keeping the last applied config and retrying"
                                : "hub unreachable; keeping the last applied config and retrying");
}

/*
 * The loop, until SIGINT or SIGTERM. The link's statuses are not acted on here: a failure to reach the
 * hub is recorded as the session's (fw_link_fail) and handled by retry_later below; the rest is logged
 * where it happened, and the next registration or ack round tries again.
 */
static void run(fw_ctx *fw) {
  fw->next_attempt_ms = fw_now_ms();
  while (!stop_requested) {
    (void)fw_device_poll_hook(fw, false); /* logged; an apply whose hook ended is settled, its ack due */
    uint64_t now = fw_now_ms();
    if (fw->session == NULL && now >= fw->next_attempt_ms) (void)fw_link_connect(fw);
    if (refresh_requested) {
      refresh_requested = 0;
      fw_log(FW_INFO, "re-registering now");
      /* Due now: it goes as soon as no exchange is in flight (one in flight already answers for it). */
      bool due = false;
      (void)henge_link_refresh(&fw->link, now, &due); /* cannot fail: non-NULL pointers */
      if (!due && fw->session == NULL) fw->next_attempt_ms = now;
    }
    /* Registration, ack, re-registration, telemetry: one at a time, newest ack first (link.c). */
    (void)fw_link_pump(fw, false);
    (void)fw_link_check_registration(fw);
    if (fw->session_failed) {
      if (stop_requested) break; /* e.g. a signal cut the mDNS search short: nothing to retry */
      retry_later(fw);
      continue;
    }
    /* Sleep until the next thing to do, in slices (signals are seen at once either way). */
    uint64_t next = now + LOOP_SLICE_MS, link_next = UINT64_MAX;
    if (fw->session == NULL && fw->next_attempt_ms < next) next = fw->next_attempt_ms;
    if (fw_link_next_ms(fw, &link_next) == FW_OK && link_next < next) next = link_next;
    if (fw->hook_busy && now + HOOK_SLICE_MS < next) next = now + HOOK_SLICE_MS;
    now = fw_now_ms();
    uint32_t wait = next > now ? (uint32_t)(next - now) : 0;
    if (fw->ctx != NULL) {
      coap_io_process(fw->ctx, wait == 0 ? COAP_IO_NO_WAIT : wait);
    } else if (wait > 0) {
      struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
      nanosleep(&ts, NULL); /* a signal cuts it short */
    }
  }
}

/*
 * Stopping while a hook runs: let it finish, STOP_DRAIN_MS at most, the link still served (its apply
 * then counts, or --out goes back, as usual, and the ack is sent); after that its process group is killed
 * and --out goes back to what state.json holds, without an ack. As the Node agent's shutdown does.
 */
static void drain_hook(fw_ctx *fw) {
  uint64_t until = fw_now_ms() + STOP_DRAIN_MS;
  while (fw->hook_busy && fw_now_ms() < until) {
    (void)fw_device_poll_hook(fw, true); /* logged */
    if (!fw->hook_busy) break;
    if (fw->ctx != NULL) {
      coap_io_process(fw->ctx, HOOK_SLICE_MS);
    } else {
      struct timespec ts = {0, HOOK_SLICE_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  if (fw->hook_busy) {
    (void)fw_device_stop_hook(fw); /* logged */
    return;
  }
  /* Its ack goes now (beside an exchange it supersedes); the deregistration's wait reads the answer.
     Best effort, as the rest of stopping. */
  (void)fw_link_pump(fw, true);
}

int main(int argc, char **argv) {
  fw_ctx *fw = &the_fw;
  bool done = false;
  fw_status st = fw_args_parse(argc, argv, &fw->cfg, &done);
  if (st != FW_OK) return EXIT_USAGE;
  if (done) return 0; /* --help, --version */

  char err[600];
  bool found = false;
  if (fw_read_key(fw->cfg.key_file, fw->cfg.state_dir, fw->key, sizeof fw->key, &found, err, sizeof err) != FW_OK) {
    fprintf(stderr, "henge-fw: %s\n", err);
    return fw->cfg.key_file != NULL ? EXIT_USAGE : 1;
  }
  fw->has_key = found;
  if (fw->cfg.hub != NULL) {
    if (fw_args_hub(&fw->cfg, fw->has_key ? FW_DEFAULT_COAPS_PORT : FW_DEFAULT_COAP_PORT) != FW_OK) return EXIT_USAGE;
    snprintf(fw->hub_source, sizeof fw->hub_source, "--hub %s", fw->cfg.hub);
  }
  fw_log_setup(fw->cfg.log_level, fw->cfg.id, fw->has_key ? fw->key : NULL);
  install_signals();

  /* The state folder: created 0700, locked, read. */
  if (fw_mkdirs(fw->cfg.state_dir, 0700) != FW_OK) {
    fprintf(stderr, "henge-fw: cannot create state folder %s: %s\n", fw->cfg.state_dir, strerror(errno));
    return 1;
  }
  st = fw_lock_state(fw->cfg.state_dir, err, sizeof err);
  if (st != FW_OK) {
    fprintf(stderr, "henge-fw: %s\n", err);
    return st == FW_E_BUSY ? EXIT_CONFLICT : 1;
  }
  if (fw_device_open(fw) != FW_OK) return 1;
  if (fw_link_start(fw) != FW_OK) return 1;

  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "hub", fw->cfg.hub != NULL ? fw->cfg.hub : "mdns");
  fw_line_bool(&l, "coaps", fw->has_key);
  fw_line_str(&l, "out", fw->cfg.out_path);
  fw_line_str(&l, "format", fw_format_name(fw->cfg.format));
  fw_line_bool(&l, "exec", fw->cfg.exec != NULL);
  if (fw->cfg.led) fw_line_str(&l, "led", fw->cfg.led_path);
  fw_line_int(&l, "pid", (long long)getpid());
  fw_line_str(&l, "libcoap", fw_libcoap_version());
  fw_line_emit(&l, FW_INFO, "agent started");

  run(fw);

  fw_log(FW_INFO, "stopping");
  drain_hook(fw);
  (void)fw_link_deregister(fw); /* best effort: it logs "deregistered" or that it got no answer */
  fw_link_stop(fw);
  fw_device_close(fw);
  memset(fw->key, 0, sizeof fw->key);
  (void)fw_unlock_state(); /* best effort: a lock left behind is taken over as stale (its process is gone) */
  return 0;
}

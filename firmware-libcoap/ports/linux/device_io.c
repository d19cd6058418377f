/*
 * device_io.c: the device side (device_io.h): the core's platform callbacks, the LED, state.json,
 * restoring --out at startup, a snapshot's arrival, and --exec around an apply (the hook's process is
 * hook.c's; here: what the apply does before and after it, as agent/agent.ts applyAndAck).
 *
 * Functions that can fail return an fw_status (the platform callbacks, a henge_status, as
 * core/henge.h requires), after logging what failed. Three return nothing and cannot fail: p_log (the
 * core's log hook is void), log_applied (a log line) and fw_device_close (frees memory).
 */
#include "device_io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "changes.h"
#include "discover.h"
#include "fsutil.h"
#include "fw_log.h"
#include "render.h"
#include "state.h"
#include "sys.h"

fw_status fw_device_core_failed(const char *call, henge_status st) {
  char err[120];
  snprintf(err, sizeof err, "{\"code\":\"%s\"}", henge_status_name(st));
  fw_line l;
  fw_line_start(&l);
  fw_line_raw(&l, "err", err);
  fw_line_str(&l, "call", call);
  fw_line_emit(&l, FW_ERROR, "the firmware core refused a call");
  return FW_E_CORE;
}

/* ---------------------------------------------------------------------------------------------- */
/* the platform the core calls                                                                     */

static henge_status p_now(void *ctx, uint64_t *ms) {
  (void)ctx;
  *ms = fw_now_ms();
  return HENGE_OK;
}

static henge_status p_random(void *ctx, uint32_t *r) {
  (void)ctx;
  *r = fw_random32();
  return HENGE_OK;
}

static void p_log(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *f) {
  fw_ctx *fw = ctx;
  static const int levels[] = {FW_DEBUG, FW_INFO, FW_WARN, FW_ERROR};
  fw_line l;
  fw_line_start(&l);
  if (f->has_version) fw_line_uint(&l, "version", f->version);
  if (fw->hook_error != NULL && level == HENGE_LOG_ERROR) {
    /* The core reports the failed hook: the Node agent's line (its ExecError, the status, the version kept). */
    char err[600], esc[512];
    fw_json_escape(esc, sizeof esc, fw->hook_error, strlen(fw->hook_error));
    snprintf(err, sizeof err, "{\"code\":\"HENGE_E_EXEC_FAILED\",\"message\":\"%s\"}", esc);
    fw_line_str(&l, "via", fw->hook_via);
    fw_line_raw(&l, "err", err);
    fw_line_str(&l, "status", "failed");
    if (fw->state.has_applied) fw_line_uint(&l, "keptVersion", fw->state.mark.version);
    else fw_line_null(&l, "keptVersion");
    fw_line_emit(&l, FW_ERROR, msg);
    return;
  }
  if (f->status != HENGE_OK || f->reason != NULL) {
    char err[600];
    char esc[512];
    fw_json_escape(esc, sizeof esc, f->reason ? f->reason : "", f->reason ? strlen(f->reason) : 0);
    snprintf(err, sizeof err, "{\"code\":\"%s\",\"message\":\"%s\"}", henge_status_name(f->status), esc);
    if (f->status == HENGE_OK) fw_line_str(&l, "reason", f->reason);
    else fw_line_raw(&l, "err", err);
  }
  fw_line_emit(&l, levels[level], msg);
}

/*
 * --out as it is, into fw->previous (fw->had_previous: false when there is none), to put back if the
 * hook fails. FW_OK, or FW_E_IO / FW_E_NOMEM with the reason in fw->apply_why.
 */
static fw_status read_previous(fw_ctx *fw) {
  fw->had_previous = false;
  fw_status st = fw_read_file_max(fw->cfg.out_path, &fw->previous, FW_PREVIOUS_MAX);
  if (st == FW_OK) {
    fw->had_previous = true;
    return FW_OK;
  }
  if (errno == ENOENT) return FW_OK;
  const char *what = errno == EFBIG ? "larger than henge-fw keeps to restore it (16 MiB)" : strerror(errno);
  if (snprintf(fw->apply_why, sizeof fw->apply_why, "cannot read the current %s: %s", fw->cfg.out_path, what) >= (int)sizeof fw->apply_why)
    snprintf(fw->apply_why, sizeof fw->apply_why, "cannot read the current --out: %s", what); /* a path too long for the message */
  return st;
}

/* Apply: render the values, write --out atomically (temp file, fsync, read back, rename, fsync folder). */
static henge_status p_apply(void *ctx, const henge_snapshot *s, const uint8_t *bytes, size_t len, const char **why) {
  fw_ctx *fw = ctx;
  (void)bytes;
  (void)len;
  if (fw->hook_failure != NULL) {
    /* Not an apply: the hook of this snapshot failed and the core records it as an apply that failed. */
    *why = fw->hook_failure;
    return HENGE_E_APPLY;
  }
  henge_status st = fw_render(fw->cfg.format, s, &fw->rendered, fw->apply_why, sizeof fw->apply_why);
  if (st != HENGE_OK) {
    *why = fw->apply_why;
    return st;
  }
  if (fw->cfg.exec != NULL && read_previous(fw) != FW_OK) {
    *why = fw->apply_why;
    return HENGE_E_APPLY;
  }
  if (fw_write_atomic(fw->cfg.out_path, fw->rendered.data, fw->rendered.len, -1, false, fw->apply_why, sizeof fw->apply_why) != FW_OK) {
    *why = fw->apply_why;
    return HENGE_E_APPLY;
  }
  return HENGE_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the LED, state.json, --out at startup                                                            */

/* The LED file follows `s` (NULL: off). FW_OK (also without --led), or FW_E_IO (logged). */
static fw_status update_led(fw_ctx *fw, const henge_snapshot *s) {
  if (fw->cfg.led == NULL) return FW_OK;
  char want[48];
  if (s != NULL) fw_led_state(s, want);
  else snprintf(want, sizeof want, "off");
  if (strcmp(want, fw->led_now) == 0) return FW_OK;
  char line[64], err[512];
  int n = snprintf(line, sizeof line, "%s\n", want);
  if (fw_write_atomic(fw->cfg.led_path, line, (size_t)n, -1, false, err, sizeof err) != FW_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "err", err);
    fw_line_emit(&l, FW_ERROR, "could not write the LED file");
    return FW_E_IO;
  }
  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "led", want);
  if (fw->led_now[0]) fw_line_str(&l, "was", fw->led_now);
  fw_line_emit(&l, FW_INFO, "led");
  snprintf(fw->led_now, sizeof fw->led_now, "%s", want);
  return FW_OK;
}

fw_status fw_device_save_state(fw_ctx *fw) {
  char err[600];
  fw_status st = fw_state_save(fw->cfg.state_file, fw->cfg.id, &fw->state, err, sizeof err);
  if (st != FW_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_raw(&l, "err", "{}");
    fw_line_str(&l, "why", err);
    fw_line_emit(&l, FW_ERROR, "could not save the state folder; the config file is applied");
  }
  return st;
}

/*
 * --out from the state folder's snapshot when it is missing or differs. FW_OK (also when nothing was
 * applied yet, or the file is right), FW_E_INVALID (this format cannot hold the snapshot) or FW_E_IO;
 * both logged, --out left as it is.
 */
static fw_status restore_out(fw_ctx *fw) {
  if (!fw->state.has_applied) return FW_OK;
  char why[512];
  if (fw_render(fw->cfg.format, fw->applied, &fw->rendered, why, sizeof why) != HENGE_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", why);
    fw_line_uint(&l, "version", fw->state.mark.version);
    fw_line_emit(&l, FW_WARN, "cannot render the saved snapshot in this format; --out left as it is");
    return FW_E_INVALID;
  }
  fw_buf current;
  fw_buf_init(&current);
  bool exists = fw_read_file(fw->cfg.out_path, &current) == FW_OK;
  bool same = exists && current.len == fw->rendered.len && memcmp(current.data, fw->rendered.data, current.len) == 0;
  fw_buf_free(&current);
  if (same) return FW_OK;
  if (fw_write_atomic(fw->cfg.out_path, fw->rendered.data, fw->rendered.len, -1, false, why, sizeof why) != FW_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", why);
    fw_line_emit(&l, FW_ERROR, "could not restore --out from the state folder");
    return FW_E_IO;
  }
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", fw->state.mark.version);
  fw_line_str(&l, "out", fw->cfg.out_path);
  fw_line_str(&l, "was", exists ? "different" : "missing");
  fw_line_emit(&l, FW_INFO, "restored --out from the state folder");
  return FW_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* startup, shutdown                                                                               */

fw_status fw_device_open(fw_ctx *fw) {
  char err[600];
  fw->applied = &fw->snaps[0];
  fw->work = &fw->snaps[1];
  fw_state_init(&fw->state);
  fw_buf_init(&fw->inbox);
  fw_buf_init(&fw->rendered);
  fw_buf_init(&fw->keys_added);
  fw_buf_init(&fw->keys_removed);
  fw_buf_init(&fw->keys_changed);
  fw_buf_init(&fw->previous);
  fw_buf_init(&fw->queued);
  fw_hook_init(&fw->hook);
  if (fw_state_load(fw->cfg.state_file, fw->cfg.id, &fw->state, fw->applied, err, sizeof err) != FW_OK) {
    fw_line l;
    fw_line_start(&l);
    fw_line_str(&l, "why", err);
    fw_line_str(&l, "state", fw->cfg.state_file);
    fw_line_emit(&l, FW_WARN, "state folder unreadable; starting without a last applied config");
  }

  fw->platform.ctx = fw;
  fw->platform.apply = p_apply;
  fw->platform.now_ms = p_now;
  fw->platform.random_u32 = p_random;
  fw->platform.log = p_log;
  fw->platform.discover = fw_discover_hub; /* used when there is no --hub (link.c) */
  henge_status hs = henge_device_init(&fw->dev, &fw->platform, (uint32_t)(fw->cfg.backoff_max_s * 1000));
  if (hs != HENGE_OK) return fw_device_core_failed("henge_device_init", hs);
  if (fw->state.has_applied) {
    hs = henge_device_restore(&fw->dev, &fw->state.mark, fw->state.acked);
    if (hs != HENGE_OK) return fw_device_core_failed("henge_device_restore", hs);
  }

  /* --out's folder, then --out itself from the state folder when it is missing or differs. Both best
     effort: restore_out and update_led log what failed, and a folder that cannot be made shows there. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", fw->cfg.out_path);
  char *slash = strrchr(dir, '/');
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    (void)fw_mkdirs(dir, 0755);
  }
  (void)restore_out(fw);
  (void)update_led(fw, fw->state.has_applied ? fw->applied : NULL);
  return FW_OK;
}

void fw_device_close(fw_ctx *fw) {
  fw_state_free(&fw->state);
  fw_buf_free(&fw->inbox);
  fw_buf_free(&fw->rendered);
  fw_buf_free(&fw->keys_added);
  fw_buf_free(&fw->keys_removed);
  fw_buf_free(&fw->keys_changed);
  fw_buf_free(&fw->previous);
  fw_buf_free(&fw->queued);
  if (fw->hook.active) (void)fw_hook_stop(&fw->hook); /* freeing: a hook still running ends with henge-fw */
  fw->hook_busy = false;
}

/* ---------------------------------------------------------------------------------------------- */
/* a snapshot arrives                                                                              */

/* The "applied" line: what the new snapshot (fw->applied by now) changed, and why it applied. */
static void log_applied(fw_ctx *fw, const henge_mark *after, bool had, const henge_mark *before, henge_decision why, size_t len,
                        const char *via, bool keys_ok) {
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", after->version);
  fw_line_str(&l, "via", via);
  fw_line_uint(&l, "bytes", len);
  if (len > 1024) fw_line_bool(&l, "blockwise", true);
  if (had) fw_line_uint(&l, "previousVersion", before->version);
  else fw_line_null(&l, "previousVersion");
  fw_line_str(&l, "reason", henge_decision_name(why));
  if (why == HENGE_APPLY_NEW_INCARNATION) {
    char inc[17];
    for (int i = 0; i < 8; i++) sprintf(inc + 2 * i, "%02x", after->incarnation[i]);
    fw_line_str(&l, "incarnation", inc);
  }
  fw_line_raw(&l, "added", keys_ok ? fw->keys_added.data : "[]");
  fw_line_raw(&l, "removed", keys_ok ? fw->keys_removed.data : "[]");
  fw_line_raw(&l, "changed", keys_ok ? fw->keys_changed.data : "[]");
  fw_line_emit(&l, FW_INFO, "applied");
}

/*
 * The snapshot in fw->work (its bytes in fw->inbox, `len` of them) is applied for good: it becomes
 * fw->applied, is saved to the state folder and logged ("applied"), and the LED follows it. FW_OK, or
 * FW_E_CORE (logged).
 */
static fw_status finish_apply(fw_ctx *fw, size_t len, const char *via) {
  bool had = fw->state.has_applied;
  henge_mark before = fw->state.mark;
  henge_mark after;
  henge_decision why = HENGE_APPLY_FIRST;
  henge_status hs = henge_mark_of(fw->work, &after);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_mark_of", hs);
  hs = henge_decide(had ? &before : NULL, &after, &why);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_decide", hs);
  /* The key lists only feed the log line: out of memory, it says [] and the snapshot still counts. */
  bool keys_ok = fw_changed_keys(&fw->keys_added, fw->work, had ? fw->applied : NULL, FW_KEYS_ADDED) == FW_OK &&
                 fw_changed_keys(&fw->keys_removed, had ? fw->applied : NULL, fw->work, FW_KEYS_ADDED) == FW_OK &&
                 fw_changed_keys(&fw->keys_changed, fw->work, had ? fw->applied : NULL, FW_KEYS_CHANGED) == FW_OK;

  /* The new snapshot becomes the applied one: swap the buffers its fields point into, and the structs. */
  fw_buf tmp = fw->state.snapshot;
  fw->state.snapshot = fw->inbox;
  fw->inbox = tmp;
  henge_snapshot *s = fw->applied;
  fw->applied = fw->work;
  fw->work = s;
  fw->state.has_applied = true;
  fw->state.mark = after;
  fw->state.acked = false;
  fw->state.applied_at = fw_wall_ms();
  /* A state folder that cannot be written is logged; the config file is applied and the hub gets its
     ack all the same (as the Node agent does). */
  (void)fw_device_save_state(fw);
  log_applied(fw, &after, had, &before, why, len, via, keys_ok);
  (void)update_led(fw, fw->applied); /* a LED file that cannot be written is logged; the snapshot counts */
  return FW_OK;
}

/* Keeps a snapshot that came while a hook runs (the newest replaces an older one). FW_OK, or FW_E_NOMEM (logged). */
static fw_status queue_snapshot(fw_ctx *fw, const uint8_t *data, size_t len, const uint8_t *etag, size_t etag_len, const char *via) {
  fw_buf_reset(&fw->queued);
  fw_buf_put(&fw->queued, data, len);
  if (fw->queued.failed) {
    fw->has_queued = false;
    fw_buf_free(&fw->queued);
    fw_log(FW_ERROR, "out of memory for a snapshot; ignored");
    return FW_E_NOMEM;
  }
  fw->has_queued = true;
  fw->queued_via = via;
  fw->queued_has_etag = etag != NULL;
  fw->queued_etag_len = etag_len < sizeof fw->queued_etag ? etag_len : sizeof fw->queued_etag;
  if (etag != NULL) memcpy(fw->queued_etag, etag, fw->queued_etag_len);
  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "via", via);
  fw_line_uint(&l, "bytes", len);
  fw_line_emit(&l, FW_DEBUG, "--exec still running; the snapshot waits for it");
  return FW_OK;
}

fw_status fw_device_on_snapshot(fw_ctx *fw, const uint8_t *data, size_t len, const uint8_t *etag, size_t etag_len, const char *via) {
  if (fw->hook_busy) return queue_snapshot(fw, data, len, etag, etag_len, via);
  fw_buf_reset(&fw->inbox);
  fw_buf_put(&fw->inbox, data, len);
  if (fw->inbox.failed) {
    fw_log(FW_ERROR, "out of memory for a snapshot; ignored");
    return FW_E_NOMEM;
  }
  /* The core's applied snapshot, to go back to if a hook fails. */
  fw->core_had_applied = fw->dev.has_applied;
  fw->core_applied = fw->dev.applied;
  fw->core_acked = fw->dev.applied_acked;
  henge_outcome outcome;
  henge_status hs = henge_device_on_snapshot(&fw->dev, (const uint8_t *)fw->inbox.data, fw->inbox.len, etag, etag_len, fw->work, &outcome);
  if (hs != HENGE_OK) return fw_device_core_failed("henge_device_on_snapshot", hs);
  if (outcome != HENGE_OUT_APPLIED) {
    if (outcome == HENGE_OUT_CURRENT || outcome == HENGE_OUT_OLDER) {
      fw_line l;
      fw_line_start(&l);
      fw_line_uint(&l, "version", fw->work->version);
      fw_line_str(&l, "via", via);
      fw_line_emit(&l, FW_DEBUG, outcome == HENGE_OUT_CURRENT ? "config is current" : "snapshot older than the applied one; ignored");
    }
    return FW_OK;
  }
  if (fw->cfg.exec == NULL) return finish_apply(fw, len, via);

  /* --out is written: the hook runs now, beside the loop; fw_device_poll_hook ends the apply. */
  fw->hook_via = via;
  fw->hook_has_etag = etag != NULL;
  fw->hook_etag_len = etag_len < sizeof fw->hook_etag ? etag_len : sizeof fw->hook_etag;
  if (etag != NULL) memcpy(fw->hook_etag, etag, fw->hook_etag_len);
  fw->hook_busy = true;
  fw_status st = fw_hook_start(&fw->hook, fw->cfg.exec, fw->cfg.exec_timeout_s * 1000.0, fw->cfg.out_path, fw->work->version, fw->cfg.id);
  /* A hook that could not start is done already (failed): the next poll says so. */
  return st == FW_E_NOMEM ? FW_OK : st;
}

/* Puts back --out as it was before the apply (atomically), or removes it if there was none. FW_OK, or FW_E_IO (logged). */
static fw_status restore_previous(fw_ctx *fw) {
  char err[600];
  fw_status st = fw->had_previous ? fw_write_atomic(fw->cfg.out_path, fw->previous.data, fw->previous.len, -1, false, err, sizeof err)
                                  : fw_remove_durable(fw->cfg.out_path, err, sizeof err);
  if (st == FW_OK) return FW_OK;
  char e[700], esc[620];
  fw_json_escape(esc, sizeof esc, err, strlen(err));
  snprintf(e, sizeof e, "{\"message\":\"%s\"}", esc);
  fw_line l;
  fw_line_start(&l);
  fw_line_raw(&l, "err", e);
  fw_line_str(&l, "out", fw->cfg.out_path);
  fw_line_emit(&l, FW_ERROR, "could not restore the previous config file");
  return st;
}

/* The apply a hook was running for does not count: --out goes back (logged) and the core's applied snapshot is the one before it. FW_OK, or the restore's failure. */
static fw_status undo_apply(fw_ctx *fw) {
  fw_status st = restore_previous(fw);
  fw->dev.has_applied = fw->core_had_applied;
  fw->dev.applied = fw->core_applied;
  fw->dev.applied_acked = fw->core_acked;
  return st;
}

/* The hook is done: the apply counts (saved, logged, the LED), or --out goes back and the core acks "failed". */
static fw_status hook_done(fw_ctx *fw) {
  fw_hook_result *r = &fw->hook_result;
  fw_status st = fw_hook_finish(&fw->hook, r);
  fw->hook_busy = false;
  if (st != FW_OK) return st;
  if (r->ok) {
    fw_line l;
    fw_line_start(&l);
    fw_line_uint(&l, "version", fw->work->version);
    fw_line_uint(&l, "ms", r->ms);
    fw_line_str(&l, "stdoutTail", r->stdout_tail);
    fw_line_emit(&l, FW_DEBUG, "--exec succeeded");
    st = finish_apply(fw, fw->inbox.len, fw->hook_via);
  } else {
    st = undo_apply(fw); /* the hub learns that the hook failed either way */
    /* Then the same snapshot again through the core, whose apply fails this time with the hook's
       message: it logs it, marks it failed (not retried until a newer one comes) and makes the "failed"
       ack pending, as for any apply that fails. */
    fw->hook_failure = r->message;
    fw->hook_error = r->error;
    henge_outcome outcome;
    henge_status hs = henge_device_on_snapshot(&fw->dev, (const uint8_t *)fw->inbox.data, fw->inbox.len, fw->hook_has_etag ? fw->hook_etag : NULL,
                                               fw->hook_etag_len, fw->work, &outcome);
    fw->hook_failure = NULL;
    fw->hook_error = NULL;
    if (hs != HENGE_OK) st = fw_device_core_failed("henge_device_on_snapshot", hs);
  }
  fw_buf_free(&fw->previous); /* up to the size of --out: not kept between applies */
  fw->had_previous = false;
  fw->link.ack_due = true;
  return st;
}

fw_status fw_device_poll_hook(fw_ctx *fw, bool stopping) {
  if (!fw->hook_busy) return FW_OK;
  bool done = false;
  fw_status st = fw_hook_poll(&fw->hook, fw_now_ms(), &done);
  if (!done) return st;
  fw_status dst = hook_done(fw);
  if (dst != FW_OK) st = dst;
  /* The newest snapshot that came meanwhile (not when stopping: the Node agent handles none then). */
  if (!stopping && fw->has_queued) {
    fw->has_queued = false;
    fw_status qst = fw_device_on_snapshot(fw, (const uint8_t *)fw->queued.data, fw->queued.len, fw->queued_has_etag ? fw->queued_etag : NULL,
                                          fw->queued_etag_len, fw->queued_via);
    fw_buf_reset(&fw->queued);
    if (qst != FW_OK) st = qst;
  }
  return st;
}

fw_status fw_device_stop_hook(fw_ctx *fw) {
  if (!fw->hook_busy) return FW_OK;
  fw_status st = fw_hook_stop(&fw->hook);
  fw->hook_busy = false;
  /* --out goes back to what state.json holds; the core forgets the apply; no ack (the hub sends this
     snapshot again at the next registration), as the Node agent does. */
  fw_status rst = undo_apply(fw);
  fw->dev.has_pending = false; /* the stopped apply's "applied" ack: never sent (henge-fw is stopping) */
  fw->link.ack_due = false;
  fw_buf_free(&fw->previous);
  fw->had_previous = false;
  fw_line l;
  fw_line_start(&l);
  fw_line_uint(&l, "version", fw->work->version);
  if (fw->state.has_applied) fw_line_uint(&l, "keptVersion", fw->state.mark.version);
  else fw_line_null(&l, "keptVersion");
  fw_line_emit(&l, FW_WARN, "stopped during --exec; the previous config is back");
  return st != FW_OK ? st : rst;
}

/*
 * henge_device.c: what a device does with what the hub sends (docs/protocol.md, "Observe lifecycle",
 * "Version and incarnation rules", "Ack"), between a transport that brings payloads and a platform
 * that applies them. The same decisions as the Node agent (agent/agent.ts).
 */
#include "henge_internal.h"

#include <string.h>

HENGE_STATIC_ASSERT(HENGE_MAX_TEXT_LEN <= HENGE_PROTOCOL_MAX_TEXT, text_limit_within_protocol);
HENGE_STATIC_ASSERT(HENGE_MAX_FIELDS <= HENGE_PROTOCOL_MAX_FIELDS, fields_within_protocol);
HENGE_STATIC_ASSERT(HENGE_MAX_KEY_LEN == 64, key_length_is_the_protocols);
HENGE_STATIC_ASSERT(HENGE_TEXT_ARENA_BYTES <= 65535, arena_offsets_fit_16_bits);
HENGE_STATIC_ASSERT(HENGE_ACK_MESSAGE_MAX >= 16 && HENGE_ACK_MESSAGE_MAX <= 256, ack_message_within_protocol);

static void dlog(const henge_device *dev, henge_log_level level, const char *msg, bool has_version, uint64_t version, henge_status st, const char *reason) {
  const henge_platform *p = dev->platform;
  if (p == NULL || p->log == NULL) return;
  henge_log_fields f;
  f.has_version = has_version;
  f.version = version;
  f.status = st;
  f.reason = reason;
  p->log(p->ctx, level, msg, &f);
}

henge_status henge_device_init(henge_device *dev, const henge_platform *platform, uint32_t backoff_cap_ms) {
  if (dev == NULL || platform == NULL) return HENGE_E_ARG;
  memset(dev, 0, sizeof *dev);
  dev->platform = platform;
  return henge_backoff_init(&dev->backoff, HENGE_BACKOFF_BASE_MS, backoff_cap_ms);
}

henge_status henge_device_restore(henge_device *dev, const henge_mark *applied, bool acked) {
  if (dev == NULL || applied == NULL) return HENGE_E_ARG;
  dev->has_applied = true;
  dev->applied = *applied;
  dev->applied_acked = acked;
  return HENGE_OK;
}

/* Makes `mark`'s ack with `status` (and an optional message) the pending one. */
static void set_pending(henge_device *dev, const henge_mark *mark, henge_ack_status status, const char *message) {
  henge_ack *a = &dev->pending;
  memset(a, 0, sizeof *a);
  a->version = mark->version;
  a->status = (uint8_t)status;
  a->has_hash = true;
  a->has_incarnation = true;
  memcpy(a->hash, mark->hash, HENGE_HASH_BYTES);
  memcpy(a->incarnation, mark->incarnation, HENGE_INCARNATION_BYTES);
  if (message != NULL) {
    size_t len = strlen(message);
    size_t keep = len;
    bool cut = len > HENGE_ACK_MESSAGE_MAX;
    if (cut) keep = henge_utf8_prefix((const uint8_t *)message, len, HENGE_ACK_MESSAGE_MAX - 3);
    memcpy(dev->pending_message, message, keep);
    if (cut) {
      memcpy(dev->pending_message + keep, "...", 3);
      keep += 3;
    }
    a->message = dev->pending_message;
    a->message_len = keep;
  }
  dev->has_pending = true;
}

static henge_status ack_if_unconfirmed(henge_device *dev) {
  /* An ack still pending goes again as it is; else the applied snapshot's ack, if never confirmed. */
  if (!dev->has_pending && dev->has_applied && !dev->applied_acked) set_pending(dev, &dev->applied, HENGE_ACK_APPLIED, NULL);
  return HENGE_OK;
}

static bool same_mark(const henge_mark *a, const henge_mark *b) {
  return a->version == b->version && memcmp(a->hash, b->hash, HENGE_HASH_BYTES) == 0 &&
         memcmp(a->incarnation, b->incarnation, HENGE_INCARNATION_BYTES) == 0;
}

henge_status henge_device_on_snapshot(henge_device *dev, const uint8_t *bytes, size_t len, const uint8_t *etag, size_t etag_len,
                                      henge_snapshot *work, henge_outcome *outcome) {
  if (dev == NULL || work == NULL || outcome == NULL || (bytes == NULL && len > 0)) return HENGE_E_ARG;
  henge_status st = henge_snapshot_decode(bytes, len, work);
  henge_mark mark;
  if (st != HENGE_OK) {
    if (st == HENGE_E_LIMIT && work->envelope_ok) {
      /* Valid for the protocol, too big for this device: the hub learns why. */
      henge_mark_of(work, &mark);
      dlog(dev, HENGE_LOG_ERROR, "snapshot rejected", true, work->version, st, work->error);
      set_pending(dev, &mark, HENGE_ACK_REJECTED, work->error != NULL ? work->error : "beyond this device's limits");
      dev->has_failed = true;
      dev->failed = mark;
      *outcome = HENGE_OUT_REJECTED;
      return HENGE_OK;
    }
    /* Without a version there is nothing to ack; the next registration fetches it again. */
    dlog(dev, HENGE_LOG_ERROR, "snapshot not decodable; ignored", false, 0, st, work->error);
    *outcome = HENGE_OUT_UNDECODABLE;
    return HENGE_OK;
  }
  henge_mark_of(work, &mark);
  if (etag != NULL && (etag_len != HENGE_HASH_BYTES || memcmp(etag, work->hash, HENGE_HASH_BYTES) != 0)) {
    dlog(dev, HENGE_LOG_ERROR, "snapshot rejected", true, work->version, HENGE_E_INTEGRITY, "the ETag is not the snapshot hash");
    set_pending(dev, &mark, HENGE_ACK_REJECTED, "the ETag is not the snapshot hash");
    *outcome = HENGE_OUT_REJECTED;
    return HENGE_OK;
  }
  henge_decision d;
  henge_decide(dev->has_applied ? &dev->applied : NULL, &mark, &d);
  if (!HENGE_DECISION_APPLIES(d)) {
    dlog(dev, HENGE_LOG_DEBUG, "snapshot not newer than the applied one; ignored", true, mark.version, HENGE_OK, henge_decision_name(d));
    if (d == HENGE_IGNORE_SAME) {
      ack_if_unconfirmed(dev);
      *outcome = HENGE_OUT_CURRENT;
    } else {
      *outcome = HENGE_OUT_OLDER;
    }
    return HENGE_OK;
  }
  if (dev->has_failed && same_mark(&dev->failed, &mark)) {
    dlog(dev, HENGE_LOG_DEBUG, "this snapshot failed to apply already; waiting for a newer one", true, mark.version, HENGE_OK, NULL);
    *outcome = HENGE_OUT_FAILED_BEFORE;
    return HENGE_OK;
  }
  const char *why = NULL;
  henge_status applied = HENGE_E_UNSUPPORTED;
  if (dev->platform->apply != NULL) applied = dev->platform->apply(dev->platform->ctx, work, bytes, len, &why);
  if (applied != HENGE_OK) {
    dev->has_failed = true;
    dev->failed = mark;
    henge_ack_status as = applied == HENGE_E_REJECT ? HENGE_ACK_REJECTED : HENGE_ACK_FAILED;
    dlog(dev, HENGE_LOG_ERROR, "snapshot not applied; previous config kept", true, mark.version, applied, why);
    set_pending(dev, &mark, as, why != NULL ? why : henge_status_name(applied));
    *outcome = as == HENGE_ACK_REJECTED ? HENGE_OUT_REJECTED : HENGE_OUT_FAILED;
    return HENGE_OK;
  }
  dev->has_failed = false;
  dev->has_applied = true;
  dev->applied = mark;
  dev->applied_acked = false;
  set_pending(dev, &mark, HENGE_ACK_APPLIED, NULL);
  *outcome = HENGE_OUT_APPLIED;
  return HENGE_OK;
}

henge_status henge_device_on_valid(henge_device *dev, henge_outcome *outcome) {
  if (dev == NULL || outcome == NULL) return HENGE_E_ARG;
  ack_if_unconfirmed(dev);
  *outcome = HENGE_OUT_CURRENT;
  return HENGE_OK;
}

henge_status henge_device_pending(const henge_device *dev, const henge_ack **ack) {
  if (dev == NULL || ack == NULL) return HENGE_E_ARG;
  if (!dev->has_pending) return HENGE_E_NOT_FOUND;
  *ack = &dev->pending;
  return HENGE_OK;
}

henge_status henge_device_ack_supersedes(const henge_device *dev, const henge_ack *in_flight, bool *supersedes) {
  if (dev == NULL || in_flight == NULL || supersedes == NULL) return HENGE_E_ARG;
  const henge_ack *p = &dev->pending;
  bool same = p->version == in_flight->version && p->status == in_flight->status && p->has_hash == in_flight->has_hash &&
              p->has_incarnation == in_flight->has_incarnation && (!p->has_hash || memcmp(p->hash, in_flight->hash, HENGE_HASH_BYTES) == 0) &&
              (!p->has_incarnation || memcmp(p->incarnation, in_flight->incarnation, HENGE_INCARNATION_BYTES) == 0);
  *supersedes = dev->has_pending && !same;
  return HENGE_OK;
}

henge_status henge_device_on_ack_response(henge_device *dev, const henge_ack *sent, uint8_t code_class, uint8_t code_detail) {
  (void)code_detail;
  if (dev == NULL || sent == NULL) return HENGE_E_ARG;
  const henge_ack *p = &dev->pending;
  bool is_pending = dev->has_pending && p->version == sent->version && p->status == sent->status &&
                    memcmp(p->hash, sent->hash, HENGE_HASH_BYTES) == 0;
  if (code_class == 5) return HENGE_OK; /* the hub could not record it: kept, sent after the next registration */
  if (is_pending) dev->has_pending = false;
  if (code_class == 2 && sent->status == HENGE_ACK_APPLIED && dev->has_applied && dev->applied.version == sent->version &&
      memcmp(dev->applied.hash, sent->hash, HENGE_HASH_BYTES) == 0)
    dev->applied_acked = true;
  return HENGE_OK;
}

henge_status henge_device_retry_delay(henge_device *dev, uint32_t *delay_ms) {
  if (dev == NULL || delay_ms == NULL) return HENGE_E_ARG;
  uint32_t r = 0;
  if (dev->platform->random_u32 != NULL) {
    henge_status st = dev->platform->random_u32(dev->platform->ctx, &r);
    if (st != HENGE_OK) return st;
  }
  return henge_backoff_next(&dev->backoff, r, delay_ms);
}

henge_status henge_device_connected(henge_device *dev) {
  if (dev == NULL) return HENGE_E_ARG;
  return henge_backoff_reset(&dev->backoff);
}

henge_status henge_device_keepalive_delay(henge_device *dev, uint32_t max_age_s, uint32_t *delay_ms) {
  if (dev == NULL || delay_ms == NULL) return HENGE_E_ARG;
  uint32_t r = 0;
  if (dev->platform->random_u32 != NULL) {
    henge_status st = dev->platform->random_u32(dev->platform->ctx, &r);
    if (st != HENGE_OK) return st;
  }
  return henge_keepalive_ms(max_age_s, r, delay_ms);
}

henge_status henge_device_discover(henge_device *dev, char *host, size_t host_cap, uint16_t *port) {
  if (dev == NULL || host == NULL || port == NULL || host_cap == 0) return HENGE_E_ARG;
  if (dev->platform->discover == NULL) return HENGE_E_UNSUPPORTED;
  return dev->platform->discover(dev->platform->ctx, host, host_cap, port);
}

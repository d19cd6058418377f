/*
 * The root of the size check's link: a table holding the address of every public function of the core
 * (core/henge.h), so that --gc-sections keeps each one and everything it calls, and drops nothing a
 * port could use. Never run; not counted in the totals (report.sh lists it apart).
 */
#include "henge.h"

typedef void (*henge_size_fn)(void);

void henge_size_entry(void);

/* volatile: the table, and so every function it names, cannot be optimised away. */
static volatile henge_size_fn const henge_size_roots[] = {
    (henge_size_fn)henge_status_name,
    (henge_size_fn)henge_snapshot_decode,
    (henge_size_fn)henge_snapshot_find,
    (henge_size_fn)henge_decide,
    (henge_size_fn)henge_decision_name,
    (henge_size_fn)henge_mark_of,
    (henge_size_fn)henge_ack_status_name,
    (henge_size_fn)henge_ack_encode,
    (henge_size_fn)henge_telemetry_encode_agent,
    (henge_size_fn)henge_backoff_init,
    (henge_size_fn)henge_backoff_next,
    (henge_size_fn)henge_backoff_reset,
    (henge_size_fn)henge_keepalive_ms,
    (henge_size_fn)henge_device_init,
    (henge_size_fn)henge_device_restore,
    (henge_size_fn)henge_device_on_snapshot,
    (henge_size_fn)henge_device_on_valid,
    (henge_size_fn)henge_device_pending,
    (henge_size_fn)henge_device_ack_supersedes,
    (henge_size_fn)henge_device_on_ack_response,
    (henge_size_fn)henge_device_retry_delay,
    (henge_size_fn)henge_device_connected,
    (henge_size_fn)henge_device_keepalive_delay,
    (henge_size_fn)henge_device_discover,
    (henge_size_fn)henge_slots_open,
    (henge_size_fn)henge_slots_read,
    (henge_size_fn)henge_slots_write,
    (henge_size_fn)henge_crc32,
    (henge_size_fn)henge_dnssd_browse_init,
    (henge_size_fn)henge_dnssd_query,
    (henge_size_fn)henge_dnssd_on_message,
    (henge_size_fn)henge_dnssd_verdict_of,
    (henge_size_fn)henge_dnssd_pick,
};

void henge_size_entry(void) {
  for (unsigned i = 0; i < sizeof henge_size_roots / sizeof henge_size_roots[0]; i++) henge_size_roots[i]();
  for (;;) {
  }
}

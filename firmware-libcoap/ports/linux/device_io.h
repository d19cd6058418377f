/*
 * device_io.h: the device side of henge-fw: the platform the core calls (apply = render the values and
 * write --out atomically; the clock; randomness; the log), the LED file, the state folder's
 * state.json, and what happens when a snapshot arrives.
 */
#ifndef FW_DEVICE_IO_H
#define FW_DEVICE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_ctx.h"
#include "fw_status.h"
#include "henge.h"

/*
 * Reads the state folder (a damaged one is logged and ignored, as the Node agent does), sets up the
 * platform and the core's device, restores --out from the state folder when it is missing or differs,
 * and sets the LED. FW_OK, or FW_E_CORE when the core refused to start (logged). The state folder must
 * exist and be locked.
 */
fw_status fw_device_open(fw_ctx *fw);

/* Frees what fw_device_open and the snapshots since then allocated. Cannot fail. */
void fw_device_close(fw_ctx *fw);

/*
 * A snapshot's bytes from a 2.05 (a registration's answer or a notification, `via` says which) and its
 * ETag (NULL if none): the core decides, applies and leaves the ack pending; an applied snapshot becomes
 * fw->applied, is saved to the state folder and logged ("applied", with the keys it changed), and the
 * LED follows it. FW_OK whatever the outcome (a rejected or failed snapshot is the core's business and
 * is acked); FW_E_NOMEM or FW_E_CORE when it could not be handled at all (logged; the next registration
 * fetches it again).
 */
fw_status fw_device_on_snapshot(fw_ctx *fw, const uint8_t *data, size_t len, const uint8_t *etag, size_t etag_len, const char *via);

/*
 * With --exec, an applied snapshot's hook runs beside the loop (fw->hook_busy; its ack is held). Called
 * from the loop: when the hook is done, the apply counts (state.json, "applied", the LED) or --out is
 * put back and the ack becomes "failed"; then the newest snapshot that arrived meanwhile is handled
 * (unless `stopping`). Never blocks. FW_OK, or the failure (logged).
 */
fw_status fw_device_poll_hook(fw_ctx *fw, bool stopping);

/*
 * henge-fw stops while a hook still runs: the hook's process group is killed, --out put back as it was
 * (what state.json holds), no ack; logged (as the Node agent). FW_OK, or the failure of the kill or the
 * restore (logged).
 */
fw_status fw_device_stop_hook(fw_ctx *fw);

/* The largest --out kept to put back after a failed hook (a larger one fails the apply). */
#define FW_PREVIOUS_MAX ((size_t)16 * 1024 * 1024)

/* Writes state.json. FW_OK, or FW_E_IO / FW_E_NOMEM (logged: the config file is applied regardless). */
fw_status fw_device_save_state(fw_ctx *fw);

/* Logs a core call that returned `st` (only a bug makes one fail) and returns FW_E_CORE. */
fw_status fw_device_core_failed(const char *call, henge_status st);

#endif

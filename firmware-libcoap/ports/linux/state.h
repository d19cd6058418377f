/*
 * state.h: the state folder's state.json, in the Node agent's format 1 (agent/state.ts), so that
 * henge-fw and `henge agent` can take over each other's folder: the last applied snapshot's CBOR
 * (base64) with its version, hash and incarnation, whether the hub confirmed its ack, when it was
 * applied, and the pinned hub id.
 */
#ifndef FW_STATE_H
#define FW_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "fw_status.h"
#include "henge.h"
#include "render.h"

typedef struct fw_state {
  bool has_applied;
  fw_buf snapshot; /* the applied snapshot's bytes, as received */
  henge_mark mark;
  bool acked;
  long long applied_at; /* ms since the epoch */
  bool has_hub_id;
  char hub_id[128];
} fw_state;

void fw_state_init(fw_state *s);
void fw_state_free(fw_state *s);

/*
 * Reads <dir>/state.json. FW_OK: loaded, or no file (has_applied false). FW_E_INVALID (damaged or another
 * device's) or FW_E_IO (unreadable), with a message in err; the caller starts without it, as the Node
 * agent does. The snapshot's bytes are decoded into `work` to check they match the recorded version,
 * hash and incarnation.
 */
fw_status fw_state_load(const char *file, const char *device, fw_state *s, henge_snapshot *work, char *err, size_t cap);
/* Writes <dir>/state.json atomically (0600). FW_OK, or FW_E_IO / FW_E_NOMEM with a message in err. */
fw_status fw_state_save(const char *file, const char *device, const fw_state *s, char *err, size_t cap);

#endif

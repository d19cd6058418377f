/*
 * pico_slots.h: the core's A/B slots (henge_slots, core/henge.h) on the Pico W's QSPI flash, in the
 * last 16 KB: two slots of two 4 KB sectors each. Addresses are offsets from the start of flash.
 */
#ifndef HENGE_PICO_SLOTS_H
#define HENGE_PICO_SLOTS_H

#include "henge.h"

/* Each slot: two sectors (a snapshot of up to HENGE_MAX_SNAPSHOT_BYTES plus the 16-byte header). */
#define HENGE_PICO_SLOT_BYTES (2u * 4096u)

/*
 * Fills `flash` with the RP2040 flash driver and opens the slots. HENGE_OK, or HENGE_E_SPACE when the
 * firmware image reaches into the slots (a build too large for this layout).
 */
henge_status henge_pico_slots_open(henge_flash *flash, henge_slots *slots);

#endif /* HENGE_PICO_SLOTS_H */

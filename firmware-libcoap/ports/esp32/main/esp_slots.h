/*
 * esp_slots.h: the core's A/B slots (henge_slots, core/henge.h) in the "henge" data partition
 * (partitions.csv: subtype 0x40, 16 KB: two slots of two 4 KB sectors).
 */
#ifndef HENGE_ESP_SLOTS_H
#define HENGE_ESP_SLOTS_H

#include "henge.h"

#define HENGE_ESP_SLOT_BYTES (2u * 4096u)
#define HENGE_ESP_PARTITION_SUBTYPE 0x40
#define HENGE_ESP_PARTITION_LABEL "henge"

/* Finds the partition, fills `flash` and opens the slots. HENGE_OK, or HENGE_E_NOT_FOUND without the partition. */
henge_status henge_esp_slots_open(henge_flash *flash, henge_slots *slots);

#endif /* HENGE_ESP_SLOTS_H */

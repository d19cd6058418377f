/* A RAM-backed NOR flash for the A/B slot tests: erase sets 0xff, a write can only clear bits, and a
   "power cut" after N programmed bytes drops every later write. */
#ifndef HENGE_FAKE_FLASH_H
#define HENGE_FAKE_FLASH_H

#include "henge.h"

#define FAKE_FLASH_BYTES 4096
#define FAKE_SECTOR 512

typedef struct fake_flash {
  uint8_t mem[FAKE_FLASH_BYTES];
  long budget;  /* bytes that may still be programmed; -1: unlimited */
  int fail_reads;
  int erases, writes;
} fake_flash;

void fake_flash_init(fake_flash *f, henge_flash *iface, uint32_t slot_size);

#endif

/*
 * pico_slots.c: henge_flash on the RP2040's flash (pico-sdk hardware_flash, pico_flash).
 *
 * Reads go through the XIP window. Erase and program run with the flash out of XIP mode, so they go
 * through flash_safe_execute (pico_flash), which keeps the other core and interrupts off the flash
 * meanwhile. flash_range_program takes whole 256-byte pages: a write of any length is split into
 * pages padded with 0xff, which NOR programming leaves as they are (it only clears bits), so the bytes
 * the core wrote earlier in the same page stay.
 */
#include "pico_slots.h"

#include <string.h>

#include "hardware/flash.h"
#include "pico/flash.h"
#include "pico/stdlib.h"

_Static_assert(HENGE_PICO_SLOT_BYTES % FLASH_SECTOR_SIZE == 0, "a slot is whole sectors");
_Static_assert(HENGE_PICO_SLOT_BYTES >= HENGE_MAX_SNAPSHOT_BYTES + HENGE_SLOT_HEADER_BYTES, "a slot holds the largest snapshot");

/* The slots: the last 2 * HENGE_PICO_SLOT_BYTES of flash. */
#define SLOTS_OFFSET (PICO_FLASH_SIZE_BYTES - 2u * HENGE_PICO_SLOT_BYTES)
/* A flash operation that waits longer than this for the other core gives up (HENGE_E_FLASH). */
#define SAFE_TIMEOUT_MS 1000u

extern char __flash_binary_end; /* the linker script's end of the image in flash (an XIP address) */

typedef struct erase_args {
  uint32_t offset;
  size_t len;
} erase_args;

typedef struct page_args {
  uint32_t offset;
  const uint8_t *page;
} page_args;

static void do_erase(void *p) {
  const erase_args *a = p;
  flash_range_erase(a->offset, a->len);
}

static void do_program(void *p) {
  const page_args *a = p;
  flash_range_program(a->offset, a->page, FLASH_PAGE_SIZE);
}

static bool in_slots(uint32_t addr, size_t len) {
  return addr >= SLOTS_OFFSET && addr <= PICO_FLASH_SIZE_BYTES && len <= PICO_FLASH_SIZE_BYTES - addr;
}

static henge_status f_read(void *ctx, uint32_t addr, uint8_t *buf, size_t len) {
  (void)ctx;
  if (!in_slots(addr, len)) return HENGE_E_FLASH;
  memcpy(buf, (const void *)(XIP_BASE + addr), len);
  return HENGE_OK;
}

static henge_status f_erase(void *ctx, uint32_t addr, size_t len) {
  (void)ctx;
  if (!in_slots(addr, len) || addr % FLASH_SECTOR_SIZE != 0 || len % FLASH_SECTOR_SIZE != 0) return HENGE_E_FLASH;
  erase_args a = {addr, len};
  return flash_safe_execute(do_erase, &a, SAFE_TIMEOUT_MS) == PICO_OK ? HENGE_OK : HENGE_E_FLASH;
}

static henge_status f_write(void *ctx, uint32_t addr, const uint8_t *buf, size_t len) {
  (void)ctx;
  if (!in_slots(addr, len)) return HENGE_E_FLASH;
  static uint8_t page[FLASH_PAGE_SIZE];
  while (len > 0) {
    uint32_t base = addr - addr % FLASH_PAGE_SIZE;
    size_t at = addr - base;
    size_t n = FLASH_PAGE_SIZE - at < len ? FLASH_PAGE_SIZE - at : len;
    memset(page, 0xff, sizeof page);
    memcpy(page + at, buf, n);
    page_args a = {base, page};
    if (flash_safe_execute(do_program, &a, SAFE_TIMEOUT_MS) != PICO_OK) return HENGE_E_FLASH;
    addr += (uint32_t)n;
    buf += n;
    len -= n;
  }
  return HENGE_OK;
}

henge_status henge_pico_slots_open(henge_flash *flash, henge_slots *slots) {
  uint32_t image_end = (uint32_t)((uintptr_t)&__flash_binary_end - XIP_BASE);
  if (image_end > SLOTS_OFFSET) return HENGE_E_SPACE;
  flash->ctx = NULL;
  flash->slot_addr[0] = SLOTS_OFFSET;
  flash->slot_addr[1] = SLOTS_OFFSET + HENGE_PICO_SLOT_BYTES;
  flash->slot_size = HENGE_PICO_SLOT_BYTES;
  flash->read = f_read;
  flash->write = f_write;
  flash->erase = f_erase;
  return henge_slots_open(slots, flash);
}

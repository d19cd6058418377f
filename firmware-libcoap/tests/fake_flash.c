#include "fake_flash.h"

#include <string.h>

static henge_status ff_read(void *ctx, uint32_t addr, uint8_t *buf, size_t len) {
  fake_flash *f = ctx;
  if (f->fail_reads || addr + len > FAKE_FLASH_BYTES) return HENGE_E_FLASH;
  memcpy(buf, f->mem + addr, len);
  return HENGE_OK;
}

static henge_status ff_write(void *ctx, uint32_t addr, const uint8_t *buf, size_t len) {
  fake_flash *f = ctx;
  if (addr + len > FAKE_FLASH_BYTES) return HENGE_E_FLASH;
  f->writes++;
  for (size_t i = 0; i < len; i++) {
    if (f->budget == 0) return HENGE_OK; /* the power is gone: nothing more lands (and nobody returns) */
    if (f->budget > 0) f->budget--;
    f->mem[addr + i] &= buf[i]; /* NOR: programming only clears bits */
  }
  return HENGE_OK;
}

static henge_status ff_erase(void *ctx, uint32_t addr, size_t len) {
  fake_flash *f = ctx;
  if (addr % FAKE_SECTOR != 0 || len % FAKE_SECTOR != 0 || addr + len > FAKE_FLASH_BYTES) return HENGE_E_FLASH;
  if (f->budget == 0) return HENGE_OK;
  f->erases++;
  memset(f->mem + addr, 0xff, len);
  return HENGE_OK;
}

void fake_flash_init(fake_flash *f, henge_flash *iface, uint32_t slot_size) {
  memset(f->mem, 0xff, sizeof f->mem);
  f->budget = -1;
  f->fail_reads = 0;
  f->erases = f->writes = 0;
  iface->ctx = f;
  iface->slot_addr[0] = 0;
  iface->slot_addr[1] = slot_size;
  iface->slot_size = slot_size;
  iface->read = ff_read;
  iface->write = ff_write;
  iface->erase = ff_erase;
}

/*
 * esp_slots.c: henge_flash on an ESP-IDF data partition (esp_partition_read / _write / _erase_range;
 * addresses relative to the partition's start). esp_partition_write takes any length and alignment
 * on an unencrypted partition, and like NOR programming it only clears bits, which is what the core's
 * slot writer expects (erase, data, then the header).
 */
#include "esp_slots.h"

#include "esp_partition.h"

_Static_assert(HENGE_ESP_SLOT_BYTES % 4096u == 0, "a slot is whole sectors");
_Static_assert(HENGE_ESP_SLOT_BYTES >= HENGE_MAX_SNAPSHOT_BYTES + HENGE_SLOT_HEADER_BYTES, "a slot holds the largest snapshot");

static henge_status f_read(void *ctx, uint32_t addr, uint8_t *buf, size_t len) {
  return esp_partition_read((const esp_partition_t *)ctx, addr, buf, len) == ESP_OK ? HENGE_OK : HENGE_E_FLASH;
}

static henge_status f_write(void *ctx, uint32_t addr, const uint8_t *buf, size_t len) {
  return esp_partition_write((const esp_partition_t *)ctx, addr, buf, len) == ESP_OK ? HENGE_OK : HENGE_E_FLASH;
}

static henge_status f_erase(void *ctx, uint32_t addr, size_t len) {
  return esp_partition_erase_range((const esp_partition_t *)ctx, addr, len) == ESP_OK ? HENGE_OK : HENGE_E_FLASH;
}

henge_status henge_esp_slots_open(henge_flash *flash, henge_slots *slots) {
  const esp_partition_t *p =
      esp_partition_find_first(ESP_PARTITION_TYPE_DATA, (esp_partition_subtype_t)HENGE_ESP_PARTITION_SUBTYPE, HENGE_ESP_PARTITION_LABEL);
  if (p == NULL || p->size < 2 * HENGE_ESP_SLOT_BYTES) return HENGE_E_NOT_FOUND;
  flash->ctx = (void *)p;
  flash->slot_addr[0] = 0;
  flash->slot_addr[1] = HENGE_ESP_SLOT_BYTES;
  flash->slot_size = HENGE_ESP_SLOT_BYTES;
  flash->read = f_read;
  flash->write = f_write;
  flash->erase = f_erase;
  return henge_slots_open(slots, flash);
}

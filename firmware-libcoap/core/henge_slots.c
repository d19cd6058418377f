/*
 * henge_slots.c: A/B slots on flash for the last applied snapshot, and CRC-32.
 *
 * Slot layout (little-endian): magic u32 | seq u32 | len u32 | crc u32 | data[len]
 * crc = CRC-32 over seq, len (their 8 header bytes) and the data. A write erases the other slot, writes
 * the data, then the header, then reads it all back. Power lost before the header is complete leaves a
 * slot that fails its magic or CRC check, so the previous record stays the newest valid one.
 */
#include "henge_internal.h"

#include <string.h>

HENGE_STATIC_ASSERT(HENGE_SLOT_HEADER_BYTES == 4 * sizeof(uint32_t), slot_header_is_four_words);
HENGE_STATIC_ASSERT(HENGE_FLASH_CHUNK >= HENGE_SLOT_HEADER_BYTES, flash_chunk_holds_a_header);

henge_status henge_crc32(uint32_t crc, const uint8_t *data, size_t len, uint32_t *out) {
  if (out == NULL || (data == NULL && len > 0)) return HENGE_E_ARG;
  /* Bitwise, reflected 0xEDB88320: no table, so no flash or RAM for one; slots are small. */
  uint32_t c = ~crc;
  for (size_t i = 0; i < len; i++) {
    c ^= data[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  *out = ~c;
  return HENGE_OK;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Checks slot `i`: HENGE_OK with its seq and len when it holds a valid record, HENGE_E_NOT_FOUND if not. */
static henge_status check_slot(const henge_flash *f, int i, uint32_t *seq, uint32_t *len) {
  uint8_t buf[HENGE_FLASH_CHUNK];
  uint32_t base = f->slot_addr[i];
  if (f->read(f->ctx, base, buf, HENGE_SLOT_HEADER_BYTES) != HENGE_OK) return HENGE_E_FLASH;
  if (get32(buf) != HENGE_SLOT_MAGIC) return HENGE_E_NOT_FOUND;
  uint32_t s = get32(buf + 4);
  uint32_t n = get32(buf + 8);
  uint32_t want = get32(buf + 12);
  if (n > f->slot_size - HENGE_SLOT_HEADER_BYTES) return HENGE_E_NOT_FOUND;
  uint32_t crc;
  henge_crc32(0, buf + 4, 8, &crc);
  for (uint32_t at = 0; at < n;) {
    size_t chunk = n - at < sizeof buf ? n - at : sizeof buf;
    if (f->read(f->ctx, base + HENGE_SLOT_HEADER_BYTES + at, buf, chunk) != HENGE_OK) return HENGE_E_FLASH;
    henge_crc32(crc, buf, chunk, &crc);
    at += (uint32_t)chunk;
  }
  if (crc != want) return HENGE_E_NOT_FOUND;
  *seq = s;
  *len = n;
  return HENGE_OK;
}

/* Serial number order (RFC 1982 style): a is newer than b when (a - b) is in 1..2^31-1. */
static bool newer(uint32_t a, uint32_t b) {
  uint32_t d = a - b;
  return d != 0 && d < 0x80000000u;
}

henge_status henge_slots_open(henge_slots *s, const henge_flash *flash) {
  if (s == NULL || flash == NULL || flash->read == NULL || flash->write == NULL || flash->erase == NULL) return HENGE_E_ARG;
  if (flash->slot_size <= HENGE_SLOT_HEADER_BYTES) return HENGE_E_ARG;
  s->flash = flash;
  s->current = -1;
  s->seq = 0;
  s->len = 0;
  for (int i = 0; i < 2; i++) {
    uint32_t seq, len;
    henge_status st = check_slot(flash, i, &seq, &len);
    if (st == HENGE_E_FLASH) return st;
    if (st != HENGE_OK) continue;
    if (s->current < 0 || newer(seq, s->seq)) {
      s->current = (int8_t)i;
      s->seq = seq;
      s->len = len;
    }
  }
  return HENGE_OK;
}

henge_status henge_slots_read(const henge_slots *s, uint8_t *buf, size_t cap, size_t *len) {
  if (s == NULL || s->flash == NULL || buf == NULL || len == NULL) return HENGE_E_ARG;
  if (s->current < 0) return HENGE_E_NOT_FOUND;
  if (s->len > cap) return HENGE_E_SPACE;
  const henge_flash *f = s->flash;
  if (f->read(f->ctx, f->slot_addr[s->current] + HENGE_SLOT_HEADER_BYTES, buf, s->len) != HENGE_OK) return HENGE_E_FLASH;
  /* The data was checked at open; check it again as read now (flash can fail in between). */
  uint8_t hdr[8];
  put32(hdr, s->seq);
  put32(hdr + 4, s->len);
  uint32_t crc, want;
  henge_crc32(0, hdr, 8, &crc);
  henge_crc32(crc, buf, s->len, &crc);
  uint8_t stored[4];
  if (f->read(f->ctx, f->slot_addr[s->current] + 12, stored, 4) != HENGE_OK) return HENGE_E_FLASH;
  want = get32(stored);
  if (crc != want) return HENGE_E_FLASH;
  *len = s->len;
  return HENGE_OK;
}

henge_status henge_slots_write(henge_slots *s, const uint8_t *data, size_t len) {
  if (s == NULL || s->flash == NULL || (data == NULL && len > 0)) return HENGE_E_ARG;
  const henge_flash *f = s->flash;
  if (len > f->slot_size - HENGE_SLOT_HEADER_BYTES) return HENGE_E_SPACE;
  int target = s->current == 0 ? 1 : 0;
  uint32_t seq = s->current < 0 ? 1u : s->seq + 1u;
  uint32_t base = f->slot_addr[target];
  if (f->erase(f->ctx, base, f->slot_size) != HENGE_OK) return HENGE_E_FLASH;
  if (len > 0 && f->write(f->ctx, base + HENGE_SLOT_HEADER_BYTES, data, len) != HENGE_OK) return HENGE_E_FLASH;
  uint8_t hdr[HENGE_SLOT_HEADER_BYTES];
  put32(hdr, HENGE_SLOT_MAGIC);
  put32(hdr + 4, seq);
  put32(hdr + 8, (uint32_t)len);
  uint32_t crc;
  henge_crc32(0, hdr + 4, 8, &crc);
  henge_crc32(crc, data, len, &crc);
  put32(hdr + 12, crc);
  if (f->write(f->ctx, base, hdr, sizeof hdr) != HENGE_OK) return HENGE_E_FLASH;
  /* Read back: the record counts only once flash holds it exactly. */
  uint32_t got_seq, got_len;
  henge_status st = check_slot(f, target, &got_seq, &got_len);
  if (st == HENGE_E_FLASH) return st;
  if (st != HENGE_OK || got_seq != seq || got_len != len) return HENGE_E_FLASH;
  s->current = (int8_t)target;
  s->seq = seq;
  s->len = (uint32_t)len;
  return HENGE_OK;
}

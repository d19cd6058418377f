/*
 * fuzz_slots: libFuzzer target for the A/B slots (henge_slots_*) on a simulated NOR flash that can lose
 * power after any byte programmed or sector erased, and whose driver can fail. The input is:
 *
 *   byte 0       slot size: 256, 512 or 1024 bytes (sector 256)
 *   byte 1       initial flash: erased, or the next bytes copied over slot A then B (a crafted header,
 *                sequence numbers near a wrap, a bad CRC: whatever the fuzzer finds)
 *   then ops     write (length, fill pattern), cut the power after N more bytes, make the next flash
 *                call fail, reboot (open again), read with a small buffer
 *
 * The model: `committed` is the data of the last write that returned HENGE_OK (or what the first open
 * found); `attempts` the data of the writes since then that did not return HENGE_OK (power cut, driver
 * error: any of them may have reached flash whole). Oracles: after any reboot the record read is
 * `committed` or one of `attempts`, byte for byte, and a committed record is never lost; a write that
 * returned HENGE_OK reads back at once; reads never overrun; a record fits its slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "henge.h"

#define CHECK(cond, what)                                                         \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "fuzz_slots: %s (%s, line %d)\n", what, #cond, __LINE__); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

#define SECTOR 256u
#define MAX_SLOT 1024u
#define FLASH_BYTES (2 * MAX_SLOT)

typedef struct nor {
  uint8_t mem[FLASH_BYTES];
  long budget;    /* bytes (programmed, or erased a byte at a time) before the power goes; -1: never */
  int fail_next;  /* the next driver call returns HENGE_E_FLASH without touching the flash */
} nor;

static nor flash;

static bool spend(void) {
  if (flash.budget == 0) return false;
  if (flash.budget > 0) flash.budget--;
  return true;
}

static henge_status f_read(void *ctx, uint32_t addr, uint8_t *buf, size_t len) {
  (void)ctx;
  CHECK(addr <= FLASH_BYTES && len <= FLASH_BYTES - addr, "a read outside the flash");
  if (flash.fail_next) {
    flash.fail_next = 0;
    return HENGE_E_FLASH;
  }
  memcpy(buf, flash.mem + addr, len);
  return HENGE_OK;
}

static henge_status f_write(void *ctx, uint32_t addr, const uint8_t *buf, size_t len) {
  (void)ctx;
  CHECK(addr <= FLASH_BYTES && len <= FLASH_BYTES - addr, "a write outside the flash");
  if (flash.fail_next) {
    flash.fail_next = 0;
    return HENGE_E_FLASH;
  }
  for (size_t i = 0; i < len; i++) {
    if (!spend()) break;
    flash.mem[addr + i] &= buf[i]; /* NOR: programming clears bits only */
  }
  return HENGE_OK;
}

static henge_status f_erase(void *ctx, uint32_t addr, size_t len) {
  (void)ctx;
  CHECK(addr % SECTOR == 0 && len % SECTOR == 0, "an erase not on sector boundaries");
  CHECK(addr <= FLASH_BYTES && len <= FLASH_BYTES - addr, "an erase outside the flash");
  if (flash.fail_next) {
    flash.fail_next = 0;
    return HENGE_E_FLASH;
  }
  /* An erase cut short leaves the rest of the sector as it was. */
  for (size_t i = 0; i < len; i++) {
    if (!spend()) break;
    flash.mem[addr + i] = 0xff;
  }
  return HENGE_OK;
}

typedef struct reader {
  const uint8_t *p, *end;
} reader;

static uint8_t next(reader *r) { return r->p < r->end ? *r->p++ : 0; }

#define MAX_ATTEMPTS 32
static uint8_t committed[MAX_SLOT], attempt[MAX_SLOT], readback[MAX_SLOT];
static uint8_t attempts[MAX_ATTEMPTS][MAX_SLOT];
static size_t committed_len, attempt_lens[MAX_ATTEMPTS];
static bool has_committed;
static int n_attempts; /* beyond MAX_ATTEMPTS: any record is allowed (the log is full) */

/* After a reboot: what open finds must be the committed record or the attempted one. */
static void check_record(henge_slots *s, uint32_t slot_size) {
  size_t n = 0;
  henge_status st = henge_slots_read(s, readback, sizeof readback, &n);
  if (st == HENGE_E_NOT_FOUND) {
    CHECK(!has_committed, "a committed record was lost");
    return;
  }
  CHECK(st == HENGE_OK, "reading the newest record failed on a working flash");
  CHECK(n <= slot_size - HENGE_SLOT_HEADER_BYTES, "a record longer than its slot");
  bool ok = has_committed && n == committed_len && memcmp(readback, committed, n) == 0;
  for (int i = 0; !ok && i < n_attempts && i < MAX_ATTEMPTS; i++) ok = n == attempt_lens[i] && memcmp(readback, attempts[i], n) == 0;
  CHECK(ok || n_attempts > MAX_ATTEMPTS, "the record read is neither the committed one nor one that was being written");
  /* Whichever it is, it is now the baseline. */
  memcpy(committed, readback, n);
  committed_len = n;
  has_committed = true;
  n_attempts = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, data + size};
  static const uint32_t sizes[3] = {256, 512, 1024};
  uint32_t slot_size = sizes[next(&r) % 3];
  memset(flash.mem, 0xff, sizeof flash.mem);
  flash.budget = -1;
  flash.fail_next = 0;
  if (next(&r) % 2 == 1) {
    /* The fuzzer's own flash contents: up to the first 64 bytes of each slot. */
    for (uint32_t slot = 0; slot < 2; slot++)
      for (uint32_t i = 0; i < 64 && r.p < r.end; i++) flash.mem[slot * slot_size + i] = next(&r);
  }
  henge_flash iface = {NULL, {0, slot_size}, slot_size, f_read, f_write, f_erase};
  henge_slots s;
  CHECK(henge_slots_open(&s, &iface) == HENGE_OK, "open failed on a working flash");
  has_committed = false;
  n_attempts = 0;
  /* The baseline: whatever valid record the crafted flash holds. */
  size_t n = 0;
  if (henge_slots_read(&s, readback, sizeof readback, &n) == HENGE_OK) {
    memcpy(committed, readback, n);
    committed_len = n;
    has_committed = true;
  }
  while (r.p < r.end) {
    uint8_t op = next(&r);
    switch (op % 5) {
      case 0:
      case 1: { /* write */
        size_t len = (size_t)next(&r) * 4 + (op >> 7);
        if (len > slot_size - HENGE_SLOT_HEADER_BYTES + 8) len = slot_size - HENGE_SLOT_HEADER_BYTES + 8;
        uint8_t a = next(&r), b = next(&r);
        for (size_t i = 0; i < len; i++) attempt[i] = (uint8_t)(a + b * i + (i >> 3));
        henge_status st = henge_slots_write(&s, attempt, len);
        if (len > slot_size - HENGE_SLOT_HEADER_BYTES) {
          CHECK(st == HENGE_E_SPACE, "a record larger than the slot was not refused");
          break;
        }
        if (st == HENGE_OK) {
          memcpy(committed, attempt, len);
          committed_len = len;
          has_committed = true;
          n_attempts = 0;
          /* It reads back at once, without a reboot. */
          size_t got = 0;
          CHECK(henge_slots_read(&s, readback, sizeof readback, &got) == HENGE_OK && got == len && memcmp(readback, attempt, len) == 0,
                "a write that returned OK does not read back");
        } else {
          CHECK(st == HENGE_E_FLASH, "a failed write with a status other than HENGE_E_FLASH");
          if (n_attempts < MAX_ATTEMPTS) {
            memcpy(attempts[n_attempts], attempt, len);
            attempt_lens[n_attempts] = len;
          }
          n_attempts++;
        }
        break;
      }
      case 2: /* the power goes after N more bytes */
        flash.budget = (long)next(&r) * 4 + next(&r) % 4;
        break;
      case 3: /* the next driver call fails */
        flash.fail_next = 1;
        break;
      default: { /* reboot, or a read into a small buffer */
        if (op & 0x80) {
          uint8_t small[8];
          size_t got = 0;
          henge_status st = henge_slots_read(&s, small, sizeof small, &got);
          CHECK(st != HENGE_OK || got <= sizeof small, "a read overran its buffer");
          break;
        }
        flash.budget = -1;
        flash.fail_next = 0;
        CHECK(henge_slots_open(&s, &iface) == HENGE_OK, "open failed on a working flash");
        check_record(&s, slot_size);
        break;
      }
    }
  }
  /* The end of the program is a last reboot. */
  flash.budget = -1;
  flash.fail_next = 0;
  CHECK(henge_slots_open(&s, &iface) == HENGE_OK, "open failed on a working flash");
  check_record(&s, slot_size);
  return 0;
}

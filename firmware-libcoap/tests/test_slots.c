/* A/B slots on a RAM-backed fake NOR flash: alternation, power loss at every byte, corruption, wrap. */
#include <string.h>

#include "fake_flash.h"
#include "henge.h"
#include "henge_test.h"

static fake_flash F;
static henge_flash iface;
static henge_slots slots;
static uint8_t data[1024], got[2048];

static void fill(uint8_t seed, size_t n) {
  for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(seed + i * 7);
}

static int holds(uint8_t seed, size_t n) {
  size_t len = 0;
  if (henge_slots_read(&slots, got, sizeof got, &len) != HENGE_OK || len != n) return 0;
  fill(seed, n);
  return memcmp(got, data, n) == 0;
}

static void empty_flash_has_no_record(void) {
  fake_flash_init(&F, &iface, 1024);
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_EQ_INT(slots.current, -1);
  size_t len;
  HT_EQ_INT(henge_slots_read(&slots, got, sizeof got, &len), HENGE_E_NOT_FOUND);
}

static void writes_alternate_and_the_newest_wins(void) {
  fake_flash_init(&F, &iface, 1024);
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  for (uint8_t i = 1; i <= 5; i++) {
    fill(i, 100u + i);
    HT_EQ_INT(henge_slots_write(&slots, data, 100u + i), HENGE_OK);
    HT_EQ_INT(slots.current, (i - 1) % 2);
    HT_EQ_INT(slots.seq, i);
    /* A reboot: open again from flash alone. */
    HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
    HT_EQ_INT(slots.seq, i);
    HT_CHECK(holds(i, 100u + i));
  }
  /* An empty record is a record. */
  HT_EQ_INT(henge_slots_write(&slots, NULL, 0), HENGE_OK);
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_EQ_INT(slots.len, 0);
}

static void power_loss_at_any_byte_keeps_the_previous_record(void) {
  const size_t n = 300;
  for (long budget = 0; budget <= (long)(n + HENGE_SLOT_HEADER_BYTES); budget++) {
    fake_flash_init(&F, &iface, 1024);
    henge_slots_open(&slots, &iface);
    fill(1, 200);
    HT_EQ_INT(henge_slots_write(&slots, data, 200), HENGE_OK);
    fill(2, n);
    F.budget = budget;
    henge_status st = henge_slots_write(&slots, data, n);
    F.budget = -1;
    HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
    if (budget < (long)(n + HENGE_SLOT_HEADER_BYTES)) {
      if (st == HENGE_OK) {
        fprintf(stderr, "    a write cut after %ld bytes reported success\n", budget);
        ht_failures_in_test++;
      }
      if (!holds(1, 200)) {
        fprintf(stderr, "    a write cut after %ld bytes lost the previous record\n", budget);
        ht_failures_in_test++;
      }
    } else {
      HT_EQ_INT(st, HENGE_OK);
      HT_CHECK(holds(2, n));
    }
  }
}

static void a_corrupted_record_falls_back_to_the_other(void) {
  fake_flash_init(&F, &iface, 1024);
  henge_slots_open(&slots, &iface);
  fill(1, 50);
  henge_slots_write(&slots, data, 50);
  fill(2, 60);
  henge_slots_write(&slots, data, 60);
  HT_EQ_INT(slots.current, 1);
  F.mem[1024 + HENGE_SLOT_HEADER_BYTES + 10] ^= 0x01; /* one bit of the newest data */
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_EQ_INT(slots.current, 0);
  HT_CHECK(holds(1, 50));
  /* A length beyond the slot is not believed either. */
  F.mem[8] = 0xff;
  F.mem[9] = 0xff;
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_EQ_INT(slots.current, -1);
  /* The next write goes on from there. */
  fill(3, 10);
  HT_EQ_INT(henge_slots_write(&slots, data, 10), HENGE_OK);
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_CHECK(holds(3, 10));
}

static void sequence_numbers_wrap(void) {
  fake_flash_init(&F, &iface, 1024);
  henge_slots_open(&slots, &iface);
  /* Pretend 2^32 - 2 writes happened: the next record gets 2^32 - 1, the one after it 0. */
  slots.current = 1;
  slots.seq = 0xfffffffeu;
  fill(1, 20);
  HT_EQ_INT(henge_slots_write(&slots, data, 20), HENGE_OK);
  HT_EQ_INT(slots.seq, 0xffffffffu);
  fill(2, 20);
  HT_EQ_INT(henge_slots_write(&slots, data, 20), HENGE_OK); /* seq 0 */
  HT_EQ_INT(slots.seq, 0);
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_OK);
  HT_CHECK(holds(2, 20));
}

static void sizes_and_failures(void) {
  fake_flash_init(&F, &iface, 512);
  henge_slots_open(&slots, &iface);
  HT_EQ_INT(henge_slots_write(&slots, data, 512 - HENGE_SLOT_HEADER_BYTES + 1), HENGE_E_SPACE);
  HT_EQ_INT(henge_slots_write(&slots, data, 512 - HENGE_SLOT_HEADER_BYTES), HENGE_OK);
  size_t len;
  HT_EQ_INT(henge_slots_read(&slots, got, 10, &len), HENGE_E_SPACE);
  F.fail_reads = 1;
  HT_EQ_INT(henge_slots_open(&slots, &iface), HENGE_E_FLASH);
  HT_EQ_INT(henge_slots_open(NULL, &iface), HENGE_E_ARG);
  uint32_t crc;
  HT_EQ_INT(henge_crc32(0, (const uint8_t *)"123456789", 9, &crc), HENGE_OK);
  HT_EQ_INT(crc, 0xcbf43926u); /* the CRC-32 check value */
}

const ht_case slots_cases[] = {
    {"slots - an empty flash has no record", empty_flash_has_no_record},
    {"slots - writes alternate between A and B; the newest survives a reboot", writes_alternate_and_the_newest_wins},
    {"slots - power lost after any byte of a write keeps the previous record", power_loss_at_any_byte_keeps_the_previous_record},
    {"slots - a corrupted record falls back to the other slot", a_corrupted_record_falls_back_to_the_other},
    {"slots - sequence numbers wrap", sequence_numbers_wrap},
    {"slots - sizes, flash errors and the CRC-32 check value", sizes_and_failures},
    {NULL, NULL},
};

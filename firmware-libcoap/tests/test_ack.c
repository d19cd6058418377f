/* Ack and telemetry encoding: the bytes protocol/ack.ts encodeAck gives for the same ack. */
#include <string.h>

#include "henge.h"
#include "henge_test.h"

static uint8_t out[HENGE_ACK_MAX_BYTES + 16];
static uint8_t want[512];

static void encodes_like_the_node_agent(void) {
  henge_ack a;
  memset(&a, 0, sizeof a);
  a.version = 7;
  a.status = HENGE_ACK_APPLIED;
  size_t n = 0;
  HT_EQ_INT(henge_ack_encode(&a, out, sizeof out, &n), HENGE_OK);
  size_t w = ht_hex("a2 01 07 02 00", want, sizeof want);
  HT_CHECK(n == w && memcmp(out, want, n) == 0);

  /* encodeAck({version: 100000, status: 2, message: 'disk full', hash, incarnation}) */
  a.version = 100000;
  a.status = HENGE_ACK_FAILED;
  a.message = "disk full";
  a.message_len = 9;
  a.has_hash = a.has_incarnation = true;
  memcpy(a.hash, "\xb2\x0c\xf0\xed\x67\xfe\xc9\xbb", 8);
  memcpy(a.incarnation, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  HT_EQ_INT(henge_ack_encode(&a, out, sizeof out, &n), HENGE_OK);
  w = ht_hex("a5 01 1a 000186a0 02 02 03 69 6469736b2066756c6c 04 48 b20cf0ed67fec9bb 05 48 0102030405060708", want, sizeof want);
  HT_CHECK(n == w && memcmp(out, want, n) == 0);
}

static void cuts_long_messages_on_a_character(void) {
  char msg[400];
  /* 'é' is 2 bytes: 200 of them are 400 bytes; 253 bytes hold 126 of them (252 bytes). */
  for (int i = 0; i < 200; i++) memcpy(msg + 2 * i, "\xc3\xa9", 2);
  henge_ack a;
  memset(&a, 0, sizeof a);
  a.message = msg;
  a.message_len = sizeof msg;
  size_t n = 0;
  HT_EQ_INT(henge_ack_encode(&a, out, sizeof out, &n), HENGE_OK);
  /* a3 01 00 02 00 03 78 ff <252 bytes> "..." */
  HT_EQ_INT(n, 8 + 255);
  HT_EQ_INT(out[6], 0x78);
  HT_EQ_INT(out[7], 255);
  HT_CHECK(memcmp(out + 8 + 252, "...", 3) == 0);
  HT_CHECK(out[8 + 251] == 0xa9);
}

static void refuses_small_buffers_and_bad_input(void) {
  henge_ack a;
  memset(&a, 0, sizeof a);
  a.version = 1;
  size_t n = 0;
  HT_EQ_INT(henge_ack_encode(&a, out, 4, &n), HENGE_E_SPACE);
  a.status = 4;
  HT_EQ_INT(henge_ack_encode(&a, out, sizeof out, &n), HENGE_E_ARG);
  HT_EQ_INT(henge_ack_encode(NULL, out, sizeof out, &n), HENGE_E_ARG);
}

static void encodes_the_agent_telemetry(void) {
  size_t n = 0;
  HT_EQ_INT(henge_telemetry_encode_agent("fw/1", 4, out, sizeof out, &n), HENGE_OK);
  size_t w = ht_hex("a1 66 5f6167656e74 64 66772f31", want, sizeof want);
  HT_CHECK(n == w && memcmp(out, want, n) == 0);
}

const ht_case ack_cases[] = {
    {"ack - encodes the bytes protocol/ack.ts encodes", encodes_like_the_node_agent},
    {"ack - a long message is cut on a character boundary and ends with ...", cuts_long_messages_on_a_character},
    {"ack - small buffers and bad input are refused", refuses_small_buffers_and_bad_input},
    {"ack - telemetry {_agent: name}", encodes_the_agent_telemetry},
    {NULL, NULL},
};

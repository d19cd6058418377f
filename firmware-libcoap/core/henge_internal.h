/*
 * henge_internal.h: the core's own parts (the CBOR reader and writer); not for ports.
 */
#ifndef HENGE_INTERNAL_H
#define HENGE_INTERNAL_H

#include "henge.h"

/* C99 has no _Static_assert: a negative array size stops the build instead. */
#define HENGE_STATIC_ASSERT(cond, name) typedef char henge_static_assert_##name[(cond) ? 1 : -1]

#ifdef HENGE_NO_ERRMSG
#define HENGE_MSG(text) ((const char *)0)
#else
#define HENGE_MSG(text) (text)
#endif

/* CBOR major types (RFC 8949 §3.1). */
enum {
  HENGE_CBOR_UINT = 0,
  HENGE_CBOR_NEGINT = 1,
  HENGE_CBOR_BYTES = 2,
  HENGE_CBOR_TEXT = 3,
  HENGE_CBOR_ARRAY = 4,
  HENGE_CBOR_MAP = 5,
  HENGE_CBOR_TAG = 6,
  HENGE_CBOR_SIMPLE = 7
};

/* The "break" stop code that ends an indefinite-length item. */
#define HENGE_CBOR_BREAK 0xffu

typedef struct henge_cbor_reader {
  const uint8_t *p;
  const uint8_t *end;
} henge_cbor_reader;

/* One data item's head: major type, additional information, and its argument. */
typedef struct henge_cbor_head {
  uint8_t major;
  uint8_t ai;
  bool indefinite; /* ai 31 on a string, array or map */
  uint64_t arg;    /* the value, length or count (for major 7: the simple value or the float's bits) */
} henge_cbor_head;

/*
 * Reads one head. HENGE_E_CBOR on truncation, on reserved additional information (28-30), on ai 31
 * where it is not allowed (major 0, 1, 6), on a "break" (the caller checks henge_cbor_at_break first),
 * and on two-byte simple values below 32 (RFC 8949 §3.3).
 */
henge_status henge_cbor_read_head(henge_cbor_reader *r, henge_cbor_head *h);

/* True when the next byte is the "break" stop code (and consumes it). */
bool henge_cbor_take_break(henge_cbor_reader *r);

/* Skips one whole data item without recursion; HENGE_E_LIMIT beyond HENGE_MAX_SKIP_DEPTH. */
henge_status henge_cbor_skip(henge_cbor_reader *r);

/* Writer: a bounded output buffer; `failed` sticks once it ran out of room. */
typedef struct henge_cbor_writer {
  uint8_t *buf;
  size_t cap;
  size_t len;
  bool failed;
} henge_cbor_writer;

void henge_cbor_put_head(henge_cbor_writer *w, uint8_t major, uint64_t arg);
void henge_cbor_put_bytes(henge_cbor_writer *w, const uint8_t *data, size_t len);

/* Checks UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
bool henge_utf8_valid(const uint8_t *s, size_t len);
/* The longest prefix of at most `max` bytes that ends on a character boundary. */
size_t henge_utf8_prefix(const uint8_t *s, size_t len, size_t max);

#endif /* HENGE_INTERNAL_H */

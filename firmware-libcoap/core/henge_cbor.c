/*
 * henge_cbor.c: the bounded CBOR reader and writer the core needs (RFC 8949), and UTF-8 checks.
 * Only what snapshots, acks and telemetry use; no recursion anywhere.
 */
#include "henge_internal.h"

henge_status henge_cbor_read_head(henge_cbor_reader *r, henge_cbor_head *h) {
  if (r->p >= r->end) return HENGE_E_CBOR;
  uint8_t ib = *r->p++;
  h->major = (uint8_t)(ib >> 5);
  h->ai = (uint8_t)(ib & 0x1f);
  h->indefinite = false;
  h->arg = 0;
  if (h->ai < 24) {
    h->arg = h->ai;
    return HENGE_OK;
  }
  if (h->ai == 31) {
    /* Indefinite length: strings, arrays and maps only; a lone "break" is not an item. */
    if (h->major == HENGE_CBOR_BYTES || h->major == HENGE_CBOR_TEXT || h->major == HENGE_CBOR_ARRAY || h->major == HENGE_CBOR_MAP) {
      h->indefinite = true;
      return HENGE_OK;
    }
    return HENGE_E_CBOR;
  }
  if (h->ai > 27) return HENGE_E_CBOR; /* 28-30 are reserved */
  size_t n = (size_t)1 << (h->ai - 24);  /* 1, 2, 4 or 8 bytes */
  if ((size_t)(r->end - r->p) < n) return HENGE_E_CBOR;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = (v << 8) | r->p[i];
  r->p += n;
  h->arg = v;
  /* Simple values 0..31 must use the one-byte form (RFC 8949 §3.3). */
  if (h->major == HENGE_CBOR_SIMPLE && h->ai == 24 && v < 32) return HENGE_E_CBOR;
  return HENGE_OK;
}

bool henge_cbor_take_break(henge_cbor_reader *r) {
  if (r->p < r->end && *r->p == HENGE_CBOR_BREAK) {
    r->p++;
    return true;
  }
  return false;
}

/* A definite-length string's bytes: checks they are all there and steps over them. */
static henge_status skip_string_bytes(henge_cbor_reader *r, uint64_t len) {
  if ((uint64_t)(r->end - r->p) < len) return HENGE_E_CBOR;
  r->p += (size_t)len;
  return HENGE_OK;
}

/*
 * Iterative skip: a stack of open containers, each with the items it still holds (or "until break").
 * Maps count two items per entry.
 */
henge_status henge_cbor_skip(henge_cbor_reader *r) {
  struct {
    uint64_t left;
    bool indefinite;
    bool map;
    /* Indefinite containers: items started so far (a map ends only after a value: an even count), and
       whether the last head read was a tag still owed its content (a break may not come then). */
    uint64_t started;
    bool tag_owed;
  } stack[HENGE_MAX_SKIP_DEPTH];
  int depth = 0;
  /* A virtual container holding the one item to skip. */
  uint64_t top_left = 1;
  for (;;) {
    /* Close the containers that are done. */
    for (;;) {
      if (depth == 0) {
        if (top_left == 0) return HENGE_OK;
        break;
      }
      if (stack[depth - 1].indefinite) {
        if (henge_cbor_take_break(r)) {
          /* RFC 8949 §3.2.1: no break after a tag without its content, or after a map key. */
          if (stack[depth - 1].tag_owed || (stack[depth - 1].map && (stack[depth - 1].started & 1u) != 0)) return HENGE_E_CBOR;
          depth--;
          continue;
        }
        break;
      }
      if (stack[depth - 1].left == 0) {
        depth--;
        continue;
      }
      break;
    }
    if (depth == 0) top_left--;
    else if (!stack[depth - 1].indefinite) stack[depth - 1].left--;

    henge_cbor_head h;
    henge_status st = henge_cbor_read_head(r, &h);
    if (st != HENGE_OK) return st;
    if (depth > 0 && stack[depth - 1].indefinite) {
      /* A tag and its content are one item: only a head that is not some tag's content starts one. */
      if (!stack[depth - 1].tag_owed) stack[depth - 1].started++;
      stack[depth - 1].tag_owed = h.major == HENGE_CBOR_TAG;
    }
    switch (h.major) {
      case HENGE_CBOR_UINT:
      case HENGE_CBOR_NEGINT:
      case HENGE_CBOR_SIMPLE:
        break;
      case HENGE_CBOR_BYTES:
      case HENGE_CBOR_TEXT:
        if (!h.indefinite) {
          st = skip_string_bytes(r, h.arg);
          if (st != HENGE_OK) return st;
        } else {
          /* Chunks: definite strings of the same major type, then a break. */
          for (;;) {
            if (henge_cbor_take_break(r)) break;
            henge_cbor_head c;
            st = henge_cbor_read_head(r, &c);
            if (st != HENGE_OK) return st;
            if (c.major != h.major || c.indefinite) return HENGE_E_CBOR;
            st = skip_string_bytes(r, c.arg);
            if (st != HENGE_OK) return st;
          }
        }
        break;
      case HENGE_CBOR_ARRAY:
      case HENGE_CBOR_MAP: {
        if (depth >= HENGE_MAX_SKIP_DEPTH) return HENGE_E_LIMIT;
        uint64_t items = h.arg;
        if (!h.indefinite && h.major == HENGE_CBOR_MAP) {
          if (items > UINT64_MAX / 2) return HENGE_E_CBOR;
          items *= 2;
        }
        /* Each item takes at least one byte: a count beyond what is left is a truncation. */
        if (!h.indefinite && items > (uint64_t)(r->end - r->p)) return HENGE_E_CBOR;
        stack[depth].left = items;
        stack[depth].indefinite = h.indefinite;
        stack[depth].map = h.major == HENGE_CBOR_MAP;
        stack[depth].started = 0;
        stack[depth].tag_owed = false;
        depth++;
        break;
      }
      case HENGE_CBOR_TAG:
        /* A tag is followed by its one content item. */
        if (depth == 0) top_left++;
        else if (!stack[depth - 1].indefinite) stack[depth - 1].left++;
        break;
      default:
        return HENGE_E_CBOR;
    }
  }
}

void henge_cbor_put_head(henge_cbor_writer *w, uint8_t major, uint64_t arg) {
  uint8_t tmp[9];
  size_t n;
  uint8_t m = (uint8_t)(major << 5);
  if (arg < 24) {
    tmp[0] = (uint8_t)(m | arg);
    n = 1;
  } else if (arg <= 0xff) {
    tmp[0] = (uint8_t)(m | 24);
    tmp[1] = (uint8_t)arg;
    n = 2;
  } else if (arg <= 0xffff) {
    tmp[0] = (uint8_t)(m | 25);
    tmp[1] = (uint8_t)(arg >> 8);
    tmp[2] = (uint8_t)arg;
    n = 3;
  } else if (arg <= 0xffffffffu) {
    tmp[0] = (uint8_t)(m | 26);
    for (int i = 0; i < 4; i++) tmp[1 + i] = (uint8_t)(arg >> (24 - 8 * i));
    n = 5;
  } else {
    tmp[0] = (uint8_t)(m | 27);
    for (int i = 0; i < 8; i++) tmp[1 + i] = (uint8_t)(arg >> (56 - 8 * i));
    n = 9;
  }
  henge_cbor_put_bytes(w, tmp, n);
}

void henge_cbor_put_bytes(henge_cbor_writer *w, const uint8_t *data, size_t len) {
  if (w->failed) return;
  if (w->cap - w->len < len) {
    w->failed = true;
    return;
  }
  for (size_t i = 0; i < len; i++) w->buf[w->len + i] = data[i];
  w->len += len;
}

/* Bytes of the UTF-8 sequence starting at s[0..len), 0 when it is not a valid one. */
static size_t utf8_char(const uint8_t *s, size_t len) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0fu;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (len < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3fu);
  }
  if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
  if (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
  return n;
}

bool henge_utf8_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t n = utf8_char(s + i, len - i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t henge_utf8_prefix(const uint8_t *s, size_t len, size_t max) {
  size_t i = 0;
  while (i < len) {
    size_t n = utf8_char(s + i, len - i);
    if (n == 0) n = 1; /* not UTF-8: cut per byte */
    if (i + n > max) break;
    i += n;
  }
  return i;
}

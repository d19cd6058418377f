/*
 * henge_dnssd.c: the DNS side of hub discovery (henge.h, "Hub discovery"): writes one-shot mDNS
 * queries and reads the responses of a DNS-SD browse for `_henge._sub._coap(s)._udp.local` into a
 * small table of instances: PTR -> SRV (port, target) -> A / AAAA, and TXT (v, id, api).
 *
 * Bounded everywhere, no allocation: a message is at most HENGE_DNS_MAX_MESSAGE bytes; names are read
 * into 255-byte buffers (labels at most 63 bytes); a name follows at most HENGE_DNS_MAX_POINTERS
 * compression pointers, each pointing before the labels it was found among (so a loop cannot
 * happen, whatever the bound); every record must end inside its RDATA and the RDATA inside the message.
 * A message is checked whole before anything is taken from it.
 */
#include <string.h>

#include "henge_internal.h"

/* Flag bits of the DNS header (RFC 1035 §4.1.1). */
#define DNS_FLAG_QR 0x8000u
#define DNS_OPCODE_MASK 0x7800u
#define DNS_CLASS_IN 1u
#define DNS_CLASS_MASK 0x7fffu /* the top bit is mDNS's cache-flush (answers) or unicast-response (questions) */

HENGE_STATIC_ASSERT(HENGE_DNS_MAX_MESSAGE >= HENGE_DNS_HEADER_BYTES && HENGE_DNS_MAX_MESSAGE <= 65535, dns_message_bounds);
HENGE_STATIC_ASSERT(HENGE_DNSSD_MAX_HUBS >= 1 && HENGE_DNSSD_MAX_HUBS <= 255, dnssd_hub_bounds);

static uint16_t get16(const uint8_t *p) { return (uint16_t)((unsigned)p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* Two names in wire form, ASCII letters compared without case (RFC 6762 §16). Label lengths (< 64) are not letters. */
static bool same_name(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  if (a_len != b_len) return false;
  for (size_t i = 0; i < a_len; i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

/*
 * Reads the name at *pos into out (wire form, uncompressed, ending with the root label), and moves *pos
 * past it (past the first pointer, if any). HENGE_E_DNS when it runs off the message, uses a reserved
 * label type, is longer than 255 bytes, or has a pointer that does not point before the labels it
 * follows or one pointer too many.
 */
static henge_status read_name(const uint8_t *msg, size_t len, size_t *pos, uint8_t out[HENGE_DNS_NAME_MAX], uint8_t *out_len) {
  size_t p = *pos;
  size_t run_start = p; /* where the labels being read began: a pointer must point before it */
  size_t after = 0;     /* where the name ends in place: after its first pointer */
  unsigned pointers = 0;
  size_t n = 0;
  for (;;) {
    if (p >= len) return HENGE_E_DNS;
    uint8_t c = msg[p];
    if ((c & 0xc0u) == 0xc0u) {
      if (p + 1 >= len) return HENGE_E_DNS;
      size_t target = (size_t)(c & 0x3fu) << 8 | msg[p + 1];
      if (target >= run_start || ++pointers > HENGE_DNS_MAX_POINTERS) return HENGE_E_DNS;
      if (after == 0) after = p + 2;
      p = run_start = target;
      continue;
    }
    if (c & 0xc0u) return HENGE_E_DNS; /* 0x40, 0x80: extended and reserved label types (RFC 6891 §5) */
    if (c == 0) break;
    if (p + 1 + c > len || n + 1 + c + 1 > HENGE_DNS_NAME_MAX) return HENGE_E_DNS;
    memcpy(out + n, msg + p, 1u + c);
    n += 1u + c;
    p += 1u + c;
  }
  out[n++] = 0;
  *out_len = (uint8_t)n;
  *pos = after != 0 ? after : p + 1;
  return HENGE_OK;
}

/* One resource record (or, in the question section, one question: no TTL, no RDATA). */
typedef struct dns_rr {
  uint8_t name[HENGE_DNS_NAME_MAX];
  uint8_t name_len;
  uint16_t type;
  uint16_t klass;
  uint32_t ttl;
  size_t rdata;     /* offset of the RDATA in the message */
  uint16_t rdlength;
} dns_rr;

static henge_status read_rr(const uint8_t *msg, size_t len, size_t *pos, bool question, dns_rr *rr) {
  henge_status st = read_name(msg, len, pos, rr->name, &rr->name_len);
  if (st != HENGE_OK) return st;
  size_t p = *pos;
  size_t fixed = question ? 4u : 10u;
  if (p + fixed > len) return HENGE_E_DNS;
  rr->type = get16(msg + p);
  rr->klass = get16(msg + p + 2);
  rr->ttl = 0;
  rr->rdata = p + fixed;
  rr->rdlength = 0;
  if (!question) {
    rr->ttl = get32(msg + p + 4);
    rr->rdlength = get16(msg + p + 8);
    if (rr->rdata + rr->rdlength > len) return HENGE_E_DNS;
  }
  *pos = rr->rdata + rr->rdlength;
  return HENGE_OK;
}

/* A name that must fill an RDATA exactly (PTR), or end exactly at its end (SRV, after 6 bytes). */
static henge_status rdata_name(const uint8_t *msg, size_t len, const dns_rr *rr, size_t skip, uint8_t out[HENGE_DNS_NAME_MAX], uint8_t *out_len) {
  if (rr->rdlength < skip + 1) return HENGE_E_DNS;
  size_t p = rr->rdata + skip;
  henge_status st = read_name(msg, len, &p, out, out_len);
  if (st != HENGE_OK) return st;
  return p == rr->rdata + rr->rdlength ? HENGE_OK : HENGE_E_DNS;
}

/* TXT RDATA: one or more length-prefixed strings that fill it exactly (RFC 1035 §3.3.14). */
static henge_status check_txt(const uint8_t *msg, const dns_rr *rr) {
  if (rr->rdlength == 0) return HENGE_E_DNS;
  size_t p = rr->rdata, end = rr->rdata + rr->rdlength;
  while (p < end) p += 1u + msg[p];
  return p == end ? HENGE_OK : HENGE_E_DNS;
}

/* Checks the record's RDATA for the types the browse reads; other types are only skipped. */
static henge_status check_rdata(const uint8_t *msg, size_t len, const dns_rr *rr) {
  uint8_t name[HENGE_DNS_NAME_MAX];
  uint8_t name_len;
  switch (rr->type) {
    case HENGE_DNS_TYPE_PTR: return rdata_name(msg, len, rr, 0, name, &name_len);
    case HENGE_DNS_TYPE_SRV: return rdata_name(msg, len, rr, 6, name, &name_len);
    case HENGE_DNS_TYPE_TXT: return check_txt(msg, rr);
    case HENGE_DNS_TYPE_A: return rr->rdlength == 4 ? HENGE_OK : HENGE_E_DNS;
    case HENGE_DNS_TYPE_AAAA: return rr->rdlength == 16 ? HENGE_OK : HENGE_E_DNS;
    default: return HENGE_OK;
  }
}

/* Appends one label to a name under construction. */
static bool put_label(uint8_t *out, size_t *n, const char *label, size_t len) {
  if (len == 0 || len > HENGE_DNS_LABEL_MAX || *n + 1 + len + 1 > HENGE_DNS_NAME_MAX) return false;
  out[(*n)++] = (uint8_t)len;
  memcpy(out + *n, label, len);
  *n += len;
  return true;
}

henge_status henge_dnssd_browse_init(henge_dnssd_browse *b, bool secure) {
  if (b == NULL) return HENGE_E_ARG;
  memset(b, 0, sizeof *b);
  size_t n = 0;
  const char *type = secure ? "_coaps" : "_coap";
  if (!put_label(b->service, &n, "_henge", 6) || !put_label(b->service, &n, "_sub", 4) || !put_label(b->service, &n, type, strlen(type)) ||
      !put_label(b->service, &n, "_udp", 4) || !put_label(b->service, &n, "local", 5))
    return HENGE_E_SPACE;
  b->service[n++] = 0;
  b->service_len = (uint8_t)n;
  return HENGE_OK;
}

/* Writes one question (name, type, class IN) if it fits. */
static bool put_question(uint8_t *buf, size_t cap, size_t *n, const uint8_t *name, size_t name_len, uint16_t type) {
  if (*n + name_len + 4 > cap) return false;
  memcpy(buf + *n, name, name_len);
  *n += name_len;
  buf[(*n)++] = (uint8_t)(type >> 8);
  buf[(*n)++] = (uint8_t)type;
  buf[(*n)++] = 0;
  buf[(*n)++] = DNS_CLASS_IN;
  return true;
}

henge_status henge_dnssd_query(const henge_dnssd_browse *b, uint16_t id, uint8_t *buf, size_t cap, size_t *len) {
  if (b == NULL || buf == NULL || len == NULL || b->service_len == 0) return HENGE_E_ARG;
  size_t n = HENGE_DNS_HEADER_BYTES;
  if (!put_question(buf, cap, &n, b->service, b->service_len, HENGE_DNS_TYPE_PTR)) return HENGE_E_SPACE;
  unsigned questions = 1;
  for (size_t i = 0; i < b->count; i++) {
    const henge_dnssd_hub *h = &b->hubs[i];
    if (!h->has_srv) {
      if (!put_question(buf, cap, &n, h->instance, h->instance_len, HENGE_DNS_TYPE_SRV)) break;
      questions++;
    } else if (!h->has_a && !h->has_aaaa) {
      if (!put_question(buf, cap, &n, h->target, h->target_len, HENGE_DNS_TYPE_A)) break;
      questions++;
    }
    if (!h->has_txt) {
      if (!put_question(buf, cap, &n, h->instance, h->instance_len, HENGE_DNS_TYPE_TXT)) break;
      questions++;
    }
  }
  memset(buf, 0, HENGE_DNS_HEADER_BYTES);
  buf[0] = (uint8_t)(id >> 8);
  buf[1] = (uint8_t)id;
  buf[4] = (uint8_t)(questions >> 8);
  buf[5] = (uint8_t)questions;
  *len = n;
  return HENGE_OK;
}

/* The instance named `name`, or NULL. */
static henge_dnssd_hub *find_instance(henge_dnssd_browse *b, const uint8_t *name, size_t len) {
  for (size_t i = 0; i < b->count; i++)
    if (same_name(b->hubs[i].instance, b->hubs[i].instance_len, name, len)) return &b->hubs[i];
  return NULL;
}

static void take_ptr(henge_dnssd_browse *b, const uint8_t *msg, size_t len, const dns_rr *rr) {
  uint8_t inst[HENGE_DNS_NAME_MAX];
  uint8_t inst_len;
  if (rdata_name(msg, len, rr, 0, inst, &inst_len) != HENGE_OK || inst_len < 2) return; /* checked already; the root is no instance */
  henge_dnssd_hub *h = find_instance(b, inst, inst_len);
  if (rr->ttl == 0) {
    /* A goodbye (RFC 6762 §10.1): the instance is gone. */
    if (h != NULL) {
      size_t i = (size_t)(h - b->hubs);
      memmove(&b->hubs[i], &b->hubs[i + 1], (b->count - i - 1) * sizeof b->hubs[0]);
      b->count--;
    }
    return;
  }
  if (h != NULL) return;
  if (b->count >= HENGE_DNSSD_MAX_HUBS) {
    if (b->dropped < UINT16_MAX) b->dropped++;
    return;
  }
  h = &b->hubs[b->count++];
  memset(h, 0, sizeof *h);
  memcpy(h->instance, inst, inst_len);
  h->instance_len = inst_len;
}

/* One TXT string `key[=value]` of a known instance; the first occurrence of a key counts. */
static void take_txt_entry(henge_dnssd_hub *h, const uint8_t *s, size_t n, bool *seen_v, bool *seen_id, bool *seen_api) {
  size_t k = 0;
  while (k < n && s[k] != '=') k++;
  const uint8_t *val = s + k + (k < n ? 1 : 0);
  size_t vn = k < n ? n - k - 1 : 0;
  if (k == 1 && lower(s[0]) == 'v') {
    if (*seen_v) return;
    *seen_v = h->has_v = true;
    h->v_len = (uint8_t)vn;
    size_t keep = vn < HENGE_DNSSD_TXT_V_MAX ? vn : HENGE_DNSSD_TXT_V_MAX;
    memcpy(h->v, val, keep);
    h->v[keep] = '\0';
  } else if (k == 2 && lower(s[0]) == 'i' && lower(s[1]) == 'd') {
    if (*seen_id) return;
    *seen_id = h->has_id = true;
    h->id_ok = vn >= 1 && vn <= HENGE_DNSSD_HUB_ID_MAX;
    for (size_t i = 0; h->id_ok && i < vn; i++)
      if (val[i] <= 0x20 || val[i] == 0x7f) h->id_ok = false; /* spaces and control characters (and NUL) */
    if (h->id_ok) {
      memcpy(h->id, val, vn);
      h->id[vn] = '\0';
      h->id_len = (uint8_t)vn;
    }
  } else if (k == 3 && lower(s[0]) == 'a' && lower(s[1]) == 'p' && lower(s[2]) == 'i') {
    if (*seen_api) return;
    *seen_api = h->has_api = true;
    uint32_t port = 0;
    bool ok = vn >= 1 && vn <= 5;
    for (size_t i = 0; ok && i < vn; i++) {
      if (val[i] < '0' || val[i] > '9') ok = false;
      else port = port * 10 + (uint32_t)(val[i] - '0');
    }
    h->api_port = ok && port >= 1 && port <= 65535 ? (uint16_t)port : 0;
  }
}

static void take_txt(henge_dnssd_hub *h, const uint8_t *msg, const dns_rr *rr) {
  /* A newer TXT record replaces what an earlier one said. */
  h->has_txt = true;
  h->has_v = h->has_id = h->has_api = h->id_ok = false;
  h->v_len = h->id_len = 0;
  h->v[0] = h->id[0] = '\0';
  h->api_port = 0;
  bool seen_v = false, seen_id = false, seen_api = false;
  size_t p = rr->rdata, end = rr->rdata + rr->rdlength;
  while (p < end) {
    size_t n = msg[p];
    if (n > 0) take_txt_entry(h, msg + p + 1, n, &seen_v, &seen_id, &seen_api);
    p += 1 + n;
  }
}

/* Which records a pass over the message takes: instances first, then their SRV and TXT, then addresses. */
enum { PASS_PTR, PASS_SRV_TXT, PASS_ADDRESS, PASS_CHECK };

static henge_status walk(henge_dnssd_browse *b, const uint8_t *msg, size_t len, int pass) {
  unsigned counts[4] = {get16(msg + 4), get16(msg + 6), get16(msg + 8), get16(msg + 10)};
  size_t pos = HENGE_DNS_HEADER_BYTES;
  dns_rr rr;
  for (unsigned section = 0; section < 4; section++) {
    for (unsigned i = 0; i < counts[section]; i++) {
      henge_status st = read_rr(msg, len, &pos, section == 0, &rr);
      if (st != HENGE_OK) return st;
      if (section == 0) continue;
      if (pass == PASS_CHECK) {
        st = check_rdata(msg, len, &rr);
        if (st != HENGE_OK) return st;
        continue;
      }
      if ((rr.klass & DNS_CLASS_MASK) != DNS_CLASS_IN) continue;
      if (pass == PASS_PTR) {
        if (rr.type == HENGE_DNS_TYPE_PTR && same_name(rr.name, rr.name_len, b->service, b->service_len)) take_ptr(b, msg, len, &rr);
        continue;
      }
      if (rr.ttl == 0) continue; /* a goodbye of a record the browse would take: it says nothing new */
      if (pass == PASS_SRV_TXT && (rr.type == HENGE_DNS_TYPE_SRV || rr.type == HENGE_DNS_TYPE_TXT)) {
        henge_dnssd_hub *h = find_instance(b, rr.name, rr.name_len);
        if (h == NULL) continue;
        if (rr.type == HENGE_DNS_TYPE_TXT) {
          take_txt(h, msg, &rr);
        } else {
          uint8_t target[HENGE_DNS_NAME_MAX];
          uint8_t target_len;
          if (rdata_name(msg, len, &rr, 6, target, &target_len) != HENGE_OK) continue; /* checked already */
          if (!h->has_srv || !same_name(h->target, h->target_len, target, target_len)) {
            /* A new target: the addresses of the old one are no longer the hub's. */
            memcpy(h->target, target, target_len);
            h->target_len = target_len;
            h->has_a = h->has_aaaa = false;
          }
          h->port = get16(msg + rr.rdata + 4);
          h->has_srv = true;
        }
      } else if (pass == PASS_ADDRESS && (rr.type == HENGE_DNS_TYPE_A || rr.type == HENGE_DNS_TYPE_AAAA)) {
        for (size_t k = 0; k < b->count; k++) {
          henge_dnssd_hub *h = &b->hubs[k];
          if (!h->has_srv || !same_name(h->target, h->target_len, rr.name, rr.name_len)) continue;
          if (rr.type == HENGE_DNS_TYPE_A && !h->has_a) {
            memcpy(h->ipv4, msg + rr.rdata, 4);
            h->has_a = true;
          } else if (rr.type == HENGE_DNS_TYPE_AAAA && !h->has_aaaa) {
            memcpy(h->ipv6, msg + rr.rdata, 16);
            h->has_aaaa = true;
          }
        }
      }
    }
  }
  return HENGE_OK;
}

henge_status henge_dnssd_on_message(henge_dnssd_browse *b, const uint8_t *msg, size_t len) {
  if (b == NULL || (msg == NULL && len > 0)) return HENGE_E_ARG;
  if (len > HENGE_DNS_MAX_MESSAGE) return HENGE_E_LIMIT;
  if (len < HENGE_DNS_HEADER_BYTES) return HENGE_E_DNS;
  henge_status st = walk(b, msg, len, PASS_CHECK);
  if (st != HENGE_OK) return st;
  uint16_t flags = get16(msg + 2);
  /* RFC 6762 §18.3, §18.11: only standard responses count; the RCODE is ignored. */
  if ((flags & DNS_FLAG_QR) == 0 || (flags & DNS_OPCODE_MASK) != 0) return HENGE_E_NOT_FOUND;
  (void)walk(b, msg, len, PASS_PTR); /* cannot fail: the message was checked whole */
  (void)walk(b, msg, len, PASS_SRV_TXT);
  (void)walk(b, msg, len, PASS_ADDRESS);
  return HENGE_OK;
}

henge_status henge_dnssd_verdict_of(const henge_dnssd_hub *h, const char *pinned, size_t pinned_len, henge_dnssd_verdict *verdict) {
  if (h == NULL || verdict == NULL || (pinned == NULL && pinned_len > 0)) return HENGE_E_ARG;
  henge_dnssd_verdict v = HENGE_DNSSD_USABLE;
  if (!h->has_txt) v = HENGE_DNSSD_INCOMPLETE;
  else if (!h->has_v) v = HENGE_DNSSD_NO_VERSION;
  else if (h->v_len != 1 || h->v[0] != '0' + HENGE_PROTOCOL_VERSION) v = HENGE_DNSSD_OTHER_VERSION;
  else if (!h->id_ok) v = HENGE_DNSSD_BAD_ID;
  else if (h->api_port == 0) v = HENGE_DNSSD_BAD_API;
  else if (pinned != NULL && (pinned_len != h->id_len || memcmp(pinned, h->id, pinned_len) != 0)) v = HENGE_DNSSD_OTHER_HUB;
  else if (!h->has_srv) v = HENGE_DNSSD_INCOMPLETE;
  else if (h->port == 0) v = HENGE_DNSSD_BAD_PORT;
  else if (!h->has_a && !h->has_aaaa) v = HENGE_DNSSD_INCOMPLETE;
  *verdict = v;
  return HENGE_OK;
}

henge_status henge_dnssd_pick(const henge_dnssd_browse *b, const char *pinned, size_t pinned_len, size_t *index) {
  if (b == NULL || index == NULL) return HENGE_E_ARG;
  for (size_t i = 0; i < b->count; i++) {
    henge_dnssd_verdict v;
    henge_status st = henge_dnssd_verdict_of(&b->hubs[i], pinned, pinned_len, &v);
    if (st != HENGE_OK) return st;
    if (v == HENGE_DNSSD_USABLE) {
      *index = i;
      return HENGE_OK;
    }
  }
  return HENGE_E_NOT_FOUND;
}

/*
 * Hub discovery's DNS side (core/henge_dnssd.c): the bytes the hub's real advertiser (ciao) sent to a
 * one-shot query, messages built here record by record (compressed and not), and every way a message
 * can be wrong: compression loops and pointer chains, truncation at every byte, labels and names over
 * their limits, TXT v other than 1, another hub id than the pinned one, goodbyes, a full table.
 */
#include <string.h>

#include "henge.h"
#include "henge_test.h"

/*
 * ciao's unicast answer to the PTR query `_henge._sub._coap._udp.local` (ID 0x4866), captured between
 * two network namespaces by fuzz/dnssd-seeds.ts (also fuzz/corpus/dnssd/ciao-answer-...-PTR.bin): the
 * question repeated, the PTR, then TXT, SRV, A 10.77.0.221, AAAA fe80::a8eb:4dff:fe58:f516 and two NSEC.
 */
static const char CIAO_PTR_ANSWER[] =
    "486684000001000100000006065f68656e6765045f737562055f636f6170045f756470056c6f63616c00000c0001c00c000c0001"
    "0000000a00151268656e67652d356565643030303063306139c018c03a001000010000000a001d03763d310f69643d3565656430"
    "30303063306139086170693d38303830c03a002100010000000a00200000000016331268656e67652d3565656430303030633061"
    "39056c6f63616c001268656e67652d356565643030303063306139c023000100010000000a00040a4d00ddc0a4001c0001000000"
    "0a0010fe80000000000000a8eb4dfffe58f516c03a002f00010000000a002c1268656e67652d356565643030303063306139055f"
    "636f6170045f756470056c6f63616c0000050000800040c0a4002f00010000000a00201268656e67652d35656564303030306330"
    "6139056c6f63616c00000440000008";

/* ---- a small DNS message builder ---- */

typedef struct mb {
  uint8_t b[2048];
  size_t n;
} mb;

static void mb_u8(mb *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void mb_u16(mb *m, unsigned v) {
  mb_u8(m, v >> 8 & 0xff);
  mb_u8(m, v & 0xff);
}
static void mb_u32(mb *m, uint32_t v) {
  mb_u16(m, v >> 16);
  mb_u16(m, v & 0xffff);
}
/* A dotted name, uncompressed ("" is the root). */
static void mb_name(mb *m, const char *dotted) {
  const char *p = dotted;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    mb_u8(m, (unsigned)n);
    memcpy(m->b + m->n, p, n);
    m->n += n;
    p += n + (dot ? 1 : 0);
  }
  mb_u8(m, 0);
}
static void mb_header(mb *m, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar) {
  m->n = 0;
  mb_u16(m, 0);
  mb_u16(m, flags);
  mb_u16(m, qd);
  mb_u16(m, an);
  mb_u16(m, ns);
  mb_u16(m, ar);
}
/* Record head after its name: type, class IN (cache-flush bit as given), TTL; returns where RDLENGTH goes. */
static size_t mb_rr(mb *m, unsigned type, unsigned klass, uint32_t ttl) {
  mb_u16(m, type);
  mb_u16(m, klass);
  mb_u32(m, ttl);
  size_t at = m->n;
  mb_u16(m, 0);
  return at;
}
static void mb_end(mb *m, size_t at) {
  size_t len = m->n - at - 2;
  m->b[at] = (uint8_t)(len >> 8);
  m->b[at + 1] = (uint8_t)len;
}
static void mb_txt(mb *m, const char *const *entries, size_t count) {
  for (size_t i = 0; i < count; i++) {
    size_t n = strlen(entries[i]);
    mb_u8(m, (unsigned)n);
    memcpy(m->b + m->n, entries[i], n);
    m->n += n;
  }
}

#define SUB_COAP "_henge._sub._coap._udp.local"
#define SUB_COAPS "_henge._sub._coaps._udp.local"

/* A response for one hub `id` (instance henge-<id>), as a plain responder writes it: no compression. */
static void hub_answer(mb *m, const char *id, const char *v, uint16_t port, const uint8_t ipv4[4]) {
  char inst[128], host[128], id_kv[96], v_kv[32];
  snprintf(inst, sizeof inst, "henge-%s._coap._udp.local", id);
  snprintf(host, sizeof host, "henge-%s.local", id);
  snprintf(id_kv, sizeof id_kv, "id=%s", id);
  snprintf(v_kv, sizeof v_kv, "v=%s", v);
  const char *txt[] = {v_kv, id_kv, "api=8080"};
  mb_header(m, 0x8400, 0, 1, 0, 3);
  mb_name(m, SUB_COAP);
  size_t at = mb_rr(m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_name(m, inst);
  mb_end(m, at);
  mb_name(m, inst);
  at = mb_rr(m, HENGE_DNS_TYPE_SRV, 0x8001, 120);
  mb_u16(m, 0);
  mb_u16(m, 0);
  mb_u16(m, port);
  mb_name(m, host);
  mb_end(m, at);
  mb_name(m, inst);
  at = mb_rr(m, HENGE_DNS_TYPE_TXT, 0x8001, 4500);
  mb_txt(m, txt, 3);
  mb_end(m, at);
  mb_name(m, host);
  at = mb_rr(m, HENGE_DNS_TYPE_A, 0x8001, 120);
  for (int i = 0; i < 4; i++) mb_u8(m, ipv4[i]);
  mb_end(m, at);
}

static const uint8_t ADDR1[4] = {10, 77, 0, 1}, ADDR2[4] = {10, 77, 0, 2};

static henge_dnssd_verdict verdict(const henge_dnssd_browse *b, size_t i, const char *pinned) {
  henge_dnssd_verdict v = HENGE_DNSSD_USABLE;
  HT_EQ_INT(henge_dnssd_verdict_of(&b->hubs[i], pinned, pinned ? strlen(pinned) : 0, &v), HENGE_OK);
  return v;
}

/* ---- the tests ---- */

static void dnssd_reads_the_advertisers_real_answer(void) {
  uint8_t msg[1024];
  size_t n = ht_hex(CIAO_PTR_ANSWER, msg, sizeof msg);
  henge_dnssd_browse b;
  HT_EQ_INT(henge_dnssd_browse_init(&b, false), HENGE_OK);
  HT_EQ_INT(henge_dnssd_on_message(&b, msg, n), HENGE_OK);
  HT_EQ_INT(b.count, 1);
  const henge_dnssd_hub *h = &b.hubs[0];
  HT_EQ_INT(h->instance[0], 18);
  HT_CHECK(memcmp(h->instance + 1, "henge-5eed0000c0a9", 18) == 0);
  HT_CHECK(h->has_srv && h->has_txt && h->has_a && h->has_aaaa);
  HT_EQ_INT(h->port, 5683);
  HT_CHECK(memcmp(h->ipv4, (const uint8_t[]){10, 77, 0, 221}, 4) == 0);
  HT_EQ_INT(h->ipv6[0], 0xfe);
  HT_EQ_INT(h->ipv6[1], 0x80);
  HT_CHECK(strcmp(h->id, "5eed0000c0a9") == 0);
  HT_EQ_INT(h->api_port, 8080);
  HT_CHECK(strcmp(h->v, "1") == 0);
  size_t i = 99;
  HT_EQ_INT(henge_dnssd_pick(&b, NULL, 0, &i), HENGE_OK);
  HT_EQ_INT(i, 0);
  HT_EQ_INT(henge_dnssd_pick(&b, "5eed0000c0a9", 12, &i), HENGE_OK);
  /* The same bytes for a device browsing _coaps: not its service, nothing taken. */
  HT_EQ_INT(henge_dnssd_browse_init(&b, true), HENGE_OK);
  HT_EQ_INT(henge_dnssd_on_message(&b, msg, n), HENGE_OK);
  HT_EQ_INT(b.count, 0);
  HT_EQ_INT(henge_dnssd_pick(&b, NULL, 0, &i), HENGE_E_NOT_FOUND);
}

static void dnssd_query_bytes(void) {
  henge_dnssd_browse b;
  HT_EQ_INT(henge_dnssd_browse_init(&b, true), HENGE_OK);
  uint8_t buf[512], want[64];
  size_t n = 0;
  HT_EQ_INT(henge_dnssd_query(&b, 0x1234, buf, sizeof buf, &n), HENGE_OK);
  size_t wn = ht_hex("1234 0000 0001 0000 0000 0000 065f68656e6765 045f737562 065f636f617073 045f756470 056c6f63616c 00 000c 0001", want, sizeof want);
  HT_EQ_INT(n, wn);
  HT_CHECK(memcmp(buf, want, wn) == 0);
  HT_EQ_INT(henge_dnssd_query(&b, 1, buf, wn - 1, &n), HENGE_E_SPACE);
  HT_EQ_INT(henge_dnssd_query(&b, 1, buf, sizeof buf, NULL), HENGE_E_ARG);
  /* The query is well-formed DNS, and a query is not an answer: nothing is taken from it. */
  HT_EQ_INT(henge_dnssd_query(&b, 1, buf, sizeof buf, &n), HENGE_OK);
  HT_EQ_INT(henge_dnssd_on_message(&b, buf, n), HENGE_E_NOT_FOUND);
}

static void dnssd_records_across_messages_and_follow_up_questions(void) {
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  mb m;
  /* 1. The PTR alone. */
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, SUB_COAP);
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_name(&m, "henge-h1._coap._udp.local");
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, 1);
  HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_INCOMPLETE);
  /* The next query asks PTR, SRV and TXT. */
  uint8_t q[512];
  size_t qn = 0;
  HT_EQ_INT(henge_dnssd_query(&b, 7, q, sizeof q, &qn), HENGE_OK);
  HT_EQ_INT(q[5], 3);
  /* 2. An A record before its SRV is not taken (nobody's target yet). */
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, "henge-h1.local");
  at = mb_rr(&m, HENGE_DNS_TYPE_A, 1, 120);
  mb_u32(&m, 0x0a4d0001);
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_CHECK(!b.hubs[0].has_a);
  /* 3. SRV and TXT, names in another case (compared without case). */
  mb_header(&m, 0x8400, 0, 2, 0, 0);
  mb_name(&m, "HENGE-H1._COAP._udp.LOCAL");
  at = mb_rr(&m, HENGE_DNS_TYPE_SRV, 1, 120);
  mb_u16(&m, 0);
  mb_u16(&m, 0);
  mb_u16(&m, 5683);
  mb_name(&m, "henge-h1.local");
  mb_end(&m, at);
  mb_name(&m, "henge-h1._coap._udp.local");
  at = mb_rr(&m, HENGE_DNS_TYPE_TXT, 1, 4500);
  const char *txt[] = {"V=1", "ID=h1", "Api=80"};
  mb_txt(&m, txt, 3);
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_CHECK(b.hubs[0].has_srv && b.hubs[0].has_txt);
  HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_INCOMPLETE); /* no address yet */
  HT_EQ_INT(henge_dnssd_query(&b, 8, q, sizeof q, &qn), HENGE_OK);
  HT_EQ_INT(q[5], 2); /* PTR, and A of the target */
  HT_CHECK(memcmp(q + qn - 4 - 16, "\x08henge-h1\x05local\x00\x00\x01", 19) == 0);
  /* 4. The A record: usable. */
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, "henge-h1.local");
  at = mb_rr(&m, HENGE_DNS_TYPE_A, 0x8001, 120);
  mb_u32(&m, 0x0a4d0001);
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_USABLE);
  HT_EQ_INT(b.hubs[0].api_port, 80);
  HT_CHECK(strcmp(b.hubs[0].id, "h1") == 0);
}

static void dnssd_compressed_names(void) {
  /* Every name after the first compressed, as mDNS responders write them. */
  mb m;
  mb_header(&m, 0x8400, 0, 1, 0, 3);
  size_t sub = m.n;
  mb_name(&m, SUB_COAP);                        /* 12: _henge._sub._coap._udp.local */
  size_t type = sub + 7 + 5;                    /* _coap._udp.local inside it */
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
  size_t inst = m.n;
  mb_u8(&m, 8);
  memcpy(m.b + m.n, "henge-c1", 8);
  m.n += 8;
  mb_u16(&m, 0xc000 | (unsigned)type);
  mb_end(&m, at);
  mb_u16(&m, 0xc000 | (unsigned)inst);          /* SRV owner: pointer to the instance */
  at = mb_rr(&m, HENGE_DNS_TYPE_SRV, 0x8001, 120);
  mb_u16(&m, 0);
  mb_u16(&m, 0);
  mb_u16(&m, 5683);
  size_t host = m.n;
  mb_u8(&m, 8);
  memcpy(m.b + m.n, "henge-c1", 8);
  m.n += 8;
  mb_u16(&m, 0xc000 | (unsigned)(type + 11));   /* "local" */
  mb_end(&m, at);
  mb_u16(&m, 0xc000 | (unsigned)inst);
  at = mb_rr(&m, HENGE_DNS_TYPE_TXT, 0x8001, 4500);
  const char *txt[] = {"v=1", "id=c1", "api=8080"};
  mb_txt(&m, txt, 3);
  mb_end(&m, at);
  mb_u16(&m, 0xc000 | (unsigned)host);
  at = mb_rr(&m, HENGE_DNS_TYPE_A, 0x8001, 120);
  mb_u32(&m, 0x0a4d0002);
  mb_end(&m, at);
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, 1);
  HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_USABLE);
  HT_EQ_INT(b.hubs[0].ipv4[3], 2);
  HT_EQ_INT(b.hubs[0].target_len, 1 + 8 + 1 + 5 + 1);
}

/*
 * A response whose first record (type 99, which the browse never reads as names) carries `junk_len`
 * bytes at *junk_at for the caller to fill, followed by the owner name of a PTR record of the browsed
 * name; the caller writes the PTR's head and RDATA.
 */
static void pointer_message(mb *m, size_t junk_len, size_t *junk_at) {
  mb_header(m, 0x8400, 0, 2, 0, 0);
  mb_name(m, "x");
  size_t at = mb_rr(m, 99, 1, 1);
  *junk_at = m->n;
  memset(m->b + m->n, 0, junk_len);
  m->n += junk_len;
  mb_end(m, at);
  mb_name(m, SUB_COAP);
}

/* The PTR record after pointer_message: its RDATA is one compression pointer to `target`. */
static void ptr_pointing_at(mb *m, size_t target) {
  size_t at = mb_rr(m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_u16(m, 0xc000 | (unsigned)target);
  mb_end(m, at);
}

static void dnssd_compression_loops_and_pointer_chains(void) {
  henge_dnssd_browse b;
  mb m;
  size_t junk_at;
  /* A pointer to itself. */
  pointer_message(&m, 0, &junk_at);
  ptr_pointing_at(&m, m.n + 10);
  henge_dnssd_browse_init(&b, false);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  HT_EQ_INT(b.count, 0);
  /* Two names pointing at each other: "a" -> "b" -> "a" (the forward pointer is refused). */
  pointer_message(&m, 8, &junk_at);
  const uint8_t loop[8] = {1, 'a', 0xc0, (uint8_t)(junk_at + 4), 1, 'b', 0xc0, (uint8_t)junk_at};
  memcpy(m.b + junk_at, loop, sizeof loop);
  ptr_pointing_at(&m, junk_at + 4);
  henge_dnssd_browse_init(&b, false);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  HT_EQ_INT(b.count, 0);
  ptr_pointing_at(&m, junk_at); /* the same, entered at "a" */
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  /* A pointer back into the labels it follows ("c" then a pointer to that "c"): a loop, refused. */
  pointer_message(&m, 4, &junk_at);
  const uint8_t self[4] = {1, 'c', 0xc0, (uint8_t)junk_at};
  memcpy(m.b + junk_at, self, sizeof self);
  ptr_pointing_at(&m, junk_at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  /* A chain of backward pointers: HENGE_DNS_MAX_POINTERS in all are fine, one more is not. */
  for (unsigned extra = 0; extra <= 1; extra++) {
    unsigned inner = HENGE_DNS_MAX_POINTERS - 1 + extra; /* the PTR's own pointer makes one more */
    pointer_message(&m, 3 + 2 * inner, &junk_at);
    m.b[junk_at] = 1;
    m.b[junk_at + 1] = 'z';
    m.b[junk_at + 2] = 0; /* "z." */
    size_t prev = junk_at;
    for (unsigned k = 0; k < inner; k++) {
      size_t here = junk_at + 3 + 2 * k;
      m.b[here] = (uint8_t)(0xc0 | prev >> 8);
      m.b[here + 1] = (uint8_t)prev;
      prev = here;
    }
    ptr_pointing_at(&m, prev);
    henge_dnssd_browse_init(&b, false);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), extra ? HENGE_E_DNS : HENGE_OK);
    HT_EQ_INT(b.count, extra ? 0 : 1);
  }
  /* A pointer past the end, and a reserved label type (0x40). */
  pointer_message(&m, 0, &junk_at);
  ptr_pointing_at(&m, 0x3fff);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  pointer_message(&m, 0, &junk_at);
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_u8(&m, 0x41);
  mb_u8(&m, 0);
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
}

static void dnssd_truncated_at_every_byte(void) {
  uint8_t msg[1024];
  size_t n = ht_hex(CIAO_PTR_ANSWER, msg, sizeof msg);
  for (size_t cut = 0; cut < n; cut++) {
    henge_dnssd_browse b;
    henge_dnssd_browse_init(&b, false);
    henge_status st = henge_dnssd_on_message(&b, msg, cut);
    if (st != HENGE_E_DNS) fprintf(stderr, "    cut at %zu: %s\n", cut, henge_status_name(st));
    HT_EQ_INT(st, HENGE_E_DNS);
    HT_EQ_INT(b.count, 0); /* nothing taken from a message that is not whole */
  }
  /* A record whose RDLENGTH runs past the message, and one whose name overruns its RDATA. */
  mb m;
  uint8_t ip[4] = {1, 2, 3, 4};
  hub_answer(&m, "t1", "1", 5683, ip);
  m.b[m.n - 6] = 0x00;
  m.b[m.n - 5] = 0x05; /* the A record's RDLENGTH: 5 > the 4 bytes there */
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, SUB_COAP);
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_name(&m, "henge-x._coap._udp.local");
  mb_end(&m, at);
  m.b[at + 1] = (uint8_t)(m.b[at + 1] - 3); /* RDLENGTH 3 short: the name runs past it */
  m.n -= 3;
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  /* An A record of 3 bytes. */
  hub_answer(&m, "t1", "1", 5683, ip);
  m.b[m.n - 5] = 3;
  m.n -= 1;
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, 11), HENGE_E_DNS);
}

static void dnssd_oversized_names_and_messages(void) {
  char label64[65], name[400];
  memset(label64, 'a', 64);
  label64[64] = '\0';
  mb m;
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  /* A label of 64 bytes: its length byte reads as a reserved label type. */
  snprintf(name, sizeof name, "%s._coap._udp.local", label64);
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, SUB_COAP);
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
  mb_name(&m, name);
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_E_DNS);
  /* Names of 255 bytes are fine; 257 are not. 4 x 63 + 1: 4 labels of 62 and one of (255-1-4*63-1)=1. */
  char l62[63];
  memset(l62, 'b', 62);
  l62[62] = '\0';
  for (int over = 0; over <= 1; over++) {
    snprintf(name, sizeof name, "%s.%s.%s.%s.%s", l62, l62, l62, l62, over ? "ccc" : "c");
    mb_header(&m, 0x8400, 0, 1, 0, 0);
    mb_name(&m, SUB_COAP);
    at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
    mb_name(&m, name);
    mb_end(&m, at);
    HT_EQ_INT(m.n - at - 2, over ? 257 : 255);
    henge_dnssd_browse_init(&b, false);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), over ? HENGE_E_DNS : HENGE_OK);
    HT_EQ_INT(b.count, over ? 0 : 1);
    if (!over) HT_EQ_INT(b.hubs[0].instance_len, 255);
  }
  /* A message over HENGE_DNS_MAX_MESSAGE, and shorter than a header. */
  static uint8_t big[HENGE_DNS_MAX_MESSAGE + 1];
  HT_EQ_INT(henge_dnssd_on_message(&b, big, sizeof big), HENGE_E_LIMIT);
  HT_EQ_INT(henge_dnssd_on_message(&b, big, 11), HENGE_E_DNS);
  HT_EQ_INT(henge_dnssd_on_message(NULL, big, 12), HENGE_E_ARG);
  HT_EQ_INT(henge_dnssd_on_message(&b, NULL, 12), HENGE_E_ARG);
}

static void dnssd_version_other_than_1_is_not_used(void) {
  const char *versions[] = {"2", "0", "10", "", "1.0"};
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    mb m;
    hub_answer(&m, "v1hub", versions[i], 5683, ADDR1);
    henge_dnssd_browse b;
    henge_dnssd_browse_init(&b, false);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
    HT_EQ_INT(b.count, 1);
    HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_OTHER_VERSION);
    size_t idx;
    HT_EQ_INT(henge_dnssd_pick(&b, NULL, 0, &idx), HENGE_E_NOT_FOUND);
  }
  /* No v at all; v given twice (the first counts, RFC 6763 §6.4); a v too long to keep is cut for the log. */
  mb m;
  henge_dnssd_browse b;
  const char *cases[][3] = {{"id=a", "api=1", "x=1"}, {"v=2", "V=1", "id=a"}, {"v=1111111111111111111111", "id=a", "api=1"}};
  const henge_dnssd_verdict want[] = {HENGE_DNSSD_NO_VERSION, HENGE_DNSSD_OTHER_VERSION, HENGE_DNSSD_OTHER_VERSION};
  for (size_t i = 0; i < 3; i++) {
    henge_dnssd_browse_init(&b, false);
    mb_header(&m, 0x8400, 0, 2, 0, 0);
    mb_name(&m, SUB_COAP);
    size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 4500);
    mb_name(&m, "henge-a._coap._udp.local");
    mb_end(&m, at);
    mb_name(&m, "henge-a._coap._udp.local");
    at = mb_rr(&m, HENGE_DNS_TYPE_TXT, 1, 4500);
    mb_txt(&m, cases[i], 3);
    mb_end(&m, at);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
    HT_EQ_INT(verdict(&b, 0, NULL), want[i]);
  }
  HT_EQ_INT(b.hubs[0].v_len, 22);
  HT_EQ_INT(strlen(b.hubs[0].v), HENGE_DNSSD_TXT_V_MAX);
}

static void dnssd_pinned_hub_id(void) {
  mb m;
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  hub_answer(&m, "aaaa11112222", "1", 5683, ADDR1);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  hub_answer(&m, "bbbb33334444", "1", 5684, ADDR2);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, 2);
  size_t i = 99;
  /* No pin: the first to answer. Pinned to the second: the first is another hub. */
  HT_EQ_INT(henge_dnssd_pick(&b, NULL, 0, &i), HENGE_OK);
  HT_EQ_INT(i, 0);
  HT_EQ_INT(henge_dnssd_pick(&b, "bbbb33334444", 12, &i), HENGE_OK);
  HT_EQ_INT(i, 1);
  HT_EQ_INT(verdict(&b, 0, "bbbb33334444"), HENGE_DNSSD_OTHER_HUB);
  HT_EQ_INT(b.hubs[1].port, 5684);
  /* Pinned to a hub nobody advertises: nothing; a prefix of an id, or the id in another case, is not it. */
  HT_EQ_INT(henge_dnssd_pick(&b, "cccc55556666", 12, &i), HENGE_E_NOT_FOUND);
  HT_EQ_INT(henge_dnssd_pick(&b, "aaaa1111222", 11, &i), HENGE_E_NOT_FOUND);
  HT_EQ_INT(henge_dnssd_pick(&b, "AAAA11112222", 12, &i), HENGE_E_NOT_FOUND);
  HT_EQ_INT(verdict(&b, 1, "aaaa11112222"), HENGE_DNSSD_OTHER_HUB);
}

static void dnssd_bad_txt_and_srv(void) {
  struct {
    const char *txt[3];
    henge_dnssd_verdict want;
  } cases[] = {
      {{"v=1", "id=has space", "api=80"}, HENGE_DNSSD_BAD_ID},
      {{"v=1", "id=", "api=80"}, HENGE_DNSSD_BAD_ID},
      {{"v=1", "x=y", "api=80"}, HENGE_DNSSD_BAD_ID},
      {{"v=1", "id=a", "api=0"}, HENGE_DNSSD_BAD_API},
      {{"v=1", "id=a", "api=65536"}, HENGE_DNSSD_BAD_API},
      {{"v=1", "id=a", "api=80x"}, HENGE_DNSSD_BAD_API},
      {{"v=1", "id=a", "api"}, HENGE_DNSSD_BAD_API},
      {{"v=1", "id=a", "api=65535"}, HENGE_DNSSD_USABLE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mb m;
    hub_answer(&m, "a", "1", 5683, ADDR1);
    /* Rewrite the TXT: rebuild the message with this case's entries (same layout as hub_answer). */
    henge_dnssd_browse b;
    henge_dnssd_browse_init(&b, false);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
    mb_header(&m, 0x8400, 0, 1, 0, 0);
    mb_name(&m, "henge-a._coap._udp.local");
    size_t at = mb_rr(&m, HENGE_DNS_TYPE_TXT, 0x8001, 4500);
    mb_txt(&m, cases[i].txt, 3);
    mb_end(&m, at);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK); /* a newer TXT replaces the first */
    HT_EQ_INT(verdict(&b, 0, NULL), cases[i].want);
  }
  /* SRV port 0. */
  mb m;
  hub_answer(&m, "p0", "1", 0, ADDR1);
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(verdict(&b, 0, NULL), HENGE_DNSSD_BAD_PORT);
  HT_EQ_INT(henge_dnssd_verdict_of(NULL, NULL, 0, NULL), HENGE_E_ARG);
}

static void dnssd_goodbye_and_full_table(void) {
  mb m;
  henge_dnssd_browse b;
  henge_dnssd_browse_init(&b, false);
  char id[16];
  for (int i = 0; i < HENGE_DNSSD_MAX_HUBS + 2; i++) {
    snprintf(id, sizeof id, "hub%d", i);
    hub_answer(&m, id, "1", 5683, ADDR1);
    HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  }
  HT_EQ_INT(b.count, HENGE_DNSSD_MAX_HUBS);
  HT_EQ_INT(b.dropped, 2);
  /* The same answer again adds nothing. */
  hub_answer(&m, "hub0", "1", 5683, ADDR1);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, HENGE_DNSSD_MAX_HUBS);
  /* hub0 says goodbye (PTR TTL 0): gone; the next one is picked. */
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, SUB_COAP);
  size_t at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 1, 0);
  mb_name(&m, "henge-hub0._coap._udp.local");
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, HENGE_DNSSD_MAX_HUBS - 1);
  size_t i = 99;
  HT_EQ_INT(henge_dnssd_pick(&b, NULL, 0, &i), HENGE_OK);
  HT_EQ_INT(b.hubs[i].instance[10], '1'); /* [len]henge-hub1 */
  /* Class other than IN is not taken. */
  henge_dnssd_browse_init(&b, false);
  mb_header(&m, 0x8400, 0, 1, 0, 0);
  mb_name(&m, SUB_COAP);
  at = mb_rr(&m, HENGE_DNS_TYPE_PTR, 3, 4500);
  mb_name(&m, "henge-ch._coap._udp.local");
  mb_end(&m, at);
  HT_EQ_INT(henge_dnssd_on_message(&b, m.b, m.n), HENGE_OK);
  HT_EQ_INT(b.count, 0);
}

/* 20,000 random mutations of the real answer: a documented status each time, and the table within bounds. */
static void dnssd_random_mutations(void) {
  uint8_t base[1024], msg[1024];
  size_t n = ht_hex(CIAO_PTR_ANSWER, base, sizeof base);
  uint32_t x = 0x2545f491u;
  for (int round = 0; round < 20000; round++) {
    memcpy(msg, base, n);
    size_t len = n;
    int edits = 1 + (int)((x >> 3) % 4);
    for (int e = 0; e < edits; e++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      size_t at = x % len;
      if ((x >> 24) % 8 == 0) len = at + 1;
      else msg[at] = (uint8_t)(x >> 8);
    }
    henge_dnssd_browse b;
    henge_dnssd_browse_init(&b, (x & 1) != 0);
    henge_status st = henge_dnssd_on_message(&b, msg, len);
    HT_CHECK(st == HENGE_OK || st == HENGE_E_DNS || st == HENGE_E_NOT_FOUND);
    HT_CHECK(b.count <= HENGE_DNSSD_MAX_HUBS);
    if (st != HENGE_OK) HT_EQ_INT(b.count, 0);
    size_t idx;
    (void)henge_dnssd_pick(&b, NULL, 0, &idx);
    uint8_t q[HENGE_DNS_MAX_MESSAGE];
    size_t qn = 0;
    HT_EQ_INT(henge_dnssd_query(&b, 1, q, sizeof q, &qn), HENGE_OK);
  }
}

const ht_case dnssd_cases[] = {
    {"dnssd - reads the hub advertiser's real answer: PTR, SRV, TXT, A, AAAA", dnssd_reads_the_advertisers_real_answer},
    {"dnssd - the one-shot query's bytes; a query is not an answer", dnssd_query_bytes},
    {"dnssd - records spread over messages; follow-up questions ask what is missing", dnssd_records_across_messages_and_follow_up_questions},
    {"dnssd - compressed names", dnssd_compressed_names},
    {"dnssd - compression loops, long pointer chains, bad pointers and label types are refused", dnssd_compression_loops_and_pointer_chains},
    {"dnssd - a message cut at any byte, or a record overrunning, is refused whole", dnssd_truncated_at_every_byte},
    {"dnssd - labels over 63, names over 255 and messages over the limit are refused", dnssd_oversized_names_and_messages},
    {"dnssd - a hub whose TXT v is not 1 is not used", dnssd_version_other_than_1_is_not_used},
    {"dnssd - a pinned hub id: other hubs are not used", dnssd_pinned_hub_id},
    {"dnssd - TXT id and api, SRV port", dnssd_bad_txt_and_srv},
    {"dnssd - goodbyes, a full table, other classes", dnssd_goodbye_and_full_table},
    {"dnssd - 20,000 random mutations of a real answer", dnssd_random_mutations},
    {NULL, NULL},
};

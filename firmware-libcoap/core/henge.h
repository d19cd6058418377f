/*
 * henge.h: the portable firmware core of a henge device (C99, no allocation, no I/O).
 *
 * docs/protocol.md is the normative wire protocol; this header names its sections where a function
 * implements one. The core never touches a socket, a file or a clock: a port (ports/linux, an MCU SDK)
 * owns the CoAP transport (libcoap) and plugs the rest in through `henge_platform` and `henge_flash`.
 *
 * Every function returns a `henge_status`. Inputs are bounded by henge_config.h. Nothing here calls
 * malloc; every buffer is in a struct the caller provides.
 */
#ifndef HENGE_H
#define HENGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "henge_config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HENGE_PROTOCOL_VERSION 1
/* Bytes of a snapshot's hash (also the CoAP ETag) and of a hub's incarnation id. */
#define HENGE_HASH_BYTES 8
#define HENGE_INCARNATION_BYTES 8
/* The protocol's own limits (docs/protocol.md, "Limits"): a snapshot beyond them is invalid. */
#define HENGE_PROTOCOL_MAX_FIELDS 256
#define HENGE_PROTOCOL_MAX_TEXT 4096

typedef enum henge_status {
  HENGE_OK = 0,
  HENGE_E_ARG,         /* a NULL pointer or an argument out of range */
  HENGE_E_CBOR,        /* not well-formed CBOR: truncated, reserved values, bytes after the item */
  HENGE_E_SNAPSHOT,    /* well-formed CBOR that is not a snapshot as docs/protocol.md defines it */
  HENGE_E_PROTOCOL,    /* a snapshot of a protocol version other than 1 */
  HENGE_E_LIMIT,       /* a valid snapshot beyond this build's limits (henge_config.h) */
  HENGE_E_INTEGRITY,   /* the ETag is not the snapshot's hash */
  HENGE_E_SPACE,       /* an output buffer is too small */
  HENGE_E_FLASH,       /* the flash driver reported an error */
  HENGE_E_NOT_FOUND,   /* nothing there: no valid slot, no pending ack */
  HENGE_E_APPLY,       /* the platform could not apply a snapshot (the previous config is kept) */
  HENGE_E_REJECT,      /* the platform will not apply this snapshot (e.g. its output format cannot hold it) */
  HENGE_E_UNSUPPORTED, /* the platform does not offer this (e.g. no discovery) */
  HENGE_E_DNS          /* not a well-formed DNS message: truncated, a bad name or pointer, a record that overruns */
} henge_status;

/* A short constant name for a status ("HENGE_E_CBOR"); never NULL. */
const char *henge_status_name(henge_status status);

/* ------------------------------------------------------------------------------------------------ */
/* Snapshot (docs/protocol.md, "Snapshot")                                                          */

typedef enum henge_type {
  HENGE_TEXT = 0,
  HENGE_INT = 1,
  HENGE_FLOAT = 2,
  HENGE_BOOL = 3
} henge_type;

/*
 * One config field. `key` and a text value point into the bytes given to henge_snapshot_decode (or,
 * for chunked text, into the snapshot's arena): they are NOT NUL-terminated (a text value may hold
 * U+0000), and they live as long as those bytes and the snapshot struct do.
 */
typedef struct henge_field {
  const char *key;
  uint8_t key_len;
  uint8_t type; /* henge_type */
  uint16_t text_len;
  union {
    int64_t i;
    double f;
    bool b;
    const char *text;
  } v;
} henge_field;

typedef struct henge_snapshot {
  uint64_t version;
  uint8_t hash[HENGE_HASH_BYTES];
  uint8_t incarnation[HENGE_INCARNATION_BYTES];
  uint16_t count;
  henge_field fields[HENGE_MAX_FIELDS];
  uint16_t arena_used;
  char arena[HENGE_TEXT_ARENA_BYTES];
  /*
   * After a decode that failed with HENGE_E_LIMIT, the envelope (version, hash, incarnation) is still
   * filled in and `envelope_ok` is true, so the device can ack "rejected" for that version. Other
   * failures leave it false: without a version there is nothing to ack.
   */
  bool envelope_ok;
  /* What was wrong, for people (NULL when HENGE_NO_ERRMSG is defined, or on success). */
  const char *error;
} henge_snapshot;

/*
 * Decodes one snapshot (any valid CBOR encoding: the hub's deterministic one, and also non-preferred
 * lengths, indefinite-length maps and strings, any key order). Checks what the protocol requires:
 * a map with unsigned keys 0 (=1), 1 (unsigned), 2 (8 bytes), 3 (map), 4 (8 bytes), each once; values
 * keyed by text matching [A-Za-z_][A-Za-z0-9_-]{0,63}, each key once; values text (valid UTF-8,
 * <= 4,096 bytes), integers (int64), finite floats (half, single, double) or booleans; at most 256
 * fields. Unknown integer envelope keys are skipped (their values at most HENGE_MAX_SKIP_DEPTH deep).
 */
henge_status henge_snapshot_decode(const uint8_t *bytes, size_t len, henge_snapshot *out);

/* The field named `key` (len bytes), or HENGE_E_NOT_FOUND. */
henge_status henge_snapshot_find(const henge_snapshot *s, const char *key, size_t key_len, const henge_field **field);

/* ------------------------------------------------------------------------------------------------ */
/* Version and incarnation rules (docs/protocol.md, "Version and incarnation rules")                */

/* What identifies a snapshot for the rules and for acks. */
typedef struct henge_mark {
  uint64_t version;
  uint8_t hash[HENGE_HASH_BYTES];
  uint8_t incarnation[HENGE_INCARNATION_BYTES];
} henge_mark;

typedef enum henge_decision {
  HENGE_APPLY_FIRST = 0,           /* nothing applied yet */
  HENGE_APPLY_NEWER = 1,           /* same incarnation, greater version */
  HENGE_APPLY_NEW_INCARNATION = 2, /* the hub's store was rebuilt: any version applies */
  HENGE_IGNORE_SAME = 3,           /* the version applied already (a duplicate) */
  HENGE_IGNORE_OLDER = 4           /* an older version of the same incarnation (reordered) */
} henge_decision;

#define HENGE_DECISION_APPLIES(d) ((d) <= HENGE_APPLY_NEW_INCARNATION)

/* `applied` NULL: nothing applied yet. */
henge_status henge_decide(const henge_mark *applied, const henge_mark *incoming, henge_decision *decision);

/* A short name of a decision ("newer", "new-incarnation", ...), as the Node agent logs it. */
const char *henge_decision_name(henge_decision decision);

henge_status henge_mark_of(const henge_snapshot *s, henge_mark *mark);

/* ------------------------------------------------------------------------------------------------ */
/* Ack (docs/protocol.md, "Ack")                                                                    */

typedef enum henge_ack_status {
  HENGE_ACK_APPLIED = 0,
  HENGE_ACK_REJECTED = 1,
  HENGE_ACK_FAILED = 2,
  HENGE_ACK_REVERTED = 3
} henge_ack_status;

const char *henge_ack_status_name(henge_ack_status status);

typedef struct henge_ack {
  uint64_t version;
  uint8_t status; /* henge_ack_status */
  bool has_hash;
  bool has_incarnation;
  uint8_t hash[HENGE_HASH_BYTES];
  uint8_t incarnation[HENGE_INCARNATION_BYTES];
  /* UTF-8, message_len bytes; longer than HENGE_ACK_MESSAGE_MAX it is cut on a character and ends "...". */
  const char *message;
  size_t message_len;
} henge_ack;

/* The ack as a deterministic CBOR map {1: version, 2: status, 3?: message, 4?: hash, 5?: incarnation}. */
henge_status henge_ack_encode(const henge_ack *ack, uint8_t *buf, size_t cap, size_t *len);

/* Telemetry `{"_agent": name}` (docs/protocol.md, "Telemetry"); name at most 255 bytes. */
henge_status henge_telemetry_encode_agent(const char *name, size_t name_len, uint8_t *buf, size_t cap, size_t *len);

/* ------------------------------------------------------------------------------------------------ */
/* Timing: reconnect backoff with full jitter, keepalive                                            */

/* Exponential backoff with full jitter: each delay is uniform in [0, min(cap, base * 2^attempt)). */
typedef struct henge_backoff {
  uint32_t base_ms;
  uint32_t cap_ms;
  uint32_t attempts; /* failures since the last reset */
} henge_backoff;

henge_status henge_backoff_init(henge_backoff *b, uint32_t base_ms, uint32_t cap_ms);
/* The next delay from a uniform 32-bit random number; counts one failure. */
henge_status henge_backoff_next(henge_backoff *b, uint32_t random, uint32_t *delay_ms);
henge_status henge_backoff_reset(henge_backoff *b);

/*
 * When to re-register after a registration answered with Max-Age `max_age_s` (docs/protocol.md,
 * "Observe lifecycle" 6): 70-85 % of it (jittered by `random`), at least 1 s.
 */
henge_status henge_keepalive_ms(uint32_t max_age_s, uint32_t random, uint32_t *delay_ms);

/* ------------------------------------------------------------------------------------------------ */
/* Platform interface                                                                               */

typedef enum henge_log_level {
  HENGE_LOG_DEBUG = 0,
  HENGE_LOG_INFO = 1,
  HENGE_LOG_WARN = 2,
  HENGE_LOG_ERROR = 3
} henge_log_level;

/* What the core tells a port's log besides a message: the snapshot it was about, and why. */
typedef struct henge_log_fields {
  bool has_version;
  uint64_t version;
  henge_status status;
  const char *reason; /* a constant, or NULL */
} henge_log_fields;

typedef struct henge_platform {
  void *ctx;
  /*
   * Makes the snapshot the device's config, atomically: on Linux a temp file, fsync and rename; on an
   * MCU the A/B slots below (henge_slots_write) and then the hardware. `bytes` are the snapshot as
   * received. Return HENGE_OK, HENGE_E_REJECT (this device cannot hold it: acked "rejected") or
   * HENGE_E_APPLY (it failed, the previous config is kept: acked "failed"); `why` may point to a
   * message (it must stay valid until the ack is encoded).
   */
  henge_status (*apply)(void *ctx, const henge_snapshot *snapshot, const uint8_t *bytes, size_t len, const char **why);
  /* Milliseconds from any fixed point, never going back. */
  henge_status (*now_ms)(void *ctx, uint64_t *ms);
  /* A uniformly distributed 32-bit number (need not be cryptographic). */
  henge_status (*random_u32)(void *ctx, uint32_t *r);
  /* Optional (NULL: silent). */
  void (*log)(void *ctx, henge_log_level level, const char *msg, const henge_log_fields *fields);
  /*
   * Optional: finds a hub (DNS-SD, docs/protocol.md "Discovery"): writes its address (NUL-terminated)
   * and port. NULL or HENGE_E_UNSUPPORTED: the device needs a configured hub address.
   */
  henge_status (*discover)(void *ctx, char *host, size_t host_cap, uint16_t *port);
} henge_platform;

/* ------------------------------------------------------------------------------------------------ */
/* The device: the protocol's decisions between transport and platform                            */

typedef enum henge_outcome {
  HENGE_OUT_APPLIED = 0,     /* applied; an "applied" ack is pending */
  HENGE_OUT_REJECTED,        /* not applied; a "rejected" ack is pending */
  HENGE_OUT_FAILED,          /* not applied; a "failed" ack is pending */
  HENGE_OUT_CURRENT,         /* the applied snapshot again (or 2.03): an ack is pending only if the hub never confirmed it */
  HENGE_OUT_OLDER,           /* older than the applied one: nothing to do */
  HENGE_OUT_FAILED_BEFORE,   /* this very snapshot failed already: waiting for a newer one */
  HENGE_OUT_UNDECODABLE      /* not a snapshot at all: nothing to ack (the next registration fetches it again) */
} henge_outcome;

typedef struct henge_device {
  const henge_platform *platform;
  bool has_applied;
  bool applied_acked; /* the hub answered 2.04 to the "applied" ack of `applied` */
  henge_mark applied;
  bool has_failed;
  henge_mark failed; /* the last snapshot whose apply failed: not retried until another one comes */
  bool has_pending;
  henge_ack pending; /* the ack to POST (again, after the next registration, until answered) */
  char pending_message[HENGE_ACK_MESSAGE_MAX];
  henge_backoff backoff;
} henge_device;

henge_status henge_device_init(henge_device *dev, const henge_platform *platform, uint32_t backoff_cap_ms);

/* The snapshot applied before a restart (from the Linux state folder or an A/B slot). */
henge_status henge_device_restore(henge_device *dev, const henge_mark *applied, bool acked);

/*
 * A 2.05 response or notification: the snapshot's bytes (reassembled from Block2 by the transport)
 * and the ETag option (NULL if none). Decodes into `work`, checks the ETag, applies the version
 * rules, calls platform->apply when they say so, and leaves the ack to send in dev->pending
 * (henge_device_pending). Returns HENGE_OK when it handled the snapshot, whatever the outcome.
 */
henge_status henge_device_on_snapshot(henge_device *dev, const uint8_t *bytes, size_t len, const uint8_t *etag, size_t etag_len,
                                      henge_snapshot *work, henge_outcome *outcome);

/* A 2.03 Valid: the applied snapshot is current; an "applied" ack is made pending if never confirmed. */
henge_status henge_device_on_valid(henge_device *dev, henge_outcome *outcome);

/* The ack to POST now, or HENGE_E_NOT_FOUND. */
henge_status henge_device_pending(const henge_device *dev, const henge_ack **ack);

/*
 * Newest ack first (docs/protocol.md, "Ack"): whether the pending ack supersedes `in_flight` (a copy of
 * the ack as it was posted, its exchange not ended yet): *supersedes is true when an ack is pending and
 * it is another one (another version, outcome, snapshot hash or incarnation), i.e. a newer snapshot was
 * handled since. The port then abandons the older exchange, ignores its answer, and posts the pending ack
 * at once. False when nothing is pending or it is that very ack (it is on its way).
 */
henge_status henge_device_ack_supersedes(const henge_device *dev, const henge_ack *in_flight, bool *supersedes);

/*
 * The hub answered the POST of `sent` (a copy of the ack as it was posted) with code class.detail (2.04: recorded; 5.xx:
 * kept and sent again after the next registration; anything else: dropped, as the hub refused it).
 */
henge_status henge_device_on_ack_response(henge_device *dev, const henge_ack *sent, uint8_t code_class, uint8_t code_detail);

/* Reconnect timing through the platform's random source. */
henge_status henge_device_retry_delay(henge_device *dev, uint32_t *delay_ms);
henge_status henge_device_connected(henge_device *dev);
henge_status henge_device_keepalive_delay(henge_device *dev, uint32_t max_age_s, uint32_t *delay_ms);

/* Asks platform->discover for a hub; HENGE_E_UNSUPPORTED without one. */
henge_status henge_device_discover(henge_device *dev, char *host, size_t host_cap, uint16_t *port);

/* ------------------------------------------------------------------------------------------------ */
/* Hub discovery: the DNS side of a one-shot mDNS browse (RFC 6762 §5.1, DNS-SD RFC 6763;            */
/* docs/protocol.md, "Discovery"). The port owns the socket (multicast to 224.0.0.251:5353 from any  */
/* port, so responders answer by unicast, §6.7); the core writes the queries and reads the answers. */

#define HENGE_DNS_NAME_MAX 255 /* bytes of a name in wire form, uncompressed, with the root label */
#define HENGE_DNS_LABEL_MAX 63
#define HENGE_DNS_HEADER_BYTES 12
#define HENGE_DNS_TYPE_A 1
#define HENGE_DNS_TYPE_PTR 12
#define HENGE_DNS_TYPE_TXT 16
#define HENGE_DNS_TYPE_AAAA 28
#define HENGE_DNS_TYPE_SRV 33
/* Bytes of a TXT `v` value kept for the log (a longer one is still compared whole: it is not "1"). */
#define HENGE_DNSSD_TXT_V_MAX 15
/* A hub id fits one DNS label with the `henge-` prefix: at most 57 bytes (discovery/service.ts). */
#define HENGE_DNSSD_HUB_ID_MAX 63

/* Why a hub found over DNS-SD is not used (the Node agent's reasons, discovery/browse.ts). */
typedef enum henge_dnssd_verdict {
  HENGE_DNSSD_USABLE = 0,     /* SRV, TXT (v=1, id, api) and an address: this one will do */
  HENGE_DNSSD_INCOMPLETE,     /* no SRV, no TXT or no address (yet): see has_srv, has_txt, has_a/has_aaaa */
  HENGE_DNSSD_NO_VERSION,     /* TXT has no v */
  HENGE_DNSSD_OTHER_VERSION,  /* TXT v is not this protocol's version (1) */
  HENGE_DNSSD_BAD_ID,         /* TXT id missing, empty, too long, or holding a space or a control character */
  HENGE_DNSSD_BAD_API,        /* TXT api is not a port (1-65535) */
  HENGE_DNSSD_OTHER_HUB,      /* TXT id is not the pinned hub's */
  HENGE_DNSSD_BAD_PORT        /* SRV port 0 */
} henge_dnssd_verdict;

/* One service instance seen under the browsed name, and what its records said. */
typedef struct henge_dnssd_hub {
  uint8_t instance[HENGE_DNS_NAME_MAX]; /* its full name in wire form; instance[0] is the length of the first label */
  uint8_t instance_len;
  uint8_t target[HENGE_DNS_NAME_MAX];   /* SRV target, wire form */
  uint8_t target_len;
  bool has_srv, has_txt, has_a, has_aaaa;
  uint16_t port;                        /* SRV port (CoAP) */
  uint8_t ipv4[4];                      /* the first A record of the target */
  uint8_t ipv6[16];                     /* the first AAAA record of the target */
  /* TXT (RFC 6763 §6.4: keys case-insensitive, the first occurrence counts) */
  bool has_v, has_id, has_api;
  uint8_t v_len;                        /* the real length; v holds at most HENGE_DNSSD_TXT_V_MAX bytes of it */
  char v[HENGE_DNSSD_TXT_V_MAX + 1];
  bool id_ok;                           /* 1-63 bytes, no space or control character */
  uint8_t id_len;
  char id[HENGE_DNSSD_HUB_ID_MAX + 1];  /* NUL-terminated when id_ok */
  uint16_t api_port;                    /* 0 when api is not a port */
} henge_dnssd_hub;

typedef struct henge_dnssd_browse {
  uint8_t service[HENGE_DNS_NAME_MAX]; /* _henge._sub._coap(s)._udp.local, wire form */
  uint8_t service_len;
  uint8_t count;
  henge_dnssd_hub hubs[HENGE_DNSSD_MAX_HUBS]; /* in the order their PTR records arrived */
  uint16_t dropped;                           /* instances beyond HENGE_DNSSD_MAX_HUBS, not kept */
} henge_dnssd_browse;

/* Starts a browse for `_henge._sub._coaps._udp.local` (secure) or `_henge._sub._coap._udp.local`. */
henge_status henge_dnssd_browse_init(henge_dnssd_browse *b, bool secure);

/*
 * A query (ID `id`): PTR for the browsed name, then SRV and TXT for each instance still missing them and
 * A for each SRV target without an address, as many as fit in `cap` (at least the PTR question).
 */
henge_status henge_dnssd_query(const henge_dnssd_browse *b, uint16_t id, uint8_t *buf, size_t cap, size_t *len);

/*
 * Takes the records of one DNS response (any section) that concern the browse: PTR of the browsed name
 * (TTL 0, a goodbye, forgets the instance), SRV and TXT of a known instance, A and AAAA of a known SRV
 * target; class IN, names compared without case. The whole message is checked first and nothing is
 * taken from one that is not well-formed (HENGE_E_DNS: truncated, a label over 63 bytes, a name over
 * 255, a compression pointer that does not point back before the name, more than HENGE_DNS_MAX_POINTERS
 * of them, a record overrunning its RDATA). HENGE_E_LIMIT: over HENGE_DNS_MAX_MESSAGE bytes.
 * HENGE_E_NOT_FOUND: a query, not a response (nothing taken).
 */
henge_status henge_dnssd_on_message(henge_dnssd_browse *b, const uint8_t *msg, size_t len);

/* What to do with a hub: `pinned` (pinned_len bytes) is the hub id this device keeps, or NULL. */
henge_status henge_dnssd_verdict_of(const henge_dnssd_hub *hub, const char *pinned, size_t pinned_len, henge_dnssd_verdict *verdict);

/* The first usable hub, in arrival order, into *index; HENGE_E_NOT_FOUND when none is (yet). */
henge_status henge_dnssd_pick(const henge_dnssd_browse *b, const char *pinned, size_t pinned_len, size_t *index);

/* ------------------------------------------------------------------------------------------------ */
/* A/B slots on flash: the last applied snapshot survives power loss at any moment                  */

/*
 * Two equal slots, each a multiple of the erase size. A slot is a 16-byte header (magic, sequence
 * number, length, CRC-32 of sequence, length and data; little-endian) and the data. A write goes to
 * the slot not holding the newest record: erase, data, then the header last, then a read-back check.
 * Power lost at any point leaves the previous record valid; the newest valid record wins on open.
 */
typedef struct henge_flash {
  void *ctx;
  uint32_t slot_addr[2];
  uint32_t slot_size;
  henge_status (*read)(void *ctx, uint32_t addr, uint8_t *buf, size_t len);
  henge_status (*write)(void *ctx, uint32_t addr, const uint8_t *buf, size_t len);
  henge_status (*erase)(void *ctx, uint32_t addr, size_t len);
} henge_flash;

#define HENGE_SLOT_HEADER_BYTES 16
#define HENGE_SLOT_MAGIC 0x31474e48u /* "HNG1" little-endian */

typedef struct henge_slots {
  const henge_flash *flash;
  int8_t current; /* slot of the newest valid record, -1 when none */
  uint32_t seq;   /* its sequence number */
  uint32_t len;   /* its data length */
} henge_slots;

/* Reads both headers and checks both CRCs; picks the newest valid record. */
henge_status henge_slots_open(henge_slots *s, const henge_flash *flash);
/* The newest record's data; HENGE_E_NOT_FOUND when there is none. */
henge_status henge_slots_read(const henge_slots *s, uint8_t *buf, size_t cap, size_t *len);
/* Stores `data` as the newest record (into the other slot). */
henge_status henge_slots_write(henge_slots *s, const uint8_t *data, size_t len);

/* CRC-32 (IEEE 802.3, reflected, as zlib): `crc` 0 to start, the previous result to continue. */
henge_status henge_crc32(uint32_t crc, const uint8_t *data, size_t len, uint32_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HENGE_H */

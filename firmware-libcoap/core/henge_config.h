/*
 * henge_config.h: every size limit of the firmware core, in one place.
 *
 * Each limit can be set on the compiler's command line (-DHENGE_MAX_FIELDS=256) or in a port's own
 * header included first. The defaults fit a small MCU (Cortex-M0+ class); the Linux port raises them
 * to the protocol's own limits (docs/protocol.md, "Snapshot" / "Limits").
 *
 * The core allocates nothing: every buffer below lives in a struct the caller owns (a static, or a
 * stack frame), so these numbers are the whole memory story of the core.
 */
#ifndef HENGE_CONFIG_H
#define HENGE_CONFIG_H

/* Fields a snapshot may carry (the protocol allows 256). More: the snapshot is acked "rejected". */
#ifndef HENGE_MAX_FIELDS
#define HENGE_MAX_FIELDS 32
#endif

/* Bytes of a key. The protocol's key syntax allows 64 ([A-Za-z_][A-Za-z0-9_-]{0,63}); this is that. */
#ifndef HENGE_MAX_KEY_LEN
#define HENGE_MAX_KEY_LEN 64
#endif

/* Bytes of one text value (the protocol allows 4,096). */
#ifndef HENGE_MAX_TEXT_LEN
#define HENGE_MAX_TEXT_LEN 256
#endif

/* Bytes of a whole snapshot as received (the CBOR item). Ports size their receive buffer with it. */
#ifndef HENGE_MAX_SNAPSHOT_BYTES
#define HENGE_MAX_SNAPSHOT_BYTES 4096
#endif

/*
 * Bytes for text that arrives as indefinite-length (chunked) strings, which cannot be pointed at in
 * the input and are copied here. The hub never sends them (deterministic encoding), but a device must
 * accept any valid encoding; a snapshot whose chunked text does not fit is acked "rejected".
 */
#ifndef HENGE_TEXT_ARENA_BYTES
#define HENGE_TEXT_ARENA_BYTES 256
#endif

/* Nesting the decoder follows when it skips an unknown envelope key's value (no recursion). */
#ifndef HENGE_MAX_SKIP_DEPTH
#define HENGE_MAX_SKIP_DEPTH 8
#endif

/* Bytes of an ack's message (the protocol's limit is 256). */
#ifndef HENGE_ACK_MESSAGE_MAX
#define HENGE_ACK_MESSAGE_MAX 256
#endif

/* Largest encoded ack: map head, version, status, message head + text, hash, incarnation. */
#define HENGE_ACK_MAX_BYTES (1 + 1 + 9 + 1 + 1 + 1 + 3 + HENGE_ACK_MESSAGE_MAX + 1 + 9 + 1 + 9)

/* First ceiling of the reconnect backoff, ms (doubles up to the caller's cap). */
#ifndef HENGE_BACKOFF_BASE_MS
#define HENGE_BACKOFF_BASE_MS 500u
#endif

/* Bytes read from flash at a time while checking a slot's CRC (a stack buffer). */
#ifndef HENGE_FLASH_CHUNK
#define HENGE_FLASH_CHUNK 64
#endif

/* Bytes of an mDNS message the discovery parser reads (RFC 6762 §17 allows up to 9,000; one
   Ethernet frame carries 1,500 less the IP and UDP headers). A longer one is HENGE_E_LIMIT. */
#ifndef HENGE_DNS_MAX_MESSAGE
#define HENGE_DNS_MAX_MESSAGE 1500
#endif

/* Compression pointers followed while reading one name (each must also point before the last). */
#ifndef HENGE_DNS_MAX_POINTERS
#define HENGE_DNS_MAX_POINTERS 16
#endif

/* Hub instances one discovery keeps (each about 600 bytes; more are counted and dropped). */
#ifndef HENGE_DNSSD_MAX_HUBS
#define HENGE_DNSSD_MAX_HUBS 4
#endif

/*
 * HENGE_NO_ERRMSG: define it to compile the core's error strings out (they then read as NULL);
 * statuses stay. Release builds on small parts save the flash the messages take.
 */

#endif /* HENGE_CONFIG_H */

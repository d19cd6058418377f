/*
 * lwippools.h: lwIP's custom memory pools (MEMP_USE_CUSTOM_POOLS), here libcoap's, sized for one client
 * session. lwIP includes this file by name; the pool definitions are libcoap's own
 * (examples/lwip/config/lwippools.h, LIBCOAP_LWIPPOOLS set by CMakeLists.txt), with these sizes.
 *
 * On lwIP libcoap allocates from fixed-size pools: a Block2 body is reassembled in one COAP_STRING
 * (coap_block.c, coap_realloc_type), so that pool's element must hold the largest snapshot the device
 * takes (HENGE_MAX_SNAPSHOT_BYTES, 4,096 by default) with its header.
 *
 * No include guard, on purpose: lwIP includes its pool list (memp_std.h, and so this file) once per
 * X-macro expansion (the enum of pools, then their descriptors); a guard would leave the second empty.
 * The defines below repeat identically each time, which C allows.
 */

#define MEMP_NUM_COAPCONTEXT 1
#define MEMP_NUM_COAPSESSION 1
#define MEMP_NUM_COAPPACKET 1
/* Requests in flight: the registration, an ack, the telemetry, a block request, one spare. */
#define MEMP_NUM_COAPNODE 6
#define MEMP_NUM_COAPPDU 6
#define MEMP_NUM_COAPOPTLIST 4
/* Strings: the Block2 body (up to 4 KB + header) and small ones (tokens, addresses); all the same size. */
#define MEMP_NUM_COAPSTRING 4
#define MEMP_LEN_COAPSTRING (4096 + 64)
/* PDU buffers: one 1,024-byte block plus options and the DTLS record overhead. */
#define MEMP_NUM_COAPPDUBUF 4
#define MEMP_LEN_COAPPDUBUF 1280
#define MEMP_NUM_COAPLGXMIT 1
#define MEMP_NUM_COAPLGCRCV 1

#include LIBCOAP_LWIPPOOLS

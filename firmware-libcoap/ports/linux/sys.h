/*
 * sys.h: what henge-fw asks of the system besides files and sockets: clocks, randomness, and the
 * version strings it reports (--version, telemetry, the "agent started" line).
 */
#ifndef FW_SYS_H
#define FW_SYS_H

#include <stdint.h>

#define FW_NAME "henge-fw/0.1.0"

/* Milliseconds on the monotonic clock. */
uint64_t fw_now_ms(void);
/* Milliseconds since the epoch (state.json's appliedAt). */
long long fw_wall_ms(void);
/* A uniformly distributed 32-bit number: getrandom, else rand() mixed with the clock. */
uint32_t fw_random32(void);
/* libcoap's version number ("4.3.1"; coap_package_version() says "libcoap 4.3.1"). */
const char *fw_libcoap_version(void);

#endif

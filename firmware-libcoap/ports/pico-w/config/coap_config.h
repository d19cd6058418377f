/*
 * coap_config.h: libcoap's build configuration for the henge firmware on the Pico W (lwIP raw API,
 * client only, UDP, IPv4). libcoap includes it by name before its own headers.
 */
#ifndef COAP_CONFIG_H_
#define COAP_CONFIG_H_

#include <lwip/opt.h>
#include <lwip/debug.h>
#include <lwip/def.h> /* ntohs, htons */

#define WITH_LWIP 1
#define COAP_IPV4_SUPPORT 1
#define COAP_IPV6_SUPPORT 0
/* COAP_CLIENT_SUPPORT comes from CMakeLists.txt; COAP_SERVER_SUPPORT stays undefined (0). */
#define COAP_DISABLE_TCP 1
#define COAP_CONSTRAINED_STACK 1
#define COAP_ASYNC_SUPPORT 0
#define COAP_WITH_OBSERVE_PERSIST 0
#define COAP_WS_SUPPORT 0
#define COAP_Q_BLOCK_SUPPORT 0
#define COAP_OSCORE_SUPPORT 0
#define COAP_PROXY_SUPPORT 0
#define COAP_THREAD_SAFE 0
#define COAP_THREAD_RECURSIVE_CHECK 0
/* Warnings and worse reach the log (henge_mcu_client.c sets the level); debug text stays out of flash. */
#define COAP_MAX_LOGGING_LEVEL 4

#define PACKAGE_NAME "libcoap"
#define PACKAGE_VERSION "4.3.5"
#define PACKAGE_STRING "libcoap 4.3.5"
#define PACKAGE_TARNAME "libcoap"
#define PACKAGE_URL "https://libcoap.net/"
#define PACKAGE_BUGREPORT "libcoap-developers@lists.sourceforge.net"

#ifndef assert
#define assert(x) LWIP_ASSERT("CoAP assert failed", x)
#endif

#define HAVE_STRNLEN 1
#define HAVE_LIMITS_H 1
#define HAVE_SNPRINTF 1
#define HAVE_ERRNO_H 1
#define HAVE_INTTYPES_H 1

#endif /* COAP_CONFIG_H_ */

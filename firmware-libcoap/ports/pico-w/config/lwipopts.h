/*
 * lwipopts.h: lwIP for the henge firmware on the Pico W (pico_cyw43_arch_lwip_poll: NO_SYS, one thread,
 * the main loop polls the Wi-Fi driver). Only what the firmware uses: IPv4, UDP, DHCP, DNS; libcoap's
 * memory pools (MEMP_USE_CUSTOM_POOLS, lwippools.h).
 */
#ifndef HENGE_LWIPOPTS_H
#define HENGE_LWIPOPTS_H

#define NO_SYS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
/* libcoap takes the "core lock" around lwIP calls; with NO_SYS there is nothing to lock. */
#define LOCK_TCPIP_CORE()
#define UNLOCK_TCPIP_CORE()

#define MEM_LIBC_MALLOC 0
#define MEM_ALIGNMENT 4
/* The heap lwIP allocates pbufs for sending from (a CoAP request, a DTLS record: ~1.2 KB each). */
#define MEM_SIZE 16000
#define PBUF_POOL_SIZE 24
#define PBUF_POOL_BUFSIZE LWIP_MEM_ALIGN_SIZE(1536)
#define MEMP_NUM_UDP_PCB 6
/* lwIP's own timeouts, plus libcoap's one (coap_io_process) and the DNS and DHCP ones. */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 4)
#define MEMP_USE_CUSTOM_POOLS 1

#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 1
#define LWIP_UDP 1
/* The Wi-Fi glue (cyw43_arch) needs TCP's types compiled; henge never opens a TCP connection. */
#define LWIP_TCP 1
#define TCP_MSS 1460
#define TCP_WND (4 * TCP_MSS)
#define TCP_SND_BUF (4 * TCP_MSS)
#define MEMP_NUM_TCP_SEG 16
#define LWIP_DHCP 1
#define DHCP_DOES_ARP_CHECK 0
#define LWIP_DHCP_DOES_ACD_CHECK 0
#define LWIP_DNS 1
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_HOSTNAME 1
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#define LWIP_CHKSUM_ALGORITHM 3
/* newlib has struct timeval. */
#define LWIP_TIMEVAL_PRIVATE 0

#define LWIP_STATS 0
#define LWIP_STATS_DISPLAY 0
#define MEMP_STATS 0

#ifndef NDEBUG
#define LWIP_DEBUG 1
#endif

#endif /* HENGE_LWIPOPTS_H */

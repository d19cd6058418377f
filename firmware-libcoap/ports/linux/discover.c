/*
 * discover.c: a one-shot mDNS querier for the hub (discover.h).
 *
 * fw_discover_hub returns a henge_status (it is the core's platform hook). Helpers that cannot fail
 * return nothing: send_query (a send that fails is one query less; the window still runs), log_ignored
 * and reason (they format and log).
 */
#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device_io.h"
#include "fw_log.h"
#include "sys.h"

#define MDNS_GROUP "224.0.0.251"
#define MDNS_PORT 5353
/* The full query again at 1 s and 2 s (RFC 6762 §5.2's first intervals); follow-ups in between. */
#define REQUERY_MS 1000
#define MAX_SENDS 12

/* The browsed name, for people. */
static const char *service_text(bool secure) { return secure ? "_henge._sub._coaps._udp.local" : "_henge._sub._coap._udp.local"; }

/* The query to every IPv4 interface that can multicast (the default route's alone would miss a hub on another link). */
static void send_query(fw_ctx *fw, int fd, uint16_t id) {
  uint8_t q[HENGE_DNS_MAX_MESSAGE];
  size_t n = 0;
  henge_status hs = henge_dnssd_query(&fw->browse, id, q, sizeof q, &n);
  if (hs != HENGE_OK) {
    (void)fw_device_core_failed("henge_dnssd_query", hs);
    return;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(MDNS_PORT);
  inet_pton(AF_INET, MDNS_GROUP, &to.sin_addr);
  int sent = 0;
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) == 0) {
    for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
      if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) continue;
      if (!(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_MULTICAST) || (i->ifa_flags & IFF_LOOPBACK)) continue;
      struct in_addr via = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
      if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &via, sizeof via) != 0) continue;
      if (sendto(fd, q, n, 0, (const struct sockaddr *)&to, sizeof to) == (ssize_t)n) sent++;
    }
    freeifaddrs(ifs);
  }
  if (sent == 0) (void)sendto(fd, q, n, 0, (const struct sockaddr *)&to, sizeof to); /* the kernel's choice */
}

/* The first label of an instance name (`henge-<hub id>`), NUL-terminated. */
static void instance_label(const henge_dnssd_hub *h, char *out, size_t cap) {
  size_t n = h->instance_len > 0 ? h->instance[0] : 0;
  if (n >= cap) n = cap - 1;
  memcpy(out, h->instance + 1, n);
  out[n] = '\0';
}

static bool ipv6_link_local(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }

/* Why a hub is set aside, as the Node agent's discovery says it (discovery/browse.ts, service.ts). */
static void reason(const fw_ctx *fw, const henge_dnssd_hub *h, henge_dnssd_verdict v, char *out, size_t cap) {
  switch (v) {
    case HENGE_DNSSD_USABLE: snprintf(out, cap, "only a link-local IPv6 address"); break;
    case HENGE_DNSSD_INCOMPLETE: snprintf(out, cap, !h->has_txt ? "no TXT record" : !h->has_srv ? "no SRV record" : "no address"); break;
    case HENGE_DNSSD_NO_VERSION: snprintf(out, cap, "TXT has no v"); break;
    case HENGE_DNSSD_OTHER_VERSION: snprintf(out, cap, "TXT v=%s%s, this side speaks v=%d", h->v, h->v_len > HENGE_DNSSD_TXT_V_MAX ? "..." : "", HENGE_PROTOCOL_VERSION); break;
    case HENGE_DNSSD_BAD_ID: snprintf(out, cap, "TXT id missing or not a hub id"); break;
    case HENGE_DNSSD_BAD_API: snprintf(out, cap, "TXT api is not a port"); break;
    case HENGE_DNSSD_OTHER_HUB: snprintf(out, cap, "hub id %s, pinned %s", h->id, fw->state.hub_id); break;
    case HENGE_DNSSD_BAD_PORT: snprintf(out, cap, "SRV port %u", h->port); break;
  }
}

static void log_ignored(const fw_ctx *fw, const henge_dnssd_hub *h, henge_dnssd_verdict v) {
  char inst[HENGE_DNS_LABEL_MAX + 1], why[200];
  instance_label(h, inst, sizeof inst);
  reason(fw, h, v, why, sizeof why);
  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "instance", inst);
  fw_line_str(&l, "reason", why);
  fw_line_str(&l, "service", service_text(fw->has_key));
  fw_line_emit(&l, FW_INFO, "ignored");
}

/* A usable hub whose only address is link-local IPv6 cannot be reached from an IPv4 socket's answer. */
static bool reachable(const henge_dnssd_hub *h) { return h->has_a || (h->has_aaaa && !ipv6_link_local(h->ipv6)); }

henge_status fw_discover_hub(void *ctx, char *host, size_t host_cap, uint16_t *port) {
  fw_ctx *fw = ctx;
  bool secure = fw->has_key;
  const char *pinned = fw->state.has_hub_id ? fw->state.hub_id : NULL;
  size_t pinned_len = pinned != NULL ? strlen(pinned) : 0;
  henge_status hs = henge_dnssd_browse_init(&fw->browse, secure);
  if (hs != HENGE_OK) {
    (void)fw_device_core_failed("henge_dnssd_browse_init", hs);
    snprintf(fw->discover_err, sizeof fw->discover_err, "mDNS: %s", henge_status_name(hs));
    return hs;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(fw->discover_err, sizeof fw->discover_err, "mDNS: no UDP socket: %s", strerror(errno));
    return HENGE_E_UNSUPPORTED;
  }
  /* RFC 6762 §11: mDNS packets carry IP TTL 255; our own queries loop back to a responder on this host. */
  int ttl = 255, loop = 1;
  (void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  (void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);

  uint16_t id = (uint16_t)fw_random32();
  uint64_t start = fw_now_ms(), deadline = start + FW_DISCOVERY_WINDOW_MS, next_full = start;
  int sends = 0;
  bool found = false, interrupted = false;
  size_t pick = 0;
  uint8_t buf[HENGE_DNS_MAX_MESSAGE + 1]; /* one byte more: a longer datagram is seen as such (HENGE_E_LIMIT) */
  while (!found) {
    uint64_t now = fw_now_ms();
    if (now >= deadline) break;
    if (now >= next_full && sends < MAX_SENDS) {
      send_query(fw, fd, id);
      sends++;
      next_full = now + REQUERY_MS;
    }
    uint64_t until = next_full < deadline ? next_full : deadline;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(until > now ? until - now : 0));
    if (r < 0 && errno == EINTR) {
      interrupted = true;
      break;
    }
    if (r <= 0) continue;
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
    if (got < 0) continue;
    hs = henge_dnssd_on_message(&fw->browse, buf, (size_t)got);
    if (hs != HENGE_OK && hs != HENGE_E_NOT_FOUND && fw_log_enabled(FW_DEBUG)) {
      char addr[INET_ADDRSTRLEN] = "?";
      inet_ntop(AF_INET, &from.sin_addr, addr, sizeof addr);
      fw_line l;
      fw_line_start(&l);
      fw_line_str(&l, "from", addr);
      fw_line_uint(&l, "bytes", (uint64_t)got);
      fw_line_str(&l, "why", henge_status_name(hs));
      fw_line_emit(&l, FW_DEBUG, "mDNS message ignored");
    }
    if (hs != HENGE_OK) continue;
    for (size_t i = 0; i < fw->browse.count && !found; i++) {
      henge_dnssd_verdict v;
      if (henge_dnssd_verdict_of(&fw->browse.hubs[i], pinned, pinned_len, &v) == HENGE_OK && v == HENGE_DNSSD_USABLE && reachable(&fw->browse.hubs[i])) {
        found = true;
        pick = i;
      }
    }
    /* Ask at once for what the answers left out (SRV, TXT, an address), within the send budget. */
    if (!found && sends < MAX_SENDS) {
      bool missing = false;
      for (size_t i = 0; i < fw->browse.count; i++) {
        const henge_dnssd_hub *h = &fw->browse.hubs[i];
        if (!h->has_srv || !h->has_txt || (!h->has_a && !h->has_aaaa)) missing = true;
      }
      if (missing) {
        send_query(fw, fd, id);
        sends++;
      }
    }
  }
  close(fd);

  /* Every instance not taken, once per search, with why. */
  for (size_t i = 0; i < fw->browse.count; i++) {
    if (found && i == pick) continue;
    henge_dnssd_verdict v;
    if (henge_dnssd_verdict_of(&fw->browse.hubs[i], pinned, pinned_len, &v) != HENGE_OK) continue;
    if (v == HENGE_DNSSD_INCOMPLETE && found) continue; /* still arriving when another hub answered */
    if (v == HENGE_DNSSD_USABLE && reachable(&fw->browse.hubs[i])) continue;
    log_ignored(fw, &fw->browse.hubs[i], v);
  }

  if (!found) {
    if (interrupted) snprintf(fw->discover_err, sizeof fw->discover_err, "mDNS search interrupted by a signal");
    else if (pinned != NULL)
      snprintf(fw->discover_err, sizeof fw->discover_err, "hub %s did not answer on %s within %d ms", pinned, service_text(secure), FW_DISCOVERY_WINDOW_MS);
    else snprintf(fw->discover_err, sizeof fw->discover_err, "no hub answered on %s within %d ms", service_text(secure), FW_DISCOVERY_WINDOW_MS);
    return HENGE_E_NOT_FOUND;
  }

  const henge_dnssd_hub *h = &fw->browse.hubs[pick];
  char addr[INET6_ADDRSTRLEN];
  if (h->has_a) inet_ntop(AF_INET, h->ipv4, addr, sizeof addr);
  else inet_ntop(AF_INET6, h->ipv6, addr, sizeof addr);
  if (strlen(addr) >= host_cap) return HENGE_E_SPACE;
  snprintf(host, host_cap, "%s", addr);
  *port = h->port;
  char inst[HENGE_DNS_LABEL_MAX + 1];
  instance_label(h, inst, sizeof inst);
  snprintf(fw->hub_source, sizeof fw->hub_source, "mdns %s", inst);

  fw_line l;
  fw_line_start(&l);
  fw_line_str(&l, "instance", inst);
  fw_line_str(&l, "hubId", h->id);
  fw_line_str(&l, "address", addr);
  fw_line_uint(&l, "port", h->port);
  fw_line_uint(&l, "apiPort", h->api_port);
  fw_line_uint(&l, "ms", fw_now_ms() - start);
  fw_line_emit(&l, FW_INFO, "hub found over mDNS");

  if (!fw->state.has_hub_id) {
    /* The first hub this device uses is the one it keeps (the Node agent's checkPin). */
    snprintf(fw->state.hub_id, sizeof fw->state.hub_id, "%s", h->id);
    fw->state.has_hub_id = true;
    (void)fw_device_save_state(fw); /* logged; the pin holds for this run either way */
    fw_line_start(&l);
    fw_line_str(&l, "hubId", h->id);
    fw_line_emit(&l, FW_INFO, "pinned hub");
  }
  return HENGE_OK;
}

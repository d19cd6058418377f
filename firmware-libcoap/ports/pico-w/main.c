/*
 * henge firmware for the Raspberry Pi Pico W: Wi-Fi (CYW43439, pico_cyw43_arch_lwip_poll), lwIP's raw
 * API, libcoap, the portable core (../../core) and the shared client (henge_mcu_client.c). The onboard
 * LED (on the CYW43's GPIO 0, CYW43_WL_GPIO_LED_PIN) follows the config fields `led` and `blink_ms`;
 * the applied snapshot lives in A/B slots at the end of flash (pico_slots.c), so the device comes back
 * with its last config, and its LED, before the hub answers.
 *
 * One thread: the main loop runs the client (which lets libcoap wait for input through the lwIP input
 * wait handler below), the LED's blinking and the Wi-Fi link's upkeep. stdio goes to USB CDC.
 *
 * NOT COMPILED IN THIS REPOSITORY'S CI (no pico-sdk there); written against pico-sdk 2.x's documented
 * API. The client it runs is compiled and tested on Linux (host/).
 */
#include <stdio.h>
#include <string.h>

#include "hardware/flash.h"
#include "lwip/dns.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "pico/cyw43_arch.h"
#include "pico/rand.h"
#include "pico/stdlib.h"

#include <coap3/coap.h>

#include "henge.h"
#include "henge_mcu_client.h"
#include "pico_slots.h"

#ifndef HENGE_HUB_PORT
#define HENGE_HUB_PORT 0
#endif
#define WIFI_CONNECT_TIMEOUT_MS 30000u
#define WIFI_RETRY_MS 5000u
#define DNS_TIMEOUT_MS 10000u

static henge_mcu client;
static henge_flash flash;
static henge_slots slots;
static uint8_t stored[HENGE_MAX_SNAPSHOT_BYTES];

/* ---------------------------------------------------------------------------------------------- */
/* time, log                                                                                       */

static uint64_t now_ms(void) { return time_us_64() / 1000u; }

static void log_line(void *ctx, henge_mcu_log_level level, const char *msg) {
  (void)ctx;
  static const char *const names[] = {"debug", "info", "warn", "error"};
#ifdef NDEBUG
  if (level == HENGE_MCU_DEBUG) return;
#endif
  printf("[%10llu] %-5s %s\n", (unsigned long long)now_ms(), names[level], msg);
}

#ifdef COAP_WITH_LIBMBEDTLS
/* mbedTLS's clock for DTLS retransmission timers (mbedtls_config.h: MBEDTLS_PLATFORM_MS_TIME_ALT). */
#include "mbedtls/platform_time.h"
mbedtls_ms_time_t mbedtls_ms_time(void) { return (mbedtls_ms_time_t)now_ms(); }
#endif

/* ---------------------------------------------------------------------------------------------- */
/* the LED: blinking is the loop's job (the CYW43 GPIO may only be driven from this thread)       */

static henge_led led_want = {HENGE_LED_OFF, 0};
static bool led_lit;
static uint64_t led_next_toggle_ms;

static void led_drive(bool on) {
  led_lit = on;
  cyw43_arch_gpio_put(CYW43_WL_GPIO_LED_PIN, on);
}

static void set_led(void *ctx, const henge_led *led) {
  (void)ctx;
  led_want = *led;
  if (led->mode == HENGE_LED_BLINK) {
    led_drive(true);
    led_next_toggle_ms = now_ms() + led->blink_ms;
  } else {
    led_drive(led->mode == HENGE_LED_ON);
  }
}

/* Toggles a blinking LED when due; returns the ms until the next toggle (UINT32_MAX: none). */
static uint32_t led_tick(void) {
  if (led_want.mode != HENGE_LED_BLINK) return UINT32_MAX;
  uint64_t now = now_ms();
  if (now >= led_next_toggle_ms) {
    led_drive(!led_lit);
    led_next_toggle_ms = now + led_want.blink_ms;
  }
  uint64_t left = led_next_toggle_ms - now_ms();
  return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

/* ---------------------------------------------------------------------------------------------- */
/* the port                                                                                        */

typedef struct dns_wait {
  volatile bool done;
  volatile bool found;
  ip_addr_t ip;
} dns_wait;

static void dns_found(const char *name, const ip_addr_t *ip, void *arg) {
  (void)name;
  dns_wait *w = arg;
  if (ip != NULL) {
    w->ip = *ip;
    w->found = true;
  }
  w->done = true;
}

/* A literal address, or a DNS lookup through lwIP, polling the Wi-Fi driver while it runs. */
static henge_status p_resolve(void *ctx, const char *host, uint16_t port, coap_address_t *out) {
  (void)ctx;
  ip_addr_t ip;
  if (!ipaddr_aton(host, &ip)) {
    dns_wait w = {false, false, {0}};
    err_t e = dns_gethostbyname(host, &ip, dns_found, &w);
    if (e == ERR_INPROGRESS) {
      absolute_time_t until = make_timeout_time_ms(DNS_TIMEOUT_MS);
      while (!w.done && !time_reached(until)) {
        cyw43_arch_poll();
        cyw43_arch_wait_for_work_until(make_timeout_time_ms(20));
      }
      if (!w.found) return HENGE_E_NOT_FOUND;
      ip = w.ip;
    } else if (e != ERR_OK) {
      return HENGE_E_NOT_FOUND;
    }
  }
  coap_address_init(out);
  out->addr = ip;
  coap_address_set_port(out, port);
  return HENGE_OK;
}

static uint64_t p_now(void *ctx) {
  (void)ctx;
  return now_ms();
}

static uint32_t p_random(void *ctx) {
  (void)ctx;
  return get_rand_32();
}

static henge_status p_store(void *ctx, const uint8_t *bytes, size_t len) {
  (void)ctx;
  henge_status st = henge_slots_write(&slots, bytes, len);
  if (st == HENGE_E_SPACE) return HENGE_E_REJECT;
  return st;
}

/*
 * libcoap's wait for input on lwIP (coap_io_process): poll the Wi-Fi driver, which runs lwIP and so
 * libcoap's receive callback, then sleep until there is work or `ms` pass. Returns 0 (libcoap reads
 * the result as "timed out", and handles whatever arrived meanwhile the same way).
 */
static int input_wait(void *arg, uint32_t ms) {
  (void)arg;
  cyw43_arch_poll();
  uint32_t led = led_tick();
  cyw43_arch_wait_for_work_until(make_timeout_time_ms(ms < led ? ms : led));
  cyw43_arch_poll();
  return 0;
}

static void context_created(void *ctx, coap_context_t *coap) {
  (void)ctx;
  coap_lwip_set_input_wait_handler(coap, input_wait, NULL);
}

static const henge_mcu_port port = {NULL, p_resolve, p_now, p_random, p_store, set_led, log_line, context_created};

/* ---------------------------------------------------------------------------------------------- */
/* Wi-Fi                                                                                           */

static bool wifi_up(void) { return cyw43_tcpip_link_status(&cyw43_state, CYW43_ITF_STA) == CYW43_LINK_UP; }

static void wifi_connect(void) {
  char line[96];
  snprintf(line, sizeof line, "joining Wi-Fi %s", WIFI_SSID);
  log_line(NULL, HENGE_MCU_INFO, line);
  int r = cyw43_arch_wifi_connect_timeout_ms(WIFI_SSID, WIFI_PASSWORD, WIFI_PASSWORD[0] ? CYW43_AUTH_WPA2_AES_PSK : CYW43_AUTH_OPEN,
                                              WIFI_CONNECT_TIMEOUT_MS);
  if (r != 0) {
    snprintf(line, sizeof line, "Wi-Fi: no connection (%d); trying again in %u s", r, WIFI_RETRY_MS / 1000u);
    log_line(NULL, HENGE_MCU_WARN, line);
    return;
  }
  snprintf(line, sizeof line, "Wi-Fi up: %s", ip4addr_ntoa(netif_ip4_addr(netif_list)));
  log_line(NULL, HENGE_MCU_INFO, line);
}

/* ---------------------------------------------------------------------------------------------- */

int main(void) {
  stdio_init_all();
  if (cyw43_arch_init() != 0) {
    printf("henge: the Wi-Fi chip did not start\n");
    for (;;) sleep_ms(1000);
  }
  cyw43_arch_enable_sta_mode();

  /* The last applied config, before anything else: the LED shows it while the network comes up. */
  size_t stored_len = 0;
  henge_status st = henge_pico_slots_open(&flash, &slots);
  if (st == HENGE_E_SPACE) {
    printf("henge: the firmware image reaches into the config slots; build a smaller image\n");
    for (;;) sleep_ms(1000);
  }
  if (st != HENGE_OK || henge_slots_read(&slots, stored, sizeof stored, &stored_len) != HENGE_OK) stored_len = 0;

  const henge_mcu_config cfg = {HENGE_DEVICE_ID, HENGE_HUB, (uint16_t)HENGE_HUB_PORT, HENGE_DEVICE_KEY[0] ? HENGE_DEVICE_KEY : NULL, 60000u,
                                "henge-fw-pico-w/0.1.0"};
  st = henge_mcu_start(&client, &cfg, &port, stored_len > 0 ? stored : NULL, stored_len);
  if (st != HENGE_OK) {
    printf("henge: cannot start the client: %s\n", henge_status_name(st));
    for (;;) sleep_ms(1000);
  }

  uint64_t next_wifi_try = 0;
  for (;;) {
    if (!wifi_up()) {
      /* No network: keep the applied config (and the LED), rejoin every few seconds. */
      if (now_ms() >= next_wifi_try) {
        wifi_connect();
        next_wifi_try = now_ms() + WIFI_RETRY_MS;
        if (wifi_up()) henge_mcu_refresh(&client);
      }
      cyw43_arch_poll();
      uint32_t led = led_tick();
      cyw43_arch_wait_for_work_until(make_timeout_time_ms(led < 100 ? led : 100));
      continue;
    }
    uint32_t idle = 0;
    uint32_t led = led_tick();
    henge_mcu_step(&client, led < HENGE_MCU_SLICE_MS ? led : HENGE_MCU_SLICE_MS, &idle);
    if (idle > 0) {
      /* Waiting to reconnect: keep lwIP, DHCP and the LED going meanwhile. */
      cyw43_arch_poll();
      led = led_tick();
      cyw43_arch_wait_for_work_until(make_timeout_time_ms(idle < led ? idle : led));
    }
  }
}

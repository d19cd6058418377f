/*
 * henge firmware for the ESP32 (ESP-IDF >= 5.1): Wi-Fi station, libcoap from espressif/coap (sockets
 * over lwIP, DTLS-PSK through mbedTLS), the portable core (../../../core) and the shared client
 * (../../pico-w/henge_mcu_client.c). A GPIO LED (menuconfig "henge": HENGE_LED_GPIO) follows the
 * config fields `led` and `blink_ms`; the applied snapshot lives in A/B slots in the "henge" data
 * partition (esp_slots.c), so the device comes back with its last config, and its LED, at boot.
 *
 * One FreeRTOS task runs the client; an esp_timer blinks the LED.
 *
 * NOT COMPILED IN THIS REPOSITORY'S CI (no ESP-IDF there); written against ESP-IDF 5.x's documented
 * API. The client it runs is compiled and tested on Linux (ports/pico-w/host/).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "driver/gpio.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "nvs_flash.h"

#include "coap3/coap.h"

#include "esp_slots.h"
#include "henge.h"
#include "henge_mcu_client.h"

static const char *TAG = "henge";

#define WIFI_UP_BIT BIT0
#define HENGE_TASK_STACK 8192
#define HENGE_TASK_PRIORITY 5

static EventGroupHandle_t wifi_events;
static henge_mcu client;
static henge_flash flash;
static henge_slots slots;
static uint8_t stored[HENGE_MAX_SNAPSHOT_BYTES];

/* ---------------------------------------------------------------------------------------------- */
/* the LED                                                                                         */

#ifdef CONFIG_HENGE_LED_ACTIVE_LOW
#define LED_INVERT 1
#else
#define LED_INVERT 0 /* a Kconfig bool left at n is not defined at all */
#endif

static esp_timer_handle_t blink_timer;
static bool led_lit;

static void led_drive(bool on) {
  led_lit = on;
  gpio_set_level((gpio_num_t)CONFIG_HENGE_LED_GPIO, (uint32_t)((on ? 1 : 0) ^ LED_INVERT));
}

static void blink(void *arg) {
  (void)arg;
  led_drive(!led_lit);
}

static void led_init(void) {
  gpio_reset_pin((gpio_num_t)CONFIG_HENGE_LED_GPIO);
  gpio_set_direction((gpio_num_t)CONFIG_HENGE_LED_GPIO, GPIO_MODE_OUTPUT);
  const esp_timer_create_args_t args = {.callback = blink, .name = "henge-led"};
  ESP_ERROR_CHECK(esp_timer_create(&args, &blink_timer));
  led_drive(false);
}

static void set_led(void *ctx, const henge_led *led) {
  (void)ctx;
  if (esp_timer_is_active(blink_timer)) esp_timer_stop(blink_timer);
  if (led->mode == HENGE_LED_BLINK) {
    led_drive(true);
    esp_timer_start_periodic(blink_timer, (uint64_t)led->blink_ms * 1000u);
  } else {
    led_drive(led->mode == HENGE_LED_ON);
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* the port                                                                                        */

static henge_status p_resolve(void *ctx, const char *host, uint16_t port, coap_address_t *out) {
  (void)ctx;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  char p[8];
  snprintf(p, sizeof p, "%u", (unsigned)port);
  if (getaddrinfo(host, p, &hints, &res) != 0 || res == NULL) return HENGE_E_NOT_FOUND;
  coap_address_init(out);
  out->size = (socklen_t)res->ai_addrlen;
  memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return HENGE_OK;
}

static uint64_t p_now(void *ctx) {
  (void)ctx;
  return (uint64_t)esp_timer_get_time() / 1000u;
}

static uint32_t p_random(void *ctx) {
  (void)ctx;
  return esp_random();
}

static henge_status p_store(void *ctx, const uint8_t *bytes, size_t len) {
  (void)ctx;
  henge_status st = henge_slots_write(&slots, bytes, len);
  if (st == HENGE_E_SPACE) return HENGE_E_REJECT;
  return st;
}

static void p_log(void *ctx, henge_mcu_log_level level, const char *msg) {
  (void)ctx;
  switch (level) {
    case HENGE_MCU_DEBUG: ESP_LOGD(TAG, "%s", msg); break;
    case HENGE_MCU_INFO: ESP_LOGI(TAG, "%s", msg); break;
    case HENGE_MCU_WARN: ESP_LOGW(TAG, "%s", msg); break;
    default: ESP_LOGE(TAG, "%s", msg); break;
  }
}

static const henge_mcu_port port = {NULL, p_resolve, p_now, p_random, p_store, set_led, p_log, NULL};

/* ---------------------------------------------------------------------------------------------- */
/* Wi-Fi: a station that rejoins whenever it loses the network                                    */

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  (void)arg;
  if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
    esp_wifi_connect();
  } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
    xEventGroupClearBits(wifi_events, WIFI_UP_BIT);
    ESP_LOGW(TAG, "Wi-Fi lost; rejoining (the applied config stays)");
    esp_wifi_connect();
  } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
    const ip_event_got_ip_t *e = data;
    ESP_LOGI(TAG, "Wi-Fi up: " IPSTR, IP2STR(&e->ip_info.ip));
    xEventGroupSetBits(wifi_events, WIFI_UP_BIT);
  }
}

static void wifi_start(void) {
  wifi_events = xEventGroupCreate();
  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  esp_netif_create_default_wifi_sta();
  wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
  ESP_ERROR_CHECK(esp_wifi_init(&init));
  ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, NULL, NULL));
  ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi_event, NULL, NULL));
  wifi_config_t cfg = {0};
  strncpy((char *)cfg.sta.ssid, CONFIG_HENGE_WIFI_SSID, sizeof cfg.sta.ssid);
  strncpy((char *)cfg.sta.password, CONFIG_HENGE_WIFI_PASSWORD, sizeof cfg.sta.password);
  cfg.sta.threshold.authmode = CONFIG_HENGE_WIFI_PASSWORD[0] ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;
  ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
  ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &cfg));
  ESP_ERROR_CHECK(esp_wifi_start());
}

/* ---------------------------------------------------------------------------------------------- */

static void henge_task(void *arg) {
  (void)arg;
  bool was_up = false;
  for (;;) {
    bool up = (xEventGroupGetBits(wifi_events) & WIFI_UP_BIT) != 0;
    if (!up) {
      /* No network: keep the applied config (and the LED) and wait for it. */
      xEventGroupWaitBits(wifi_events, WIFI_UP_BIT, pdFALSE, pdTRUE, pdMS_TO_TICKS(1000));
      was_up = false;
      continue;
    }
    if (!was_up) {
      henge_mcu_refresh(&client); /* a new address, perhaps: register now */
      was_up = true;
    }
    uint32_t idle = 0;
    henge_mcu_step(&client, HENGE_MCU_SLICE_MS, &idle);
    if (idle > 0) vTaskDelay(pdMS_TO_TICKS(idle) > 0 ? pdMS_TO_TICKS(idle) : 1);
  }
}

void app_main(void) {
  esp_err_t err = nvs_flash_init(); /* Wi-Fi keeps its calibration in NVS */
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    ESP_ERROR_CHECK(nvs_flash_erase());
    err = nvs_flash_init();
  }
  ESP_ERROR_CHECK(err);
  led_init();

  /* The last applied config first: the LED shows it while Wi-Fi comes up. */
  size_t stored_len = 0;
  henge_status st = henge_esp_slots_open(&flash, &slots);
  if (st == HENGE_E_NOT_FOUND) ESP_LOGE(TAG, "no \"henge\" data partition (subtype 0x40): flash with partitions.csv; configs will not survive a restart");
  if (st != HENGE_OK || henge_slots_read(&slots, stored, sizeof stored, &stored_len) != HENGE_OK) stored_len = 0;

  const henge_mcu_config cfg = {CONFIG_HENGE_DEVICE_ID, CONFIG_HENGE_HUB, (uint16_t)CONFIG_HENGE_HUB_PORT,
                                CONFIG_HENGE_DEVICE_KEY[0] ? CONFIG_HENGE_DEVICE_KEY : NULL, 60000u, "henge-fw-esp32/0.1.0"};
  st = henge_mcu_start(&client, &cfg, &port, stored_len > 0 ? stored : NULL, stored_len);
  if (st != HENGE_OK) {
    ESP_LOGE(TAG, "cannot start the client: %s (menuconfig: henge)", henge_status_name(st));
    return;
  }
  wifi_start();
  xTaskCreate(henge_task, "henge", HENGE_TASK_STACK, NULL, HENGE_TASK_PRIORITY, NULL);
}

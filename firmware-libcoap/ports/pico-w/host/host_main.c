/*
 * henge-mcu-host: the microcontroller client (../henge_mcu_client.c) on Linux, against Debian's
 * libcoap3-dev, with the parts a board would bring replaced by files: the A/B slots live in a flash
 * image file (NOR semantics: erase to 0xff, programming clears bits), the LED is a log line. It runs
 * the very code the Pico W and ESP32 ports run against a real hub (mcu-client.test.ts); what it cannot
 * show is the SDK glue (Wi-Fi, lwIP, the board's flash and LED drivers).
 *
 *   henge-mcu-host --id <device> --hub <host:port> --flash <image> [--key-file <path>] [--backoff-max <s>]
 *
 * Log: JSON lines on stderr ({"level":30,"msg":"..."}; the LED: {"level":30,"msg":"led","led":"on"}).
 * SIGINT/SIGTERM end it (exit 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "henge_mcu_client.h"

#define SLOT_BYTES 8192u /* two sectors of 4 KB each, as on the boards */
#define SECTOR 4096u

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* log                                                                                             */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void emit(int level, const char *msg, const char *key, const char *value) {
  fprintf(stderr, "{\"level\":%d,\"msg\":", level);
  json_str(stderr, msg);
  if (key != NULL) {
    fprintf(stderr, ",\"%s\":", key);
    json_str(stderr, value);
  }
  fputs("}\n", stderr);
  fflush(stderr);
}

/* ---------------------------------------------------------------------------------------------- */
/* the flash image                                                                                 */

typedef struct image {
  int fd;
} image;

static henge_status f_read(void *ctx, uint32_t addr, uint8_t *buf, size_t len) {
  image *im = ctx;
  if (addr + len > 2 * SLOT_BYTES) return HENGE_E_FLASH;
  return pread(im->fd, buf, len, addr) == (ssize_t)len ? HENGE_OK : HENGE_E_FLASH;
}

static henge_status f_write(void *ctx, uint32_t addr, const uint8_t *buf, size_t len) {
  image *im = ctx;
  if (addr + len > 2 * SLOT_BYTES) return HENGE_E_FLASH;
  uint8_t old[512];
  for (size_t at = 0; at < len;) {
    size_t n = len - at < sizeof old ? len - at : sizeof old;
    if (pread(im->fd, old, n, addr + at) != (ssize_t)n) return HENGE_E_FLASH;
    for (size_t i = 0; i < n; i++) old[i] &= buf[at + i]; /* NOR: programming clears bits only */
    if (pwrite(im->fd, old, n, addr + at) != (ssize_t)n) return HENGE_E_FLASH;
    at += n;
  }
  return fsync(im->fd) == 0 ? HENGE_OK : HENGE_E_FLASH;
}

static henge_status f_erase(void *ctx, uint32_t addr, size_t len) {
  image *im = ctx;
  if (addr % SECTOR != 0 || len % SECTOR != 0 || addr + len > 2 * SLOT_BYTES) return HENGE_E_FLASH;
  uint8_t ff[SECTOR];
  memset(ff, 0xff, sizeof ff);
  for (size_t at = 0; at < len; at += SECTOR)
    if (pwrite(im->fd, ff, SECTOR, addr + at) != (ssize_t)SECTOR) return HENGE_E_FLASH;
  return HENGE_OK;
}

static int open_image(const char *path, image *im) {
  im->fd = open(path, O_RDWR | O_CREAT, 0600);
  if (im->fd < 0) return -1;
  off_t size = lseek(im->fd, 0, SEEK_END);
  if (size < (off_t)(2 * SLOT_BYTES)) {
    /* A new image: erased flash. */
    uint8_t ff[SECTOR];
    memset(ff, 0xff, sizeof ff);
    for (uint32_t at = 0; at < 2 * SLOT_BYTES; at += SECTOR)
      if (pwrite(im->fd, ff, SECTOR, at) != (ssize_t)SECTOR) return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* the port                                                                                        */

typedef struct host {
  henge_slots slots;
  henge_flash flash;
  image im;
} host;

static henge_status h_resolve(void *ctx, const char *name, uint16_t port, coap_address_t *out) {
  (void)ctx;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  char p[8];
  snprintf(p, sizeof p, "%u", (unsigned)port);
  if (getaddrinfo(name, p, &hints, &res) != 0 || res == NULL) return HENGE_E_NOT_FOUND;
  coap_address_init(out);
  out->size = (socklen_t)res->ai_addrlen;
  memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return HENGE_OK;
}

static uint64_t h_now(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t h_random(void *ctx) {
  (void)ctx;
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand();
  return r;
}

static henge_status h_store(void *ctx, const uint8_t *bytes, size_t len) {
  host *h = ctx;
  henge_status st = henge_slots_write(&h->slots, bytes, len);
  if (st == HENGE_E_SPACE) return HENGE_E_REJECT;
  return st == HENGE_OK ? HENGE_OK : HENGE_E_APPLY;
}

static void h_led(void *ctx, const henge_led *led) {
  (void)ctx;
  char state[32];
  if (led->mode == HENGE_LED_BLINK) snprintf(state, sizeof state, "blink %u", (unsigned)led->blink_ms);
  else snprintf(state, sizeof state, "%s", led->mode == HENGE_LED_ON ? "on" : "off");
  emit(30, "led", "led", state);
}

static void h_log(void *ctx, henge_mcu_log_level level, const char *msg) {
  (void)ctx;
  static const int levels[] = {20, 30, 40, 50};
  emit(levels[level], msg, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: henge-mcu-host --id <device> --hub <host:port> --flash <image> [--key-file <path>] [--backoff-max <s>]\n");
  exit(2);
}

static host the_host;
static henge_mcu the_client;
static uint8_t restored[HENGE_MAX_SNAPSHOT_BYTES];

int main(int argc, char **argv) {
  const char *id = NULL, *hub = NULL, *flash = NULL, *key_file = NULL;
  double backoff_s = 60;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--id") == 0) id = argv[++i];
    else if (strcmp(argv[i], "--hub") == 0) hub = argv[++i];
    else if (strcmp(argv[i], "--flash") == 0) flash = argv[++i];
    else if (strcmp(argv[i], "--key-file") == 0) key_file = argv[++i];
    else if (strcmp(argv[i], "--backoff-max") == 0) backoff_s = atof(argv[++i]);
    else usage();
  }
  if (id == NULL || hub == NULL || flash == NULL || backoff_s < 0.1) usage();
  char host_name[256];
  const char *colon = strrchr(hub, ':');
  if (colon == NULL || (size_t)(colon - hub) >= sizeof host_name) usage();
  memcpy(host_name, hub, (size_t)(colon - hub));
  host_name[colon - hub] = '\0';
  uint16_t port = (uint16_t)atoi(colon + 1);

  static char key[128];
  if (key_file != NULL) {
    FILE *f = fopen(key_file, "r");
    if (f == NULL || fgets(key, sizeof key, f) == NULL) {
      fprintf(stderr, "henge-mcu-host: cannot read %s\n", key_file);
      return 2;
    }
    fclose(f);
    key[strcspn(key, "\r\n")] = '\0';
  }

  host *h = &the_host;
  if (open_image(flash, &h->im) != 0) {
    fprintf(stderr, "henge-mcu-host: cannot open %s: %s\n", flash, strerror(errno));
    return 1;
  }
  h->flash = (henge_flash){&h->im, {0, SLOT_BYTES}, SLOT_BYTES, f_read, f_write, f_erase};
  if (henge_slots_open(&h->slots, &h->flash) != HENGE_OK) {
    fprintf(stderr, "henge-mcu-host: cannot read the flash image\n");
    return 1;
  }
  size_t restored_len = 0;
  if (henge_slots_read(&h->slots, restored, sizeof restored, &restored_len) != HENGE_OK) restored_len = 0;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  static const henge_mcu_port port_fns = {&the_host, h_resolve, h_now, h_random, h_store, h_led, h_log, NULL};
  henge_mcu_config cfg = {id, host_name, port, key_file != NULL ? key : NULL, (uint32_t)(backoff_s * 1000), "henge-mcu-host/0.1.0"};
  henge_status st = henge_mcu_start(&the_client, &cfg, &port_fns, restored_len > 0 ? restored : NULL, restored_len);
  if (st != HENGE_OK) {
    fprintf(stderr, "henge-mcu-host: cannot start: %s\n", henge_status_name(st));
    return 1;
  }
  emit(30, "started", "hub", hub);
  while (!stop_requested) {
    uint32_t idle = 0;
    henge_mcu_step(&the_client, 250, &idle);
    if (idle > 0) {
      struct timespec ts = {(time_t)(idle / 1000), (long)(idle % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  henge_mcu_stop(&the_client);
  close(h->im.fd);
  memset(key, 0, sizeof key);
  emit(30, "stopped", NULL, NULL);
  return 0;
}

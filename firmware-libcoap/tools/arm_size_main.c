/*
 * A stand-in firmware image for the Cortex-M0+ size check: it calls every public entry point of the
 * core once, so that --gc-sections keeps exactly what a real port would link. Never run.
 */
#include "henge.h"

static henge_snapshot snap;
static henge_device dev;
static henge_slots slots;
static uint8_t buf[HENGE_ACK_MAX_BYTES];

static henge_status apply(void *ctx, const henge_snapshot *s, const uint8_t *b, size_t n, const char **why) {
  (void)ctx;
  (void)s;
  (void)why;
  return henge_slots_write(&slots, b, n);
}

static henge_status fread_(void *ctx, uint32_t a, uint8_t *b, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; i++) b[i] = *(volatile uint8_t *)(a + i);
  return HENGE_OK;
}
static henge_status fwrite_(void *ctx, uint32_t a, const uint8_t *b, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; i++) *(volatile uint8_t *)(a + i) = b[i];
  return HENGE_OK;
}
static henge_status ferase_(void *ctx, uint32_t a, size_t n) {
  (void)ctx;
  (void)a;
  (void)n;
  return HENGE_OK;
}

static const henge_platform platform = {0, apply, 0, 0, 0, 0};
static const henge_flash flash = {0, {0x10000, 0x11000}, 0x1000, fread_, fwrite_, ferase_};

int main(void) {
  volatile uint32_t sink = 0;
  size_t n = 0;
  henge_outcome o;
  const henge_ack *a;
  uint32_t d;
  henge_slots_open(&slots, &flash);
  henge_device_init(&dev, &platform, 60000);
  henge_device_on_snapshot(&dev, buf, sizeof buf, buf, 8, &snap, &o);
  henge_device_on_valid(&dev, &o);
  if (henge_device_pending(&dev, &a) == HENGE_OK) {
    henge_ack_encode(a, buf, sizeof buf, &n);
    henge_device_on_ack_response(&dev, a, 2, 4);
  }
  henge_device_retry_delay(&dev, &d);
  henge_device_keepalive_delay(&dev, 60, &d);
  henge_device_connected(&dev);
  henge_telemetry_encode_agent("fw", 2, buf, sizeof buf, &n);
  henge_slots_read(&slots, buf, sizeof buf, &n);
  sink += (uint32_t)n + d + o;
  return (int)sink;
}

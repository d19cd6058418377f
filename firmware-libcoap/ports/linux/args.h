/*
 * args.h: henge-fw's command line: the options, --help and --version, the paths they name (made
 * absolute), the --out format, and the hub address.
 */
#ifndef FW_ARGS_H
#define FW_ARGS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "fw_status.h"
#include "render.h"

#define FW_DEFAULT_COAP_PORT 5683
#define FW_DEFAULT_COAPS_PORT 5684

typedef struct fw_config {
  /* The options as given (pointers into argv); NULL when absent. */
  const char *id;
  const char *hub;
  const char *out;
  const char *state;
  const char *key_file;
  const char *led;
  const char *format_name;
  const char *exec; /* --exec: the hook's shell command, or NULL */
  double backoff_max_s;
  double exec_timeout_s; /* --exec-timeout (default 60) */
  int log_level;
  /* Resolved by fw_args_parse. */
  fw_format format;
  char out_path[PATH_MAX];
  char state_dir[PATH_MAX];
  char state_file[PATH_MAX + 16];
  char led_path[PATH_MAX]; /* set with --led only */
  /* Resolved by fw_args_hub. */
  char host[256];
  uint16_t port;
} fw_config;

/*
 * Parses the options, then makes --out, --state and --led absolute and picks the --out format.
 * FW_OK; FW_OK with *done set when --help or --version printed their text (exit 0); FW_E_USAGE with
 * the message on stderr (exit 2).
 */
fw_status fw_args_parse(int argc, char **argv, fw_config *cfg, bool *done);

/*
 * --hub (host, host:port, [IPv6], [IPv6]:port, or a bare IPv6 address, as agent/hub-locator.ts
 * parseHubAddress) into cfg->host and cfg->port, default_port when it names none. FW_OK, or FW_E_USAGE
 * with the message on stderr.
 */
fw_status fw_args_hub(fw_config *cfg, uint16_t default_port);

#endif

/*
 * args.c: the command line (args.h).
 *
 * Every function that can fail returns an fw_status (FW_E_USAGE, the message written to stderr, as
 * "henge-fw: <what> (henge-fw --help)"). Two cannot fail and return nothing: usage() (printing the help
 * text) and valid_device_id() (a pure check).
 */
#include "args.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fw_log.h"
#include "sys.h"

static void usage(FILE *to) {
  fprintf(to,
          "Usage: henge-fw --id <device> --out <file> [--hub <host[:port]>] [options]\n"
          "\n"
          "The henge device firmware for Linux (libcoap %s): observes this device's config on the hub\n"
          "(CoAP Observe, Block2), writes it to a file atomically, acks each version, re-registers\n"
          "before Max-Age runs out, and reconnects with backoff when the hub goes away.\n"
          "\n"
          "Options:\n"
          "  --id <device>          device id, as added with `henge device add` (required)\n"
          "  --hub <host[:port]>    hub address: host, host:port, [IPv6]:port (port 5684 with a key, else\n"
          "                         5683); without it the hub is found over mDNS (DNS-SD:\n"
          "                         _henge._sub._coaps._udp.local with a key, else _coap._udp; TXT v=1)\n"
          "                         and pinned: the hub id is kept in the state folder and other hubs\n"
          "                         are ignored (logged \"ignored\" with the instance and why)\n"
          "  --out <file>           config file to write (atomically) (required)\n"
          "  --format <json|env>    file format (default: from the extension of --out, else json); env\n"
          "                         writes KEY='value' lines; yaml is not written by henge-fw yet\n"
          "  --state <dir>          state folder: last applied snapshot, pinned hub, lock (default\n"
          "                         ./.henge/agent-<id>);\n"
          "                         the same files as `henge agent`, which can take it over\n"
          "  --key-file <path>      the device key henge device add printed (or $HENGE_DEVICE_KEY, or\n"
          "                         <state>/key): talk coaps (DTLS-PSK, identity = device id); with no key\n"
          "                         at all, plain CoAP to a hub run with --insecure\n"
          "  --backoff-max <s>      longest wait between attempts to reach the hub (default 60)\n"
          "  --led <file>           an observable LED: the file holds \"on\", \"off\" or \"blink <ms>\",\n"
          "                         following the config fields `led` (boolean) and `blink_ms` (integer)\n"
          "  --exec <cmd>           run with /bin/sh -c after each apply (in its own process group, stdin\n"
          "                         /dev/null), with HENGE_CONFIG_FILE, HENGE_CONFIG_VERSION, HENGE_DEVICE\n"
          "                         set; a non-zero exit, a signal or --exec-timeout restores the previous\n"
          "                         file (or removes it if there was none) and acks \"failed\" with the\n"
          "                         reason and the end of its stderr. It is done when the shell exits\n"
          "                         (`mydaemon &` may run on). Meanwhile henge-fw keeps the observation,\n"
          "                         holds the ack, and applies the newest snapshot that came in after it\n"
          "  --exec-timeout <s>     a --exec running longer fails; its process group is killed (default 60)\n"
          "  --log-level <level>    fatal, error, warn, info, debug, trace or silent (JSON lines on stderr;\n"
          "                         default info)\n"
          "  --help                 this text\n"
          "  --version              the firmware and libcoap versions\n"
          "\n"
          "Not in henge-fw yet (the Node agent has them): yaml output, enroll.\n"
          "Signals: SIGINT/SIGTERM deregister and exit 0; SIGHUP re-registers at once.\n"
          "Exit codes: 0 ok, 1 failure, 2 usage, 7 state folder in use.\n",
          fw_libcoap_version());
}

/* Says what is wrong with the command line; always FW_E_USAGE. */
static fw_status usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "henge-fw: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (henge-fw --help)\n");
  return FW_E_USAGE;
}

static bool valid_device_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 63) return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
    if (!ok) return false;
  }
  return true;
}

fw_status fw_args_hub(fw_config *cfg, uint16_t default_port) {
  const char *text = cfg->hub;
  const char *port_text = NULL;
  char host[256];
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || (size_t)(close - text - 1) >= sizeof host) return usage_error("--hub %s: give host[:port]", text);
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    if (close[1] == ':') port_text = close + 2;
    else if (close[1] != '\0') return usage_error("--hub %s: give [IPv6]:port", text);
  } else {
    const char *colon = strchr(text, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
      snprintf(host, sizeof host, "%s", text); /* a bare IPv6 address */
    } else {
      size_t n = colon ? (size_t)(colon - text) : strlen(text);
      if (n >= sizeof host) return usage_error("--hub %s: the host is too long", text);
      memcpy(host, text, n);
      host[n] = '\0';
      if (colon) port_text = colon + 1;
    }
  }
  if (host[0] == '\0' || strpbrk(host, " \t/") != NULL) return usage_error("--hub %s: give host[:port]", text);
  unsigned long port = default_port;
  if (port_text != NULL) {
    char *end;
    port = strtoul(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || port < 1 || port > 65535) return usage_error("--hub %s: port must be 1..65535", text);
  }
  snprintf(cfg->host, sizeof cfg->host, "%s", host);
  cfg->port = (uint16_t)port;
  return FW_OK;
}

/*
 * An absolute path without ".", ".." or repeated and trailing slashes, in place, as Node's path.resolve
 * leaves it (lexically: symbolic links are not followed). The Node agent hands --out so resolved to its
 * hook (HENGE_CONFIG_FILE) and logs it; henge-fw does the same.
 */
static void normalize(char *path) {
  size_t o = 0;
  const char *p = path;
  while (*p != '\0') {
    while (*p == '/') p++;
    const char *seg = p;
    while (*p != '\0' && *p != '/') p++;
    size_t n = (size_t)(p - seg);
    if (n == 0 || (n == 1 && seg[0] == '.')) continue;
    if (n == 2 && seg[0] == '.' && seg[1] == '.') {
      while (o > 0 && path[o - 1] != '/') o--; /* drop the last segment kept ... */
      if (o > 0) o--;                           /* ... and its slash (never above the root) */
      continue;
    }
    path[o++] = '/';
    memmove(path + o, seg, n); /* o never passes seg: the output is never longer than what was read */
    o += n;
  }
  if (o == 0) path[o++] = '/';
  path[o] = '\0';
}

/* `path` made absolute against the working folder and normalized, into out; FW_E_USAGE when it does not fit. */
static fw_status absolute(const char *path, char out[PATH_MAX]) {
  if (path[0] == '/') {
    if ((size_t)snprintf(out, PATH_MAX, "%s", path) >= PATH_MAX) return usage_error("path too long: %s", path);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) snprintf(cwd, sizeof cwd, ".");
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", cwd, path) >= PATH_MAX) return usage_error("path too long: %s", path);
  }
  normalize(out);
  return FW_OK;
}

/* The paths and the format the options name. */
static fw_status resolve(fw_config *cfg) {
  fw_status st = absolute(cfg->out, cfg->out_path);
  if (st != FW_OK) return st;
  cfg->format = fw_format_from_path(cfg->out_path);
  if (cfg->format_name != NULL) {
    if (strcmp(cfg->format_name, "json") == 0) cfg->format = FW_FORMAT_JSON;
    else if (strcmp(cfg->format_name, "env") == 0) cfg->format = FW_FORMAT_ENV;
    else if (strcmp(cfg->format_name, "yaml") == 0) cfg->format = FW_FORMAT_YAML;
    else return usage_error("--format must be json, yaml or env, got %s", cfg->format_name);
  }
  if (cfg->format == FW_FORMAT_YAML) return usage_error("%s", "henge-fw does not write yaml yet: use --format json or env (or henge agent)");
  if (cfg->state != NULL) {
    st = absolute(cfg->state, cfg->state_dir);
  } else {
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, ".henge/agent-%s", cfg->id);
    st = absolute(rel, cfg->state_dir);
  }
  if (st != FW_OK) return st;
  snprintf(cfg->state_file, sizeof cfg->state_file, "%s/state.json", cfg->state_dir);
  if (cfg->led != NULL) return absolute(cfg->led, cfg->led_path);
  return FW_OK;
}

fw_status fw_args_parse(int argc, char **argv, fw_config *cfg, bool *done) {
  enum { O_ID = 1, O_HUB, O_OUT, O_FORMAT, O_STATE, O_KEY, O_BACKOFF, O_LOG, O_LED, O_HELP, O_VERSION, O_EXEC, O_EXEC_TIMEOUT };
  static const struct option long_opts[] = {
      {"id", required_argument, 0, O_ID},         {"hub", required_argument, 0, O_HUB},
      {"out", required_argument, 0, O_OUT},       {"format", required_argument, 0, O_FORMAT},
      {"state", required_argument, 0, O_STATE},   {"key-file", required_argument, 0, O_KEY},
      {"backoff-max", required_argument, 0, O_BACKOFF}, {"log-level", required_argument, 0, O_LOG},
      {"led", required_argument, 0, O_LED},       {"help", no_argument, 0, O_HELP},
      {"version", no_argument, 0, O_VERSION},     {"exec", required_argument, 0, O_EXEC},
      {"exec-timeout", required_argument, 0, O_EXEC_TIMEOUT}, {0, 0, 0, 0},
  };
  *done = false;
  cfg->backoff_max_s = 60;
  cfg->exec_timeout_s = 60;
  cfg->log_level = FW_INFO;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
    switch (c) {
      case O_ID: cfg->id = optarg; break;
      case O_HUB: cfg->hub = optarg; break;
      case O_OUT: cfg->out = optarg; break;
      case O_FORMAT: cfg->format_name = optarg; break;
      case O_STATE: cfg->state = optarg; break;
      case O_KEY: cfg->key_file = optarg; break;
      case O_LED: cfg->led = optarg; break;
      case O_BACKOFF: {
        char *end;
        double v = strtod(optarg, &end);
        if (*optarg == '\0' || *end != '\0' || !(v >= 1 && v <= 86400)) return usage_error("--backoff-max must be 1..86400 seconds, got %s", optarg);
        cfg->backoff_max_s = v;
        break;
      }
      case O_LOG:
        cfg->log_level = fw_log_level_from_name(optarg);
        if (cfg->log_level < 0) return usage_error("--log-level must be one of fatal, error, warn, info, debug, trace, silent; got %s", optarg);
        break;
      case O_HELP:
        usage(stdout);
        *done = true;
        return FW_OK;
      case O_VERSION:
        printf("%s libcoap/%s\n", FW_NAME, fw_libcoap_version());
        *done = true;
        return FW_OK;
      case O_EXEC: cfg->exec = optarg; break;
      case O_EXEC_TIMEOUT: {
        char *end;
        double v = strtod(optarg, &end);
        if (*optarg == '\0' || *end != '\0' || !(v >= 1 && v <= 86400)) return usage_error("--exec-timeout must be 1..86400 seconds, got %s", optarg);
        cfg->exec_timeout_s = v;
        break;
      }
      default: return usage_error("unknown or incomplete option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return usage_error("unexpected argument %s", argv[optind]);
  if (cfg->id == NULL || cfg->out == NULL) return usage_error("%s", "henge-fw needs --id <device> and --out <file>");
  if (!valid_device_id(cfg->id)) return usage_error("--id %s: a device id is 1-63 of a-z, 0-9 and -, starting with a letter or digit", cfg->id);
  return resolve(cfg);
}

/*
 * hook.h: the --exec hook, as the Node agent runs it (agent/exec.ts): `/bin/sh -c <cmd>` in its own
 * session and process group, with henge-fw's environment plus HENGE_CONFIG_FILE, HENGE_CONFIG_VERSION and
 * HENGE_DEVICE, henge-fw's working folder, stdin from /dev/null, stdout and stderr into pipes of which
 * the last 4 KB are kept. It runs beside the CoAP loop: fw_hook_start returns at once, fw_hook_poll
 * (called from the loop) reads the pipes, reaps the shell and enforces --exec-timeout (SIGKILL to the
 * whole process group). The hook is done when its shell exits: a background process it left holding the
 * pipes (`mydaemon &`) gets 100 ms for its output to be read, then the pipes are closed and it runs on.
 */
#ifndef FW_HOOK_H
#define FW_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fw_status.h"

/* Bytes of stdout and of stderr kept (the Node agent's TAIL_BYTES). */
#define FW_HOOK_TAIL_BYTES 4096
/* After the shell exited, how long output still in the pipes is read (the Node agent's 100 ms). */
#define FW_HOOK_DRAIN_MS 100
/* The error line ("--exec exited with 3") and the ack message (that line and the stderr tail, cut on a
   character; the core cuts it again to the ack's 256 bytes, ending "..."). */
#define FW_HOOK_ERROR_MAX 200
#define FW_HOOK_MESSAGE_MAX 1024

typedef struct fw_hook {
  bool active;      /* started and not released */
  pid_t pid;        /* the shell, leader of its own process group */
  bool exited;      /* the shell was reaped */
  int wait_status;  /* waitpid's status once exited */
  bool timed_out;   /* killed by --exec-timeout */
  bool start_failed;
  char start_error[FW_HOOK_ERROR_MAX];
  int out_fd, err_fd; /* read ends (non-blocking), -1 once at EOF or closed */
  uint64_t started_ms, deadline_ms, exited_ms;
  double timeout_ms;
  char out_tail[FW_HOOK_TAIL_BYTES];
  size_t out_len;
  char err_tail[FW_HOOK_TAIL_BYTES];
  size_t err_len;
} fw_hook;

/* What a finished hook came to. */
typedef struct fw_hook_result {
  bool ok;                               /* exit 0 within the timeout */
  uint64_t ms;                           /* from start to the shell's exit */
  char error[FW_HOOK_ERROR_MAX];         /* "--exec exited with 3", "--exec was killed by SIGTERM", "--exec timed out after 1000 ms", "--exec could not start: ..." */
  char message[FW_HOOK_MESSAGE_MAX];     /* error, then ": " and the last 3 lines of stderr (" | " between them) if it wrote any */
  char stdout_tail[256];                 /* the end of stdout (about the last 200 characters), valid UTF-8 */
} fw_hook_result;

/* Clears h (no hook). Cannot fail. */
void fw_hook_init(fw_hook *h);

/*
 * Starts `/bin/sh -c command` with the three variables set. FW_OK: running, or it failed to start
 * (h->start_failed: fw_hook_poll reports it done at once, fw_hook_finish says why); FW_E_NOMEM when the
 * environment could not be built (nothing started; h->start_failed as well).
 */
fw_status fw_hook_start(fw_hook *h, const char *command, double timeout_ms, const char *file, uint64_t version, const char *device);

/*
 * Reads what the pipes hold, reaps the shell, kills its process group at the deadline. *done once the
 * result is final. FW_OK, or FW_E_IO when the shell could not be waited for (then it counts as done,
 * and failed). Never blocks.
 */
fw_status fw_hook_poll(fw_hook *h, uint64_t now_ms, bool *done);

/* The result of a done hook; closes the pipes and leaves h inactive. FW_OK, or FW_E_INVALID when h was not active. */
fw_status fw_hook_finish(fw_hook *h, fw_hook_result *r);

/*
 * Ends a hook still running (henge-fw is stopping): kills its process group, reaps the shell (waiting
 * FW_HOOK_STOP_WAIT_MS at most), closes the pipes and leaves h inactive. FW_OK, or FW_E_IO when the shell
 * could not be reaped in time.
 */
fw_status fw_hook_stop(fw_hook *h);

/* How long fw_hook_stop waits to reap the killed shell. */
#define FW_HOOK_STOP_WAIT_MS 1000

#endif

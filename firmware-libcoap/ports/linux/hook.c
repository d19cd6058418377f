/*
 * hook.c: the --exec hook (hook.h): fork, execve /bin/sh, non-blocking pipes, waitpid(WNOHANG), and a
 * deadline the loop checks; no threads, no signal handler (SIGCHLD keeps its default).
 *
 * Functions that can fail return an fw_status. Those that cannot return nothing: fw_hook_init and the
 * pure helpers below (names, UTF-8 repair, trimming, the tail's last lines);
 * run_child does not return (it execs /bin/sh, or reports errno through its pipe and _exits).
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "render.h"
#include "sys.h"

extern char **environ;

/* ---------------------------------------------------------------------------------------------- */
/* names, as Node gives them                                                                       */

static const char *signal_name(int sig) {
  static const struct {
    int sig;
    const char *name;
  } names[] = {
      {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},     {SIGILL, "SIGILL"},     {SIGTRAP, "SIGTRAP"},
      {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},       {SIGKILL, "SIGKILL"},   {SIGUSR1, "SIGUSR1"},
      {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"}, {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"},   {SIGTERM, "SIGTERM"},
      {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},     {SIGTSTP, "SIGTSTP"},   {SIGTTIN, "SIGTTIN"},
      {SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},     {SIGXFSZ, "SIGXFSZ"},   {SIGVTALRM, "SIGVTALRM"},
      {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"},       {SIGSYS, "SIGSYS"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].sig == sig) return names[i].name;
  return NULL;
}

/* libuv's error code names, as in Node's "spawn /bin/sh ENOENT". */
static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case ETXTBSY: return "ETXTBSY";
    default: return NULL;
  }
}

static void set_start_error(fw_hook *h, int e) {
  const char *n = errno_name(e);
  if (n != NULL) snprintf(h->start_error, sizeof h->start_error, "--exec could not start: spawn /bin/sh %s", n);
  else snprintf(h->start_error, sizeof h->start_error, "--exec could not start: spawn /bin/sh: %s", strerror(e));
  h->start_failed = true;
}

/* ---------------------------------------------------------------------------------------------- */
/* text: the pipes' bytes as Node decodes them (invalid UTF-8 becomes U+FFFD), trimmed as JS trims  */

/* `in` as valid UTF-8 into out (at most cap-1 bytes, whole characters, NUL-terminated); returns the length. */
static size_t utf8_repair(const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t o = 0, i = 0;
  while (i < n) {
    uint8_t b = in[i];
    size_t need = 0;
    uint8_t lower = 0x80, upper = 0xBF;
    if (b < 0x80) {
      if (o + 1 >= cap) break;
      out[o++] = (char)b;
      i++;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lower = 0xA0;
      if (b == 0xED) upper = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lower = 0x90;
      if (b == 0xF4) upper = 0x8F;
    }
    size_t j = i + 1, k = 0;
    while (need > 0 && k < need && j < n && in[j] >= lower && in[j] <= upper) {
      j++;
      k++;
      lower = 0x80;
      upper = 0xBF;
    }
    if (need > 0 && k == need) {
      if (o + (j - i) >= cap) break;
      memcpy(out + o, in + i, j - i);
      o += j - i;
    } else {
      /* WHATWG: one U+FFFD for the longest valid prefix (or the lone byte); the byte that broke it is read again */
      if (o + 3 >= cap) break;
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      if (need == 0) j = i + 1;
    }
    i = j;
  }
  out[o] = '\0';
  return o;
}

/* The code point at s[i] (valid UTF-8) and its length. */
static uint32_t code_point(const char *s, size_t i, size_t *len) {
  const uint8_t *u = (const uint8_t *)s + i;
  if (u[0] < 0x80) {
    *len = 1;
    return u[0];
  }
  if (u[0] < 0xE0) {
    *len = 2;
    return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
  }
  if (u[0] < 0xF0) {
    *len = 3;
    return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
  }
  *len = 4;
  return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

/* String.prototype.trim's white space and line terminators. */
static bool js_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

/* Trims s[0..*n) in place as JS trim() does; returns where the trimmed text starts. */
static size_t js_trim(const char *s, size_t *n) {
  size_t start = 0, end = *n, len = 0;
  while (start < end && js_space(code_point(s, start, &len))) start += len;
  while (end > start) {
    size_t b = end - 1;
    while (b > start && ((uint8_t)s[b] & 0xC0) == 0x80) b--;
    if (!js_space(code_point(s, b, &len))) break;
    end = b;
  }
  *n = end - start;
  return start;
}

/* Appends text[0..n) to out (NUL-terminated, cap bytes) without splitting a UTF-8 character; returns the new length. */
static size_t append_whole(char *out, size_t o, size_t cap, const char *text, size_t n) {
  if (o + n >= cap) {
    n = cap - 1 - o;
    while (n > 0 && ((uint8_t)text[n] & 0xC0) == 0x80) n--;
  }
  memcpy(out + o, text, n);
  o += n;
  out[o] = '\0';
  return o;
}

/* ---------------------------------------------------------------------------------------------- */
/* starting                                                                                        */

void fw_hook_init(fw_hook *h) {
  memset(h, 0, sizeof *h);
  h->pid = -1;
  h->out_fd = -1;
  h->err_fd = -1;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Closes every descriptor from 3 up, but `keep`. */
static void close_from_3(int keep) {
#ifdef SYS_close_range
  bool ok = true;
  if (keep > 3 && syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) != 0) ok = false;
  if (ok && syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = 3; fd < (int)max; fd++)
    if (fd != keep) close(fd);
}

/* In the child: its own session, default signals, stdin /dev/null, stdout and stderr the pipes, nothing else open; exec. */
static void run_child(const char *command, char **envp, int devnull, int out_w, int err_w, int exec_w) {
  (void)setsid();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  const int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT};
  for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) sigaction(reset[i], &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Copies at 3 or above first, so that moving them to 0-2 cannot overwrite one another. */
  int in = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
  int o = fcntl(out_w, F_DUPFD_CLOEXEC, 3);
  int e = fcntl(err_w, F_DUPFD_CLOEXEC, 3);
  int x = fcntl(exec_w, F_DUPFD_CLOEXEC, 3);
  if (x < 0) x = exec_w;
  if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) {
    int err = errno;
    ssize_t w = write(x, &err, sizeof err);
    (void)w;
    _exit(127);
  }
  close_from_3(x);
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)command, NULL};
  execve("/bin/sh", argv, envp);
  int err = errno;
  ssize_t w = write(x, &err, sizeof err);
  (void)w;
  _exit(127);
}

/* Not passed on: the three the hook gets anew, and the device key (a hook needs no key; a hook's log or a
   process listing must not show it). */
static bool is_hook_var(const char *entry) {
  return strncmp(entry, "HENGE_CONFIG_FILE=", 18) == 0 || strncmp(entry, "HENGE_CONFIG_VERSION=", 21) == 0 ||
         strncmp(entry, "HENGE_DEVICE=", 13) == 0 || strncmp(entry, "HENGE_DEVICE_KEY=", 17) == 0;
}

fw_status fw_hook_start(fw_hook *h, const char *command, double timeout_ms, const char *file, uint64_t version, const char *device) {
  fw_hook_init(h);
  h->timeout_ms = timeout_ms;
  /* henge-fw's environment without the device key, then the three variables (replacing any inherited ones). */
  size_t n = 0;
  for (char **e = environ; e != NULL && *e != NULL; e++) n++;
  char **envp = calloc(n + 4, sizeof *envp);
  size_t file_len = strlen(file) + sizeof "HENGE_CONFIG_FILE=";
  size_t dev_len = strlen(device) + sizeof "HENGE_DEVICE=";
  char *file_var = malloc(file_len);
  char *dev_var = malloc(dev_len);
  char version_var[48];
  if (envp == NULL || file_var == NULL || dev_var == NULL) {
    free(envp);
    free(file_var);
    free(dev_var);
    h->active = true;
    set_start_error(h, ENOMEM);
    return FW_E_NOMEM;
  }
  snprintf(file_var, file_len, "HENGE_CONFIG_FILE=%s", file);
  snprintf(dev_var, dev_len, "HENGE_DEVICE=%s", device);
  snprintf(version_var, sizeof version_var, "HENGE_CONFIG_VERSION=%llu", (unsigned long long)version);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!is_hook_var(environ[i])) envp[k++] = environ[i];
  envp[k++] = file_var;
  envp[k++] = version_var;
  envp[k++] = dev_var;
  envp[k] = NULL;

  h->active = true;
  h->started_ms = fw_now_ms();
  h->deadline_ms = h->started_ms + (uint64_t)(timeout_ms + 0.999);
  int outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(execp, O_CLOEXEC) != 0) {
    set_start_error(h, errno);
  } else {
    pid_t pid = fork();
    if (pid == 0) run_child(command, envp, devnull, outp[1], errp[1], execp[1]);
    if (pid < 0) {
      set_start_error(h, errno);
    } else {
      h->pid = pid;
      close_fd(&outp[1]);
      close_fd(&errp[1]);
      close_fd(&execp[1]);
      /* The child closes its end at exec (O_CLOEXEC), or writes the errno that stopped it. */
      int child_errno = 0;
      ssize_t r;
      do r = read(execp[0], &child_errno, sizeof child_errno);
      while (r < 0 && errno == EINTR);
      if (r == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        h->pid = -1;
        set_start_error(h, child_errno);
      } else {
        h->out_fd = outp[0];
        h->err_fd = errp[0];
        outp[0] = errp[0] = -1;
        (void)fcntl(h->out_fd, F_SETFL, O_NONBLOCK);
        (void)fcntl(h->err_fd, F_SETFL, O_NONBLOCK);
      }
    }
  }
  close_fd(&devnull);
  close_fd(&outp[0]);
  close_fd(&outp[1]);
  close_fd(&errp[0]);
  close_fd(&errp[1]);
  close_fd(&execp[0]);
  close_fd(&execp[1]);
  free(envp);
  free(file_var);
  free(dev_var);
  return FW_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* running                                                                                         */

/* Keeps the last FW_HOOK_TAIL_BYTES of what a stream wrote. */
static void keep_tail(char *tail, size_t *len, const char *data, size_t n) {
  if (n >= FW_HOOK_TAIL_BYTES) {
    memcpy(tail, data + n - FW_HOOK_TAIL_BYTES, FW_HOOK_TAIL_BYTES);
    *len = FW_HOOK_TAIL_BYTES;
    return;
  }
  if (*len + n > FW_HOOK_TAIL_BYTES) {
    size_t drop = *len + n - FW_HOOK_TAIL_BYTES;
    memmove(tail, tail + drop, *len - drop);
    *len -= drop;
  }
  memcpy(tail + *len, data, n);
  *len += n;
}

/* Reads what the pipe holds; closes it at EOF or on an error. */
static void drain(int *fd, char *tail, size_t *len) {
  char chunk[4096];
  while (*fd >= 0) {
    ssize_t r = read(*fd, chunk, sizeof chunk);
    if (r > 0) {
      keep_tail(tail, len, chunk, (size_t)r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);
  }
}

fw_status fw_hook_poll(fw_hook *h, uint64_t now_ms, bool *done) {
  *done = true;
  if (!h->active || h->start_failed) return FW_OK;
  drain(&h->out_fd, h->out_tail, &h->out_len);
  drain(&h->err_fd, h->err_tail, &h->err_len);
  fw_status st = FW_OK;
  if (!h->exited) {
    int status = 0;
    pid_t r = waitpid(h->pid, &status, WNOHANG);
    if (r == h->pid) {
      h->exited = true;
      h->wait_status = status;
      h->exited_ms = now_ms;
    } else if (r < 0 && errno != EINTR) {
      int e = errno;
      h->exited = true;
      h->exited_ms = now_ms;
      h->start_failed = true;
      snprintf(h->start_error, sizeof h->start_error, "--exec could not be waited for: %s", strerror(e));
      st = FW_E_IO;
    } else if (now_ms >= h->deadline_ms && !h->timed_out) {
      /* The whole process group: the shell and whatever it started. */
      h->timed_out = true;
      (void)kill(-h->pid, SIGKILL);
      (void)kill(h->pid, SIGKILL);
    }
  }
  *done = h->exited && ((h->out_fd < 0 && h->err_fd < 0) || now_ms >= h->exited_ms + FW_HOOK_DRAIN_MS);
  return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* the result                                                                                      */

fw_status fw_hook_finish(fw_hook *h, fw_hook_result *r) {
  memset(r, 0, sizeof *r);
  if (!h->active) return FW_E_INVALID;
  close_fd(&h->out_fd);
  close_fd(&h->err_fd);
  h->active = false;
  r->ms = h->exited_ms > h->started_ms ? h->exited_ms - h->started_ms : 0;
  if (h->start_failed) {
    snprintf(r->error, sizeof r->error, "%s", h->start_error);
  } else if (h->timed_out) {
    char ms[32];
    fw_js_number(h->timeout_ms, ms);
    snprintf(r->error, sizeof r->error, "--exec timed out after %s ms", ms);
  } else if (WIFSIGNALED(h->wait_status)) {
    const char *name = signal_name(WTERMSIG(h->wait_status));
    if (name != NULL) snprintf(r->error, sizeof r->error, "--exec was killed by %s", name);
    else snprintf(r->error, sizeof r->error, "--exec was killed by signal %d", WTERMSIG(h->wait_status));
  } else if (WIFEXITED(h->wait_status) && WEXITSTATUS(h->wait_status) != 0) {
    snprintf(r->error, sizeof r->error, "--exec exited with %d", WEXITSTATUS(h->wait_status));
  } else {
    r->ok = true;
  }

  /* stdout's end, for the "--exec succeeded" line: the last 200 UTF-16 units, as slice(-200). */
  static char text[3 * FW_HOOK_TAIL_BYTES + 1];
  size_t n = utf8_repair((const uint8_t *)h->out_tail, h->out_len, text, sizeof text);
  size_t start = n, units = 0;
  while (start > 0) {
    size_t b = start - 1;
    while (b > 0 && ((uint8_t)text[b] & 0xC0) == 0x80) b--;
    size_t u = ((uint8_t)text[b] >= 0xF0) ? 2 : 1;
    if (units + u > 200) break;
    units += u;
    start = b;
  }
  append_whole(r->stdout_tail, 0, sizeof r->stdout_tail, text + start, n - start);

  /* The ack message: the error, then the last 3 lines of stderr, trimmed, joined with " | ". */
  size_t o = append_whole(r->message, 0, sizeof r->message, r->error, strlen(r->error));
  if (!r->ok) {
    n = utf8_repair((const uint8_t *)h->err_tail, h->err_len, text, sizeof text);
    size_t len = n;
    size_t from = js_trim(text, &len);
    const char *t = text + from;
    size_t begin = 0;
    int newlines = 0;
    for (size_t i = len; i > 0; i--) {
      if (t[i - 1] == '\n' && ++newlines == 3) {
        begin = i;
        break;
      }
    }
    if (len > begin) {
      o = append_whole(r->message, o, sizeof r->message, ": ", 2);
      size_t i = begin;
      while (i < len) {
        const char *nl = memchr(t + i, '\n', len - i);
        size_t part = nl != NULL ? (size_t)(nl - (t + i)) : len - i;
        o = append_whole(r->message, o, sizeof r->message, t + i, part);
        if (nl == NULL) break;
        o = append_whole(r->message, o, sizeof r->message, " | ", 3);
        i += part + 1;
      }
    }
  }
  return FW_OK;
}

fw_status fw_hook_stop(fw_hook *h) {
  if (!h->active) return FW_OK;
  fw_status st = FW_OK;
  if (!h->start_failed && !h->exited) {
    /* The whole process group, as at the deadline; then reap the shell (SIGKILL: it goes at once). */
    (void)kill(-h->pid, SIGKILL);
    (void)kill(h->pid, SIGKILL);
    /* Reaped within FW_HOOK_STOP_WAIT_MS: a shell stuck in the kernel (D state) must not hang the stop. */
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < FW_HOOK_STOP_WAIT_MS / 10 && r == 0; i++) {
      r = waitpid(h->pid, &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) {
        r = 0;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
      }
    }
    if (r != h->pid) st = FW_E_IO;
    h->exited = true;
  }
  close_fd(&h->out_fd);
  close_fd(&h->err_fd);
  h->active = false;
  return st;
}

/*
 * fsutil.c: atomic writes, the state folder's lock, the device key (fsutil.h).
 *
 * Every function that can fail returns an fw_status, with errno or a message in `err` saying why. One
 * cannot fail and answers a question: alive() (is a process still there).
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

fw_status fw_mkdirs(const char *dir, mode_t mode) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return FW_E_IO;
  }
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return FW_E_IO;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return FW_E_IO;
  return FW_OK;
}

fw_status fw_read_file(const char *path, fw_buf *out) { return fw_read_file_max(path, out, SIZE_MAX); }

/* FW_OK, or FW_E_IO with errno set. */
static fw_status write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return FW_E_IO;
    }
    p += w;
    n -= (size_t)w;
  }
  return FW_OK;
}

/* FW_OK, or FW_E_IO with errno set. */
static fw_status fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FW_E_IO;
  int r = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return r == 0 ? FW_OK : FW_E_IO;
}

fw_status fw_write_atomic(const char *path, const void *data, size_t n, int mode, bool exact, char *err, size_t cap) {
  char dir_buf[4096], base_buf[4096], tmp[8300];
  snprintf(dir_buf, sizeof dir_buf, "%s", path);
  snprintf(base_buf, sizeof base_buf, "%s", path);
  const char *dir = dirname(dir_buf);
  const char *base = basename(base_buf);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(tmp, sizeof tmp, "%s/.%s.%d.%08lx.tmp", dir, base, (int)getpid(), (unsigned long)(ts.tv_nsec ^ (long)rand()) & 0xffffffffUL);
  mode_t m = 0644;
  struct stat st;
  if (exact) m = (mode_t)mode;
  else if (stat(path, &st) == 0) m = st.st_mode & 07777;
  else if (mode >= 0) m = (mode_t)mode;
  fw_buf back;
  fw_buf_init(&back);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, m);
  if (fd < 0) {
    snprintf(err, cap, "writing %s failed: %s", path, strerror(errno));
    return FW_E_IO;
  }
  const char *step = "write";
  if (write_all(fd, data, n) != FW_OK) goto fail_fd;
  step = "fsync";
  if (fsync(fd) != 0) goto fail_fd;
  if (close(fd) != 0) {
    fd = -1;
    step = "close";
    goto fail;
  }
  fd = -1;
  step = "chmod";
  if (chmod(tmp, m) != 0) goto fail;
  /* Read back: the file counts only if the disk gives back what was written. */
  step = "read back";
  if (fw_read_file(tmp, &back) != FW_OK) goto fail;
  if (back.len != n || (n > 0 && memcmp(back.data, data, n) != 0)) {
    snprintf(err, cap, "read back %zu bytes that differ from the %zu written", back.len, n);
    unlink(tmp);
    fw_buf_free(&back);
    return FW_E_IO;
  }
  fw_buf_free(&back);
  step = "rename";
  if (rename(tmp, path) != 0) goto fail;
  if (fsync_dir(dir) != FW_OK) {
    snprintf(err, cap, "writing %s: fsync of its folder failed: %s", path, strerror(errno));
    return FW_E_IO;
  }
  return FW_OK;
fail_fd : {
  int e = errno;
  close(fd);
  errno = e;
}
fail : {
  int e = errno;
  snprintf(err, cap, "writing %s failed (%s): %s", path, step, strerror(e));
  unlink(tmp);
  fw_buf_free(&back);
  return FW_E_IO;
}
}

fw_status fw_remove_durable(const char *path, char *err, size_t cap) {
  if (unlink(path) != 0 && errno != ENOENT) {
    snprintf(err, cap, "removing %s failed: %s", path, strerror(errno));
    return FW_E_IO;
  }
  char dir_buf[4096];
  snprintf(dir_buf, sizeof dir_buf, "%s", path);
  const char *dir = dirname(dir_buf);
  if (fsync_dir(dir) != FW_OK) {
    snprintf(err, cap, "removing %s: fsync of its folder failed: %s", path, strerror(errno));
    return FW_E_IO;
  }
  return FW_OK;
}

fw_status fw_read_file_max(const char *path, fw_buf *out, size_t max) {
  fw_buf_reset(out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FW_E_IO;
  char chunk[8192];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      errno = e;
      return FW_E_IO;
    }
    if (r == 0) break;
    if (out->len + (size_t)r > max) {
      close(fd);
      fw_buf_free(out);
      errno = EFBIG;
      return FW_E_IO;
    }
    fw_buf_put(out, chunk, (size_t)r);
  }
  close(fd);
  if (out->failed) {
    errno = ENOMEM;
    return FW_E_NOMEM;
  }
  if (out->data == NULL) fw_buf_put(out, "", 0);
  return FW_OK;
}

static char lock_path[4200];
static bool locked;

static bool alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

fw_status fw_lock_state(const char *dir, char *err, size_t cap) {
  snprintf(lock_path, sizeof lock_path, "%s/agent.lock", dir);
  for (int attempt = 0; attempt < 2; attempt++) {
    int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      char pid[32];
      int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
      fw_status r = write_all(fd, pid, (size_t)len);
      close(fd);
      if (r != FW_OK) {
        snprintf(err, cap, "cannot lock %s: %s", lock_path, strerror(errno));
        return FW_E_IO;
      }
      locked = true;
      return FW_OK;
    }
    if (errno != EEXIST) {
      snprintf(err, cap, "cannot lock %s: %s", lock_path, strerror(errno));
      return FW_E_IO;
    }
    fw_buf b;
    fw_buf_init(&b);
    long pid = 0;
    if (fw_read_file(lock_path, &b) == FW_OK) pid = strtol(b.data, NULL, 10);
    fw_buf_free(&b);
    if (pid > 0 && pid != (long)getpid() && alive((pid_t)pid)) {
      snprintf(err, cap, "state folder %s is in use by process %ld (another agent for this device?)", dir, pid);
      return FW_E_BUSY;
    }
    unlink(lock_path);
  }
  snprintf(err, cap, "cannot take the lock %s", lock_path);
  return FW_E_BUSY;
}

fw_status fw_unlock_state(void) {
  fw_status st = FW_OK;
  if (locked && unlink(lock_path) != 0) st = FW_E_IO;
  locked = false;
  return st;
}

/* The first line of a file, trimmed; FW_OK, or FW_E_IO / FW_E_NOMEM (errno set). */
static fw_status first_line(const char *path, char *out, size_t cap, bool *too_long) {
  fw_buf b;
  fw_buf_init(&b);
  fw_status st = fw_read_file(path, &b);
  if (st != FW_OK) {
    int e = errno;
    fw_buf_free(&b);
    errno = e;
    return st;
  }
  const char *s = b.data;
  size_t n = strcspn(s, "\n");
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
  while (n > 0 && (*s == ' ' || *s == '\t')) {
    s++;
    n--;
  }
  *too_long = n >= cap;
  if (*too_long) n = cap - 1;
  memcpy(out, s, n);
  out[n] = '\0';
  memset(b.data, 0, b.len); /* no key text left in freed memory */
  fw_buf_free(&b);
  return FW_OK;
}

fw_status fw_read_key(const char *key_file, const char *state_dir, char *key, size_t key_cap, bool *found, char *err, size_t cap) {
  bool too_long = false;
  *found = false;
  key[0] = '\0';
  if (key_file != NULL) {
    if (first_line(key_file, key, key_cap, &too_long) != FW_OK) {
      snprintf(err, cap, "--key-file %s: %s", key_file, strerror(errno));
      return FW_E_IO;
    }
  } else {
    const char *env = getenv("HENGE_DEVICE_KEY");
    if (env != NULL) {
      size_t n = strlen(env);
      while (n > 0 && (env[n - 1] == ' ' || env[n - 1] == '\t' || env[n - 1] == '\r' || env[n - 1] == '\n')) n--;
      while (n > 0 && (*env == ' ' || *env == '\t')) {
        env++;
        n--;
      }
      too_long = n >= key_cap;
      if (too_long) n = key_cap - 1;
      memcpy(key, env, n);
      key[n] = '\0';
    } else {
      char path[4200];
      snprintf(path, sizeof path, "%s/key", state_dir);
      if (first_line(path, key, key_cap, &too_long) != FW_OK) {
        if (errno == ENOENT) return FW_OK;
        snprintf(err, cap, "cannot read the device key %s: %s", path, strerror(errno));
        return FW_E_IO;
      }
    }
  }
  if (key[0] == '\0') return FW_OK;
  bool printable = !too_long && strlen(key) <= 512;
  for (const char *p = key; printable && *p; p++)
    if (*p < 0x21 || *p > 0x7e) printable = false;
  if (!printable) {
    memset(key, 0, key_cap);
    snprintf(err, cap, "the device key must be printable ASCII (what henge device add printed)");
    return FW_E_INVALID;
  }
  *found = true;
  return FW_OK;
}

/*
 * fsutil.h: the file system side of henge-fw: atomic writes (temp file in the same folder, fsync,
 * read back, rename, fsync the folder, as agent/apply.ts writeFileAtomic), the state folder's lock
 * (agent.lock, shared with the Node agent), and the device key.
 */
#ifndef FW_FSUTIL_H
#define FW_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "render.h"

/* mkdir -p; 0 or -1 (errno set). */
int fw_mkdirs(const char *dir, mode_t mode);

/* The whole file into `out`; 0, or -1 with errno (ENOENT when there is none). */
int fw_read_file(const char *path, fw_buf *out);

/*
 * Writes `data` to `path` atomically and durably. mode < 0: an existing file keeps its mode, a new one
 * gets 0644; exact: always `mode`. 0, or -1 with a message in err.
 */
int fw_write_atomic(const char *path, const void *data, size_t n, int mode, bool exact, char *err, size_t cap);

/* Takes <dir>/agent.lock (a stale lock of a dead process is taken over). 0, -1 (error), -2 (in use). */
int fw_lock_state(const char *dir, char *err, size_t cap);
void fw_unlock_state(void);

/*
 * The device key, as the Node agent finds it: --key-file (its first line), else $HENGE_DEVICE_KEY,
 * else <state>/key; trimmed; printable ASCII, 1-512 characters. Returns 1 with the key in `key`, 0 when
 * there is none (plain CoAP), -1 with a message (bad file, bad key).
 */
int fw_read_key(const char *key_file, const char *state_dir, char *key, size_t key_cap, char *err, size_t cap);

#endif

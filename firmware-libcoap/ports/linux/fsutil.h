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

#include "fw_status.h"
#include "render.h"

/* mkdir -p; FW_OK, or FW_E_IO with errno set. */
fw_status fw_mkdirs(const char *dir, mode_t mode);

/* The whole file into `out`; FW_OK, or FW_E_IO / FW_E_NOMEM with errno set (ENOENT when there is none). */
fw_status fw_read_file(const char *path, fw_buf *out);

/* As fw_read_file, but a file over `max` bytes is FW_E_IO with errno EFBIG (nothing kept). */
fw_status fw_read_file_max(const char *path, fw_buf *out, size_t max);

/* Removes `path` (absent is fine) and fsyncs its folder. FW_OK, or FW_E_IO with a message in err. */
fw_status fw_remove_durable(const char *path, char *err, size_t cap);

/*
 * Writes `data` to `path` atomically and durably. mode < 0: an existing file keeps its mode, a new one
 * gets 0644; exact: always `mode`. FW_OK, or FW_E_IO with a message in err.
 */
fw_status fw_write_atomic(const char *path, const void *data, size_t n, int mode, bool exact, char *err, size_t cap);

/*
 * Takes <dir>/agent.lock (a stale lock of a dead process is taken over). FW_OK, FW_E_IO or FW_E_BUSY (in
 * use by a live process), with a message in err.
 */
fw_status fw_lock_state(const char *dir, char *err, size_t cap);
/* Removes the lock fw_lock_state took, if any. FW_OK, or FW_E_IO (errno set). */
fw_status fw_unlock_state(void);

/*
 * The device key, as the Node agent finds it: --key-file (its first line), else $HENGE_DEVICE_KEY,
 * else <state>/key; trimmed; printable ASCII, 1-512 characters. FW_OK with *found and the key in `key`,
 * or FW_OK with !*found when there is none (plain CoAP); FW_E_IO (a file that cannot be read) or
 * FW_E_INVALID (not a key) with a message in err.
 */
fw_status fw_read_key(const char *key_file, const char *state_dir, char *key, size_t key_cap, bool *found, char *err, size_t cap);

#endif

/* Whole-file writes and capped reads relative to a directory fd: the one
 * mechanism behind every file the helper keeps (records, cache entries, token
 * files) and behind the user-side writer. Nothing here follows a symlink. */
#ifndef KC_FILEIO_H
#define KC_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/util.h"

#define KC_KEEP_OWNER ((uid_t)-1)

/* How durable a write must be before it returns. */
enum kc_sync {
	KC_SYNC_ALL, /* the file's bytes and its name: fsync of the file, then of the directory */
	KC_SYNC_FILE, /* the bytes only: the caller fsyncs the directory once for several files */
	KC_SYNC_NONE, /* a hint whose loss costs nothing (it expires, or is derived again) */
};

struct kc_write_opts {
	mode_t mode; /* exact mode of the result, whatever the umask */
	uid_t uid; /* KC_KEEP_OWNER: the writer's own */
	gid_t gid;
	/* When set, the rename happens only if name is still the file described
	 * here (device, inode, size, mtime), or absent when expect->st_ino is 0. */
	const struct stat *expect;
	enum kc_sync sync;
};

/* Writes data to dir/name: a temporary ".name.RANDOM" created O_EXCL, fchown,
 * fchmod, fsync, renameat over name, fsync of dir (as o->sync says). On failure name is as it was
 * and no temporary is left. Returns 0, -1 (err set), or 1 when expect no longer
 * holds (nothing written). */
int kc_write_at(int dir, const char *name, const void *data, size_t len, const struct kc_write_opts *o,
		struct kc_err *err);

/* Reads dir/name, a regular file of at most max bytes, into out (appending).
 * st (optional) receives its stat. Returns 0, 1 when it does not exist, -1 on
 * any other failure (err set: not a regular file, too large, unreadable). */
int kc_read_at(int dir, const char *name, size_t max, struct kc_buf *out, struct stat *st, struct kc_err *err);

/* ".name.RANDOM" for a temporary next to name (out holds at least 256 bytes). */
int kc_temp_name(const char *name, char *out, size_t len);

/* Reads a whole file that must be a regular file owned by root, without
 * following a symlink, at most max bytes. forbid_mode: mode bits that must be
 * clear (022: not group/world-writable; 077: root alone). The result in *out is a
 * secret buffer when secret is set. */
int kc_read_root_file(const char *path, size_t max, mode_t forbid_mode, bool secret, struct kc_buf *out,
		      struct kc_err *err);

/* The same checks, returning the open fd (O_CLOEXEC) and its stat. */
int kc_open_root_file(const char *path, size_t max, mode_t forbid_mode, struct stat *st, struct kc_err *err);
/* Reads fd to its end, at most max bytes, appending to out (wiped if secret). */
int kc_read_fd(int fd, size_t max, struct kc_buf *out, struct kc_err *err);

/* Checks the same conditions without reading (for `check`). */
int kc_check_root_file(const char *path, size_t max, mode_t forbid_mode, bool allow_empty, struct kc_err *err);

/* flock(fd, op) (LOCK_SH or LOCK_EX), waited for until deadline_ms at most,
 * polling every 2 ms: for locks only root's helpers take, each for one short
 * step. 0, or -1 with errno (ETIMEDOUT: still held at the deadline). */
int kc_flock_until(int fd, int op, long long deadline_ms);

/* Mkdir -p for root-owned state directories (mode 0700), refusing symlinks and
 * directories others may write. Returns an O_DIRECTORY fd or -1. */
int kc_open_state_dir(const char *path, struct kc_err *err);
/* The uids named by path's entries ("1000", ...; 0 and non-numbers skipped):
 * the per-user directories of the state and token stores. A missing path
 * has none. Caller frees *uids. */
int kc_list_uid_dirs(const char *path, uid_t **uids, size_t *n, struct kc_err *err);

#endif

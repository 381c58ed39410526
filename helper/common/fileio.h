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

struct kc_write_opts {
	mode_t mode; /* exact mode of the result, whatever the umask */
	uid_t uid; /* KC_KEEP_OWNER: the writer's own */
	gid_t gid;
	/* When set, the rename happens only if name is still the file described
	 * here (device, inode, size, mtime), or absent when expect->st_ino is 0. */
	const struct stat *expect;
};

/* Writes data to dir/name: a temporary ".name.RANDOM" created O_EXCL, fchown,
 * fchmod, fsync, renameat over name, fsync of dir. On failure name is as it was
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

#endif

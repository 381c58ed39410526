/* Atomic whole-file writes and capped reads from directory fds. */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int kc_temp_name(const char *name, char *out, size_t len)
{
	unsigned char rnd[8];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -1;
	snprintf(out, len, ".%.200s.%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		 rnd[5], rnd[6], rnd[7]);
	return 0;
}

static bool still_expected(int dir, const char *name, const struct stat *want)
{
	struct stat now;

	if (fstatat(dir, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT && want->st_ino == 0;
	return want->st_ino != 0 && now.st_dev == want->st_dev && now.st_ino == want->st_ino &&
	       now.st_size == want->st_size && now.st_mtim.tv_sec == want->st_mtim.tv_sec &&
	       now.st_mtim.tv_nsec == want->st_mtim.tv_nsec;
}

int kc_write_at(int dir, const char *name, const void *data, size_t len, const struct kc_write_opts *o,
		struct kc_err *err)
{
	char tmp[256];
	int fd, rc = -1;

	if (strlen(name) > 200 || kc_temp_name(name, tmp, sizeof(tmp)) < 0)
		return kc_seterr(err, "cannot make a temporary name for %s", name), -1;
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_seterr(err, "cannot create a file next to %s: %s", name, strerror(errno)), -1;
	if ((o->uid != KC_KEEP_OWNER && fchown(fd, o->uid, o->gid) < 0) || fchmod(fd, o->mode) < 0 ||
	    kc_write_all(fd, data, len, 0) < 0 || fsync(fd) < 0) {
		kc_seterr(err, "cannot write %s: %s", name, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		kc_seterr(err, "cannot write %s: %s", name, strerror(errno));
		goto out;
	}
	if (o->expect && !still_expected(dir, name, o->expect)) {
		kc_seterr(err, "%s changed while it was being rewritten; left as it is", name);
		rc = 1;
		goto out;
	}
	if (renameat(dir, tmp, dir, name) < 0) {
		kc_seterr(err, "cannot replace %s: %s%s", name, strerror(errno),
			  errno == EISDIR ? " (it is a directory; move it away)" : "");
		goto out;
	}
	fsync(dir);
	return 0;
out:
	unlinkat(dir, tmp, 0);
	return rc;
}

int kc_read_at(int dir, const char *name, size_t max, struct kc_buf *out, struct stat *st, struct kc_err *err)
{
	struct stat local;
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	int rc = -1;

	if (!st)
		st = &local;
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP)
			return kc_seterr(err, "%s is a symbolic link; not followed", name), -1;
		return kc_seterr(err, "cannot open %s: %s", name, strerror(errno)), -1;
	}
	if (fstat(fd, st) < 0) {
		kc_seterr(err, "cannot stat %s: %s", name, strerror(errno));
	} else if (!S_ISREG(st->st_mode)) {
		kc_seterr(err, "%s is not a regular file", name);
	} else if ((size_t)st->st_size > max) {
		kc_seterr(err, "%s is %lld bytes, more than the %zu allowed", name, (long long)st->st_size, max);
	} else {
		struct kc_err e;

		rc = kc_read_fd(fd, max, out, &e);
		if (rc < 0)
			kc_seterr(err, "%s: %s", name, e.msg);
	}
	close(fd);
	return rc;
}

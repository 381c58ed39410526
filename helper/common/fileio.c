/* Atomic whole-file writes and capped reads from directory fds. */
#include "common/fileio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#define FLOCK_POLL_MS 2

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
	    kc_write_all(fd, data, len, 0) < 0 || (o->sync != KC_SYNC_NONE && fsync(fd) < 0)) {
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
	if (o->sync == KC_SYNC_ALL)
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

int kc_open_root_file(const char *path, size_t max, mode_t forbid_mode, struct stat *st, struct kc_err *err)
{
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP)
			kc_seterr(err, "%s is a symbolic link; name the real file instead", path);
		else if (errno == ENOENT)
			kc_seterr(err, "%s does not exist", path);
		else
			kc_seterr(err, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		kc_seterr(err, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		kc_seterr(err, "%s is not a regular file", path);
		goto fail;
	}
	if (st->st_uid != 0) {
		kc_seterr(err, "%s is owned by uid %u; it must be owned by root (chown root:root %s)", path,
			  (unsigned)st->st_uid, path);
		goto fail;
	}
	if (st->st_mode & forbid_mode) {
		kc_seterr(
			err, "%s has mode %04o; it must not be %s (chmod %s %s)", path, (unsigned)(st->st_mode & 07777),
			(forbid_mode & 044) ? "readable or writable by group or others" : "writable by group or others",
			(forbid_mode & 044) ? "0600" : "go-w", path);
		goto fail;
	}
	if ((size_t)st->st_size > max) {
		kc_seterr(err, "%s is %lld bytes, more than the %zu allowed", path, (long long)st->st_size, max);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int kc_check_root_file(const char *path, size_t max, mode_t forbid_mode, bool allow_empty, struct kc_err *err)
{
	struct stat st;
	int fd = kc_open_root_file(path, max, forbid_mode, &st, err);

	if (fd < 0)
		return -1;
	close(fd);
	if (!allow_empty && st.st_size == 0) {
		kc_seterr(err, "%s is empty", path);
		return -1;
	}
	return 0;
}

int kc_read_fd(int fd, size_t max, struct kc_buf *out, struct kc_err *err)
{
	char chunk[4096];
	int rc = -1;

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kc_seterr(err, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			kc_seterr(err, "larger than the %zu bytes allowed", max);
			goto out;
		}
		if (kc_buf_append(out, chunk, (size_t)n) < 0) {
			kc_seterr(err, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	explicit_bzero(chunk, sizeof(chunk));
	if (rc < 0)
		kc_buf_free(out);
	return rc;
}

int kc_read_root_file(const char *path, size_t max, mode_t forbid_mode, bool secret, struct kc_buf *out,
		      struct kc_err *err)
{
	struct stat st;
	kc_autoclose int fd = kc_open_root_file(path, max, forbid_mode, &st, err);
	struct kc_err e;

	if (fd < 0)
		return -1;
	out->secret = secret;
	if (kc_read_fd(fd, max, out, &e) < 0) {
		kc_seterr(err, "%s: %s", path, e.msg);
		return -1;
	}
	return 0;
}

int kc_open_state_dir(const char *path, struct kc_err *err)
{
	char tmp[PATH_MAX];
	int fd = -1;
	struct stat st;

	if (path[0] != '/' || strlen(path) >= sizeof(tmp)) {
		kc_seterr(err, "state directory %s must be an absolute path", path);
		return -1;
	}
	/* Create parents as needed; the last component is the one we own. */
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			kc_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		kc_seterr(err, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		kc_seterr(err, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077)) {
		kc_seterr(err, "%s must be a directory owned by root with mode 0700", path);
		close(fd);
		return -1;
	}
	return fd;
}

int kc_list_uid_dirs(const char *path, uid_t **uids, size_t *n, struct kc_err *err)
{
	DIR *d = opendir(path);
	struct dirent *de;

	*uids = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : (kc_seterr(err, "cannot read %s: %s", path, strerror(errno)), -1);
	while ((de = readdir(d))) {
		char *end;
		unsigned long v;
		uid_t *p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		v = strtoul(de->d_name, &end, 10);
		if (*end || v == 0 || v > 0xfffffffeUL)
			continue;
		p = realloc(*uids, (*n + 1) * sizeof(**uids));
		if (!p)
			break;
		*uids = p;
		(*uids)[(*n)++] = (uid_t)v;
	}
	closedir(d);
	return 0;
}

int kc_flock_until(int fd, int op, long long deadline_ms)
{
	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (kc_now_ms() + FLOCK_POLL_MS > deadline_ms)
			return errno = ETIMEDOUT, -1;
		usleep(FLOCK_POLL_MS * 1000);
	}
	return 0;
}

/* The cache store: entries by kind and key in one root-only directory. */
#include "common/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/fileio.h"

static const char *cache_dir = KC_CACHE_DIR;

void kc_cache_use_dir(const char *dir)
{
	cache_dir = dir;
}

/* kind-<hash of kind and key>: any key, a fixed-length name, no collisions in practice. */
static void entry_name(const char *kind, const char *key, const char *suffix, char out[96])
{
	kc_autobuf struct kc_buf in = { 0 };
	char hex[65];

	kc_buf_puts(&in, kind);
	kc_buf_append(&in, "", 1);
	kc_buf_puts(&in, key);
	kc_sha256_hex(in.data ? in.data : "", in.len, hex);
	snprintf(out, 96, "%.24s-%.32s%s", kind, hex, suffix);
}

static int open_dir(struct kc_err *err)
{
	return kc_open_state_dir(cache_dir, err);
}

int kc_cache_get(const char *kind, const char *key, long max_age, unsigned flags, struct kc_buf *out, time_t *stored,
		 struct kc_err *err)
{
	char name[96];
	struct stat st;
	kc_autoclose int dir = open_dir(err);
	int rc;

	if (dir < 0)
		return -1;
	entry_name(kind, key, "", name);
	out->secret = out->secret || (flags & KC_CACHE_SECRET);
	rc = kc_read_at(dir, name, KC_CACHE_ENTRY_MAX, out, &st, err);
	if (rc != 0)
		return rc;
	if (st.st_uid != 0 || (st.st_mode & 077)) {
		kc_buf_free(out);
		kc_seterr(err, "cache entry %s/%s is not root's own (mode %04o, uid %u); ignored", cache_dir, name,
			  (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -1;
	}
	if (max_age > 0 && (time(NULL) - st.st_mtime >= max_age || st.st_mtime > time(NULL) + 60)) {
		kc_buf_free(out);
		return 1;
	}
	if (stored)
		*stored = st.st_mtime;
	return 0;
}

int kc_cache_put(const char *kind, const char *key, const void *data, size_t len, struct kc_err *err)
{
	/* Not synced: losing an entry costs time, never correctness, and every
	 * reader checks what it reads. */
	const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };
	char name[96];
	kc_autoclose int dir = open_dir(err);

	if (dir < 0)
		return -1;
	entry_name(kind, key, "", name);
	return kc_write_at(dir, name, data, len, &o, err) == 0 ? 0 : -1;
}

time_t kc_cache_stored(const char *kind, const char *key)
{
	char name[96];
	struct stat st;
	struct kc_err e;
	kc_autoclose int dir = open_dir(&e);

	if (dir < 0)
		return 0;
	entry_name(kind, key, "", name);
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)
		return 0;
	return st.st_mtime;
}

void kc_cache_drop(const char *kind, const char *key)
{
	char name[96];
	struct kc_err e;
	kc_autoclose int dir = open_dir(&e);

	if (dir < 0)
		return;
	entry_name(kind, key, "", name);
	unlinkat(dir, name, 0);
}

int kc_cache_trylock(const char *kind, const char *key)
{
	char name[96];
	struct kc_err e;
	kc_autoclose int dir = open_dir(&e);
	int fd;

	if (dir < 0)
		return -1;
	entry_name(kind, key, ".lock", name);
	fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

size_t kc_cache_count(const char *kind)
{
	char prefix[32];
	size_t n = 0, len;
	struct kc_err e;
	int dir = open_dir(&e), fd = dir >= 0 ? openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	snprintf(prefix, sizeof(prefix), "%.24s-", kind);
	while (d && (de = readdir(d)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0 && (len = strlen(de->d_name)) > 5 &&
		     strcmp(de->d_name + len - 5, ".lock") != 0;
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	if (dir >= 0)
		close(dir);
	return n;
}

void kc_cache_prune(const char *kind, const char *keep_key, bool (*stale)(const char *data, size_t len))
{
	char keep[96], prefix[32];
	struct kc_err e;
	int dir = open_dir(&e), fd = dir >= 0 ? openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	entry_name(kind, keep_key, "", keep);
	snprintf(prefix, sizeof(prefix), "%.24s-", kind);
	while (d && (de = readdir(d))) {
		kc_autobuf struct kc_buf data = { 0 };
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || len < 5 ||
		    strcmp(de->d_name + len - 5, ".lock") == 0 || strcmp(de->d_name, keep) == 0)
			continue;
		if (kc_read_at(dir, de->d_name, KC_CACHE_ENTRY_MAX, &data, NULL, &e) == 0 &&
		    stale(data.data ? data.data : "", data.len))
			unlinkat(dir, de->d_name, 0);
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	if (dir >= 0)
		close(dir);
}

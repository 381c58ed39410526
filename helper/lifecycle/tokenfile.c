/* Token files under /run/pam_kubeconfig (see lifecycle/tokenfile.h). */
#include "lifecycle/tokenfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/fileio.h"

void kc_tokenfile_path(uid_t uid, const char *cluster, char *out, size_t len)
{
	snprintf(out, len, "%s/%u/%s.token", KC_RUN_DIR, (unsigned)uid, cluster);
}

/* A directory of root's with exactly this mode, made if missing; never a link.
 * A wrong mode is put right: it is ours, and only root could have changed it. */
static int root_dir_at(int parent, const char *name, mode_t mode, bool create, struct kc_err *err)
{
	struct stat st;
	int fd;

	if (create && mkdirat(parent, name, mode) < 0 && errno != EEXIST)
		return kc_seterr(err, "cannot create %s: %s", name, strerror(errno)), -1;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && !create ? KC_ABSENT
						  : (kc_seterr(err, "cannot open %s: %s", name, strerror(errno)), -1);
	if (fstat(fd, &st) < 0 || st.st_uid != 0) {
		close(fd);
		return kc_seterr(err, "%s is not owned by root; refusing to write tokens there", name), -1;
	}
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) {
		close(fd);
		return kc_seterr(err, "cannot set the mode of %s: %s", name, strerror(errno)), -1;
	}
	return fd;
}

static int user_dir(uid_t uid, bool create, struct kc_err *err)
{
	char name[16];
	int top, fd;

	if (create)
		mkdir(KC_RUN_DIR, 0755);
	top = root_dir_at(AT_FDCWD, KC_RUN_DIR, 0755, false, err);
	if (top < 0)
		return top;
	snprintf(name, sizeof(name), "%u", (unsigned)uid);
	fd = root_dir_at(top, name, 0711, create, err);
	close(top);
	return fd;
}

static void token_name(const char *cluster, char *out, size_t len)
{
	snprintf(out, len, "%s.token", cluster);
}

int kc_tokenfile_write(uid_t uid, gid_t gid, const char *cluster, const char *token, size_t len, struct kc_err *err)
{
	/* Not synced: a crash of the machine ends every session it serves (and
	 * /run is a tmpfs on most hosts, where fsync does nothing). */
	const struct kc_write_opts o = { .mode = 0400, .uid = uid, .gid = gid, .sync = KC_SYNC_NONE };
	char name[128];
	int rc = -1;

	token_name(cluster, name, sizeof(name));
	/* A gc removing an empty directory at this moment: make it again, once. */
	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		kc_autoclose int dir = user_dir(uid, true, err);

		if (dir < 0)
			return -1;
		rc = kc_write_at(dir, name, token, len, &o, err);
	}
	return rc;
}

int kc_tokenfile_put(uid_t uid, gid_t gid, const char *name, const void *data, size_t len, struct kc_err *err)
{
	const struct kc_write_opts o = { .mode = 0400, .uid = uid, .gid = gid, .sync = KC_SYNC_NONE };
	int rc = -1;

	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		kc_autoclose int dir = user_dir(uid, true, err);

		if (dir < 0)
			return -1;
		rc = kc_write_at(dir, name, data, len, &o, err);
	}
	return rc;
}

void kc_tokenfile_unlink(uid_t uid, const char *name)
{
	struct kc_err e;
	kc_autoclose int dir = user_dir(uid, false, &e);

	if (dir >= 0)
		unlinkat(dir, name, 0);
}

bool kc_tokenfile_dir_exists(uid_t uid)
{
	struct kc_err e;
	kc_autoclose int dir = user_dir(uid, false, &e);

	return dir >= 0;
}

bool kc_tokenfile_exists(uid_t uid, const char *cluster)
{
	char name[128];
	struct kc_err e;
	struct stat st;
	kc_autoclose int dir = user_dir(uid, false, &e);

	token_name(cluster, name, sizeof(name));
	return dir >= 0 && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       st.st_uid == uid && st.st_size > 0;
}

void kc_tokenfile_remove(uid_t uid, const char *cluster)
{
	char name[128];
	struct kc_err e;
	kc_autoclose int dir = user_dir(uid, false, &e);

	token_name(cluster, name, sizeof(name));
	if (dir >= 0)
		unlinkat(dir, name, 0);
}

void kc_tokenfile_prune(uid_t uid)
{
	char name[16];
	struct kc_err e;
	kc_autoclose int top = root_dir_at(AT_FDCWD, KC_RUN_DIR, 0755, false, &e);

	snprintf(name, sizeof(name), "%u", (unsigned)uid);
	if (top >= 0)
		unlinkat(top, name, AT_REMOVEDIR); /* fails while a token file is left */
}

int kc_tokenfile_uids(uid_t **uids, size_t *n)
{
	struct kc_err e;

	return kc_list_uid_dirs(KC_RUN_DIR, uids, n, &e);
}

int kc_tokenfile_on_tmpfs(void)
{
	struct statfs fs;

	if (statfs(KC_RUN_DIR, &fs) < 0 && statfs("/run", &fs) < 0)
		return -1;
	return fs.f_type == TMPFS_MAGIC ? 1 : 0;
}

void kc_tokenfile_remove_all(uid_t uid)
{
	struct kc_err e;
	int dir = user_dir(uid, false, &e);
	DIR *d;
	struct dirent *de;

	if (dir < 0)
		return;
	d = fdopendir(dir);
	if (!d) {
		close(dir);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	kc_tokenfile_prune(uid);
}

int kc_tokenfile_read(uid_t uid, const char *cluster, struct kc_buf *out)
{
	char name[128];
	struct kc_err e;
	kc_autoclose int dir = user_dir(uid, false, &e);

	token_name(cluster, name, sizeof(name));
	out->secret = true;
	if (dir < 0 || kc_read_at(dir, name, 64u << 10, out, NULL, &e) != 0)
		return -1;
	while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
		out->data[--out->len] = '\0';
	return out->len ? 0 : -1;
}

/* The user's home, fd-relative: no step follows a link, every directory on the
 * way must be the user's own and not writable by others. */
#include "asuser/home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_dir(int fd, uid_t uid, const char *what, struct kc_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return kc_seterr(err, "cannot stat %s: %s", what, strerror(errno)), -1;
	if (st.st_uid != uid)
		return kc_seterr(err, "%s is owned by uid %u, not by the user (%u); refusing to write there", what,
				 (unsigned)st.st_uid, (unsigned)uid),
		       -1;
	if (st.st_mode & 022)
		return kc_seterr(err, "%s is writable by group or others (mode %04o); run chmod go-w on it", what,
				 (unsigned)(st.st_mode & 07777)),
		       -1;
	return 0;
}

/* O_NOFOLLOW|O_DIRECTORY fails on a symlink with ELOOP or ENOTDIR: tell which. */
static bool is_symlink_at(int dir, const char *name)
{
	struct stat st;

	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int kc_home_open(const struct kc_user *u, struct kc_err *err)
{
	int fd;

	if (!u->home[0] || u->home[0] != '/' || strcmp(u->home, "/") == 0) {
		kc_seterr(err, "the home directory '%s' is not an absolute path of its own; no kubeconfig written",
			  u->home);
		return -1;
	}
	fd = open(u->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;

		kc_seterr(err, "cannot open the home directory %s: %s", u->home,
			  is_symlink_at(AT_FDCWD, u->home) ? "it is a symbolic link" : strerror(saved));
		return -1;
	}
	if (check_dir(fd, u->uid, u->home, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_step(int dir, const char *comp, const char *shown, bool create, struct kc_err *err)
{
	int next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (next < 0 && errno == ENOENT && create) {
		if (mkdirat(dir, comp, 0700) < 0 && errno != EEXIST)
			return kc_seterr(err, "cannot create %s: %s", shown, strerror(errno)), -1;
		next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next >= 0 && fchmod(next, 0700) < 0) {
			kc_seterr(err, "cannot chmod %s: %s", shown, strerror(errno));
			close(next);
			return -1;
		}
	}
	if (next >= 0)
		return next;
	if (errno == ENOENT && !create)
		return KC_ABSENT;
	if (is_symlink_at(dir, comp))
		kc_seterr(err, "%s is a symbolic link; refusing to follow it (remove it and log in again)", shown);
	else if (errno == ENOTDIR)
		kc_seterr(err, "%s is not a directory; move it away and log in again", shown);
	else
		kc_seterr(err, "cannot open %s: %s", shown, strerror(errno));
	return -1;
}

int kc_home_parent(int home_fd, uid_t uid, const char *relpath, bool create, const char **leaf, struct kc_err *err)
{
	int dir = dup(home_fd);
	const char *p = relpath;
	char comp[256], shown[512];

	if (dir < 0)
		return kc_seterr(err, "dup: %s", strerror(errno)), -1;
	for (;;) {
		size_t n = strcspn(p, "/");
		int next;

		if (p[n] == '\0') {
			*leaf = p;
			return dir;
		}
		if (n == 0 || n >= sizeof(comp)) {
			kc_seterr(err, "bad path ~/%s", relpath);
			close(dir);
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		snprintf(shown, sizeof(shown), "~/%.*s", (int)(p - relpath + n), relpath);
		next = open_step(dir, comp, shown, create, err);
		close(dir);
		if (next < 0)
			return next;
		dir = next;
		if (check_dir(dir, uid, shown, err) < 0) {
			close(dir);
			return -1;
		}
		p += n + 1;
	}
}

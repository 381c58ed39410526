/* The metrics' textfile, written safely into node_exporter's directory (see
 * lifecycle/metrics_textfile.h). */
#include "lifecycle/metrics_textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

/* One directory of the walk, on its fd: walked is its path so far. */
static int check_dir(int fd, const char *walked, bool last, const char *path, struct kc_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return kc_seterr(err, "metrics.textfile_dir %s: cannot stat %s: %s", path, walked, strerror(errno)), -1;
	if (st.st_mode & 022)
		return kc_seterr(err,
				 "metrics.textfile_dir %s: %s is writable by group or others (mode %04o); it must be "
				 "writable by its owner alone (chmod go-w %s)",
				 path, walked, (unsigned)(st.st_mode & 07777), walked),
		       -1;
	if (last && st.st_uid != 0)
		return kc_seterr(err,
				 "metrics.textfile_dir %s: the directory is owned by uid %u; it must be root's (chown "
				 "root %s)",
				 path, (unsigned)st.st_uid, path),
		       -1;
	return 0;
}

/* Why openat(dir, name, O_NOFOLLOW | O_DIRECTORY) failed, in words. */
static void open_failed(int dir, const char *name, const char *walked, const char *path, struct kc_err *err)
{
	int e = errno;
	struct stat st;

	if ((e == ELOOP || e == ENOTDIR) && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		kc_seterr(err,
			  "metrics.textfile_dir %s: %s is a symbolic link; not followed (name the real directory, "
			  "with no link on the way)",
			  path, walked);
	else if (e == ENOTDIR || e == ELOOP)
		kc_seterr(err, "metrics.textfile_dir %s: %s is not a directory", path, walked);
	else if (e == ENOENT)
		kc_seterr(err, "metrics.textfile_dir %s: %s does not exist (is node_exporter installed?)", path,
			  walked);
	else
		kc_seterr(err, "metrics.textfile_dir %s: cannot open %s: %s", path, walked, strerror(e));
}

int kc_metrics_textfile_open_dir(const char *path, struct kc_err *err)
{
	char copy[PATH_MAX], walked[PATH_MAX] = "";
	char *save = NULL, *comp, *next_comp;
	size_t off = 0;
	int fd, next;

	if (!path || path[0] != '/' || strlen(path) >= sizeof(copy))
		return kc_seterr(err, "metrics.textfile_dir %s must be an absolute path", path ? path : "(none)"), -1;
	snprintf(copy, sizeof(copy), "%s", path);
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kc_seterr(err, "cannot open /: %s", strerror(errno)), -1;
	comp = strtok_r(copy, "/", &save);
	if (check_dir(fd, "/", !comp, path, err) < 0)
		goto fail;
	for (; comp; comp = next_comp) {
		next_comp = strtok_r(NULL, "/", &save);
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			kc_seterr(err, "metrics.textfile_dir %s must not have . or .. components", path);
			goto fail;
		}
		off += (size_t)snprintf(walked + off, sizeof(walked) - off, "/%s", comp);
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			open_failed(fd, comp, walked, path, err);
			goto fail;
		}
		close(fd);
		fd = next;
		if (check_dir(fd, walked, !next_comp, path, err) < 0)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int kc_metrics_textfile_write(const char *path, const void *data, size_t len, struct kc_err *err)
{
	/* The file's bytes are synced before the rename: a crash never leaves the
	 * collector an empty or partial file to report as a scrape error. */
	const struct kc_write_opts o = { .mode = 0644, .uid = 0, .gid = 0, .sync = KC_SYNC_FILE };
	kc_autoclose int dir = kc_metrics_textfile_open_dir(path, err);
	struct kc_err e;

	if (dir < 0)
		return -1;
	if (kc_write_at(dir, KC_METRICS_TEXTFILE, data, len, &o, &e) != 0)
		return kc_seterr(err, "metrics.textfile_dir %s: %s", path, e.msg), -1;
	return 0;
}

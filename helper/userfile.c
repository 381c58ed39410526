/* Drop to the user, then write or remove ~/.kube/config-eks fd-relative and
 * atomically. The writer process never holds more than this user's file. */
#include "kc_userfile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kc_kubeconfig.h"

#define MSG_MAX (8u << 20)

enum { OP_WRITE = 'W', OP_REMOVE = 'R' };

/* ---- the work, done as the user --------------------------------------- */

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

static int open_home(const char *home, uid_t uid, struct kc_err *err)
{
	int fd;

	if (!home[0] || home[0] != '/' || strcmp(home, "/") == 0) {
		kc_seterr(err, "the home directory '%s' is not an absolute path of its own; no kubeconfig written",
			  home);
		return -1;
	}
	fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;

		kc_seterr(err, "cannot open the home directory %s: %s", home,
			  is_symlink_at(AT_FDCWD, home) ? "it is a symbolic link" : strerror(saved));
		return -1;
	}
	if (check_dir(fd, uid, home, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Walks to the directory holding the file, creating missing ones (0700) when
 * create is set. Returns its fd and points *leaf at the file name. */
static int open_parent(int home_fd, uid_t uid, const char *relpath, bool create, const char **leaf, struct kc_err *err)
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
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		snprintf(shown, sizeof(shown), "~/%.*s", (int)(p - relpath + n), relpath);
		next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(dir, comp, 0700) < 0 && errno != EEXIST) {
				kc_seterr(err, "cannot create %s: %s", shown, strerror(errno));
				goto fail;
			}
			next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0 && fchmod(next, 0700) < 0) {
				kc_seterr(err, "cannot chmod %s: %s", shown, strerror(errno));
				close(next);
				goto fail;
			}
		}
		if (next < 0) {
			if (errno == ENOENT && !create) {
				close(dir);
				*leaf = NULL;
				return -2; /* nothing there: nothing to remove */
			}
			if (is_symlink_at(dir, comp))
				kc_seterr(err,
					  "%s is a symbolic link; refusing to follow it (remove it and log in again)",
					  shown);
			else if (errno == ENOTDIR)
				kc_seterr(err, "%s is not a directory; move it away and log in again", shown);
			else
				kc_seterr(err, "cannot open %s: %s", shown, strerror(errno));
			goto fail;
		}
		close(dir);
		dir = next;
		if (check_dir(dir, uid, shown, err) < 0)
			goto fail;
		p += n + 1;
	}
fail:
	close(dir);
	return -1;
}

static int userfile_write(const char *home, uid_t uid, const char *relpath, const char *data, size_t len,
			  struct kc_err *err)
{
	kc_autoclose int home_fd = -1, dir = -1, fd = -1;
	const char *leaf = NULL;
	char tmp[300];
	unsigned char rnd[8];

	home_fd = open_home(home, uid, err);
	if (home_fd < 0)
		return -1;
	dir = open_parent(home_fd, uid, relpath, true, &leaf, err);
	if (dir < 0)
		return -1;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return kc_seterr(err, "getrandom failed"), -1;
	snprintf(tmp, sizeof(tmp), ".%.200s.%02x%02x%02x%02x%02x%02x%02x%02x", leaf, rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_seterr(err, "cannot create a file in the directory of ~/%s: %s", relpath, strerror(errno)),
		       -1;
	/* Exactly 0600 whatever the umask. */
	if (fchmod(fd, 0600) < 0 || kc_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		kc_seterr(err, "cannot write ~/%s: %s", relpath, strerror(errno));
		goto fail;
	}
	{
		int closed = close(fd);

		fd = -1; // NOLINT(clang-analyzer-deadcode.DeadStores): read by kc_autoclose
		if (closed < 0) {
			kc_seterr(err, "cannot write ~/%s: %s", relpath, strerror(errno));
			goto fail;
		}
	}
	if (renameat(dir, tmp, dir, leaf) < 0) {
		kc_seterr(err, "cannot replace ~/%s: %s%s", relpath, strerror(errno),
			  errno == EISDIR ? " (it is a directory; move it away)" : "");
		goto fail;
	}
	fsync(dir);
	return 0;
fail:
	unlinkat(dir, tmp, 0);
	return -1;
}

static int userfile_remove(const char *home, uid_t uid, const char *relpath, const char *host_id, struct kc_err *err)
{
	kc_autoclose int home_fd = -1, dir = -1, fd = -1;
	const char *leaf = NULL;
	char head[4096], found[128];
	struct stat st;
	ssize_t n;

	home_fd = open_home(home, uid, err);
	if (home_fd < 0)
		return -1;
	dir = open_parent(home_fd, uid, relpath, false, &leaf, err);
	if (dir == -2)
		return 0;
	if (dir < 0)
		return -1;
	fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return kc_seterr(err, "cannot open ~/%s: %s", relpath, strerror(errno)), -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return kc_seterr(err, "~/%s is not a regular file; left alone", relpath), 1;
	n = kc_read_all(fd, head, sizeof(head) - 1);
	if (n < 0)
		return kc_seterr(err, "cannot read ~/%s: %s", relpath, strerror(errno)), -1;
	head[n] = '\0';
	if (kc_kubeconfig_host_id(head, (size_t)n, found, sizeof(found)) < 0 || strcmp(found, host_id) != 0) {
		kc_seterr(err, "~/%s was not written by this host; left alone", relpath);
		return 1;
	}
	if (unlinkat(dir, leaf, 0) < 0)
		return kc_seterr(err, "cannot remove ~/%s: %s", relpath, strerror(errno)), -1;
	fsync(dir);
	return 0;
}

/* ---- the process ------------------------------------------------------ */

static int read_msg(int fd, struct kc_buf *b)
{
	uint32_t len;

	if (kc_read_all(fd, &len, sizeof(len)) != sizeof(len) || len > MSG_MAX)
		return -1;
	b->len = 0;
	if (len == 0)
		return kc_buf_append(b, "", 0);
	{
		char chunk[4096];
		uint32_t left = len;

		while (left > 0) {
			uint32_t want = left < sizeof(chunk) ? left : (uint32_t)sizeof(chunk);
			ssize_t n = kc_read_all(fd, chunk, want);

			if (n != (ssize_t)want || kc_buf_append(b, chunk, want) < 0) {
				explicit_bzero(chunk, sizeof(chunk));
				return -1;
			}
			left -= want;
		}
		explicit_bzero(chunk, sizeof(chunk));
	}
	return 0;
}

static int write_msg(int fd, const void *data, size_t len)
{
	uint32_t n = (uint32_t)len;

	return (kc_write_all(fd, &n, sizeof(n)) < 0 || kc_write_all(fd, data, len) < 0) ? -1 : 0;
}

int kc_drop_privileges(const struct kc_identity *id)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (id->uid == 0)
		return -1;
	if (initgroups(id->name, id->gid) < 0 || setresgid(id->gid, id->gid, id->gid) < 0 ||
	    setresuid(id->uid, id->uid, id->uid) < 0)
		return -1;
	if (getresuid(&r, &e, &s) < 0 || r != id->uid || e != id->uid || s != id->uid)
		return -1;
	if (getresgid(&rg, &eg, &sg) < 0 || rg != id->gid || eg != id->gid || sg != id->gid)
		return -1;
	if (setresuid(0, 0, 0) == 0 || setegid(0) == 0 || seteuid(0) == 0)
		return -1;
	/* and no supplementary group of root's survived */
	{
		gid_t groups[256];
		int n = getgroups(256, groups);

		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++)
			if (groups[i] == 0)
				return -1;
	}
	return 0;
}

/* Nothing the helper had open reaches the user's process: only the two pipes
 * and stderr stay. */
static void close_inherited(int in, int out)
{
	int lo = in < out ? in : out, hi = in < out ? out : in;

	close_range(3, (unsigned)lo - 1, 0);
	close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

static void writer_main(const struct kc_identity *id, int in, int out)
{
	struct kc_buf op = { 0 }, path = { 0 }, aux = { 0 }, data = { .secret = true };
	struct kc_err err;

	close_inherited(in, out);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	umask(077);
	/* stdout belongs to the helper's answer to the module; the writer has none. */
	{
		int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null_fd >= 0) {
			dup2(null_fd, STDOUT_FILENO);
			close(null_fd);
		}
	}
	if (kc_drop_privileges(id) < 0) {
		const char msg[] = "cannot drop privileges to the user; nothing written";
		char status = 1;

		kc_write_all(out, &status, 1);
		write_msg(out, msg, sizeof(msg) - 1);
		_exit(1);
	}
	{
		char status = 0;

		if (kc_write_all(out, &status, 1) < 0 || write_msg(out, "", 0) < 0)
			_exit(1);
	}
	while (read_msg(in, &op) == 0 && read_msg(in, &path) == 0 && read_msg(in, &aux) == 0 &&
	       read_msg(in, &data) == 0) {
		int rc;
		char status;

		err.msg[0] = '\0';
		if (op.len == 1 && op.data[0] == OP_WRITE)
			rc = userfile_write(id->home, id->uid, path.data, data.data, data.len, &err);
		else if (op.len == 1 && op.data[0] == OP_REMOVE)
			rc = userfile_remove(id->home, id->uid, path.data, aux.data, &err);
		else
			rc = -1, kc_seterr(&err, "bad request");
		kc_buf_free(&data);
		data.secret = true;
		status = rc < 0 ? 1 : rc == 1 ? 2 : 0;
		if (kc_write_all(out, &status, 1) < 0 || write_msg(out, err.msg, strlen(err.msg)) < 0)
			break;
	}
	kc_buf_free(&data);
	_exit(0);
}

static int read_reply(struct kc_writer *w, struct kc_err *err)
{
	char status;
	kc_autobuf struct kc_buf msg = { 0 };

	if (kc_read_all(w->from_child, &status, 1) != 1 || read_msg(w->from_child, &msg) < 0) {
		kc_seterr(err, "the writer process ended unexpectedly");
		return -1;
	}
	if (status != 0)
		kc_seterr(err, "%s", msg.data ? msg.data : "writer failed");
	return status == 0 ? 0 : status == 2 ? 1 : -1;
}

int kc_writer_start(const struct kc_identity *id, struct kc_writer *w, struct kc_err *err)
{
	int down[2], up[2];

	w->pid = -1;
	w->to_child = w->from_child = -1;
	if (id->uid == 0) {
		kc_seterr(err, "refusing to write for root");
		return -1;
	}
	if (pipe2(down, O_CLOEXEC) < 0)
		return kc_seterr(err, "pipe: %s", strerror(errno)), -1;
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]);
		close(down[1]);
		return kc_seterr(err, "pipe: %s", strerror(errno)), -1;
	}
	w->pid = fork();
	if (w->pid < 0) {
		kc_seterr(err, "fork: %s", strerror(errno));
		close(down[0]), close(down[1]), close(up[0]), close(up[1]);
		return -1;
	}
	if (w->pid == 0) {
		close(down[1]);
		close(up[0]);
		writer_main(id, down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	w->to_child = down[1];
	w->from_child = up[0];
	if (read_reply(w, err) != 0) {
		kc_writer_finish(w);
		return -1;
	}
	return 0;
}

static int request(struct kc_writer *w, char op, const char *path, const char *aux, const void *data, size_t len,
		   struct kc_err *err)
{
	if (w->pid <= 0) {
		kc_seterr(err, "no writer process");
		return -1;
	}
	if (write_msg(w->to_child, &op, 1) < 0 || write_msg(w->to_child, path, strlen(path)) < 0 ||
	    write_msg(w->to_child, aux, strlen(aux)) < 0 || write_msg(w->to_child, data, len) < 0) {
		kc_seterr(err, "the writer process ended unexpectedly");
		return -1;
	}
	return read_reply(w, err);
}

int kc_writer_write(struct kc_writer *w, const char *relpath, const struct kc_buf *data, struct kc_err *err)
{
	return request(w, OP_WRITE, relpath, "", data->data, data->len, err);
}

int kc_writer_remove(struct kc_writer *w, const char *relpath, const char *host_id, struct kc_err *err)
{
	return request(w, OP_REMOVE, relpath, host_id, "", 0, err);
}

void kc_writer_finish(struct kc_writer *w)
{
	if (w->to_child >= 0)
		close(w->to_child);
	if (w->from_child >= 0)
		close(w->from_child);
	w->to_child = w->from_child = -1;
	if (w->pid > 0) {
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	w->pid = -1;
}

/* The root ledger (see lifecycle/ledger.h): the line format and the append
 * under its lock. The reader is ledger_read.c. */
#include "lifecycle/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

static const char *ledger_dir = KC_LEDGER_DIR;

static const char *const event_names[KC_LEDGER_N_EVENTS] = {
	[KC_LEDGER_MINT] = "mint",
	[KC_LEDGER_ROTATION] = "rotation",
	[KC_LEDGER_REMAP] = "remap",
	[KC_LEDGER_REVOKE] = "revoke",
	[KC_LEDGER_REVOKE_FAILED] = "revoke-failed",
	[KC_LEDGER_CUT] = "cut",
	[KC_LEDGER_LOCK] = "lock",
	[KC_LEDGER_UNLOCK] = "unlock",
	[KC_LEDGER_LOGIN] = "login",
	[KC_LEDGER_LOGOUT] = "logout",
};

void kc_ledger_use_dir(const char *dir)
{
	ledger_dir = dir ? dir : KC_LEDGER_DIR;
}

const char *kc_ledger_dir(void)
{
	return ledger_dir;
}

const char *kc_ledger_event_name(enum kc_ledger_event ev)
{
	return (unsigned)ev < KC_LEDGER_N_EVENTS ? event_names[ev] : NULL;
}

int kc_ledger_event_parse(const char *name)
{
	for (int i = 0; i < KC_LEDGER_N_EVENTS; i++)
		if (name && strcmp(name, event_names[i]) == 0)
			return i;
	return -1;
}

/* ---- the line ------------------------------------------------------------------ */

/* A string value; bytes of invalid UTF-8 become '?' rather than lose the line. */
static json_t *text(const char *s)
{
	json_t *v = json_string(s);
	char *copy;

	if (v)
		return v;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *time_value(time_t t)
{
	char buf[32];

	kc_format_time(t, buf, sizeof(buf));
	return json_string(buf);
}

/* Sets key unless s is NULL; -1 when memory runs out. */
static int put_text(json_t *o, const char *key, const char *s)
{
	return !s ? 0 : json_object_set_new(o, key, text(s));
}

static json_t *sessions_value(const struct kc_ledger_session *s, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *one = json_object();

		if (!one || put_text(one, "id", s[i].id ? s[i].id : "-") < 0 ||
		    put_text(one, "rhost", s[i].rhost ? s[i].rhost : "-") < 0 || json_array_append_new(a, one) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int put_fields(json_t *o, const struct kc_ledger_entry *e)
{
	char host[256] = "-";
	int rc = 0;

	if (!e->host && gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "-");
	rc |= json_object_set_new(o, "time", time_value(e->time ? e->time : time(NULL)));
	rc |= put_text(o, "host", e->host ? e->host : host);
	rc |= put_text(o, "event", kc_ledger_event_name(e->event));
	rc |= put_text(o, "user", e->user);
	if (e->user && e->uid != (uid_t)-1)
		rc |= json_object_set_new(o, "uid", json_integer((json_int_t)e->uid));
	if (e->n_sessions)
		rc |= json_object_set_new(o, "sessions", sessions_value(e->sessions, e->n_sessions));
	rc |= put_text(o, "cluster", e->cluster);
	rc |= put_text(o, "serviceaccount", e->serviceaccount);
	rc |= put_text(o, "secret", e->secret);
	rc |= put_text(o, "jti", e->jti);
	if (e->exp)
		rc |= json_object_set_new(o, "exp", time_value(e->exp));
	rc |= put_text(o, "reason", e->reason);
	return rc ? -1 : 0;
}

static int dump_to_buf(const char *data, size_t len, void *arg)
{
	return kc_buf_append(arg, data, len);
}

int kc_ledger_format(const struct kc_ledger_entry *e, struct kc_buf *out, struct kc_err *err)
{
	json_t *o = json_object(), *v;
	const char *key;
	int rc = -1;

	if (!kc_ledger_event_name(e->event))
		return kc_seterr(err, "ledger: unknown event %d", (int)e->event), json_decref(o), -1;
	if (!o || put_fields(o, e) < 0) {
		kc_seterr(err, "ledger: out of memory");
		goto out;
	}
	if (e->detail && !json_is_object(e->detail)) {
		kc_seterr(err, "ledger: the detail of a line must be an object");
		goto out;
	}
	json_object_foreach(e->detail, key, v)
	{
		if (json_object_get(o, key)) {
			kc_seterr(err, "ledger: detail key %s is one of the line's own", key);
			goto out;
		}
		if (json_object_set(o, key, v) < 0) {
			kc_seterr(err, "ledger: out of memory");
			goto out;
		}
	}
	/* Compact: no newline inside a line (jansson escapes those in strings). */
	if (json_dump_callback(o, dump_to_buf, out, JSON_COMPACT) < 0 || kc_buf_puts(out, "\n") < 0) {
		kc_seterr(err, "ledger: cannot format the line");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ---- the append ---------------------------------------------------------------- */

/* The ledger's directory, made when missing (its parent must exist): root's,
 * 0700 or 0750. */
static int open_dir(const char *path, struct kc_err *err)
{
	struct stat st;
	int fd, e;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return kc_seterr(err, "cannot create %s: %s", path, strerror(errno)), -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		kc_seterr(err, "cannot open %s: %s", path,
			  e == ELOOP || e == ENOTDIR ? "not a directory (a symbolic link?)" : strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 027)) {
		kc_seterr(err,
			  "%s must be a directory owned by root with mode 0700 or 0750 (chown root %s; chmod 0700 %s)",
			  path, path, path);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* The append lock, waited for until the deadline: only root's helpers take
 * it, each for one write and fsync. */
static int lock_ledger(int dir, long long deadline_ms, struct kc_err *err)
{
	int fd = openat(dir, KC_LEDGER_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return kc_seterr(err, "cannot open the ledger's lock: %s", strerror(errno)), -1;
	if (kc_flock_until(fd, LOCK_EX, deadline_ms) < 0) {
		int e = errno;

		if (e == ETIMEDOUT)
			kc_seterr(err, "the ledger's lock is still held by another helper; the line is not written");
		else
			kc_seterr(err, "cannot lock the ledger: %s", strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Opens the ledger for appending, made when missing (logrotate renamed it,
 * or `create` is racing us): *made says so, for the directory's fsync. */
static int open_ledger(int dir, bool *made, struct kc_err *err)
{
	struct stat st;
	int fd = -1;

	*made = false;
	for (int tries = 0; fd < 0 && tries < 3; tries++) {
		fd = openat(dir, KC_LEDGER_NAME, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == ENOENT) {
			fd = openat(dir, KC_LEDGER_NAME, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				    0600);
			*made = fd >= 0;
		}
		if (fd < 0 && errno != ENOENT && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = errno;

		kc_seterr(err, "cannot open the ledger %s/%s: %s", ledger_dir, KC_LEDGER_NAME, strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
		kc_seterr(err, "the ledger %s/%s must be a regular file owned by root with mode 0600", ledger_dir,
			  KC_LEDGER_NAME);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Under the lock: no other writer moves the end of the file meanwhile. */
static int append_locked(int dir, const struct kc_buf *line, bool sync, struct kc_err *err)
{
	bool made;
	int fd = open_ledger(dir, &made, err), e;
	struct stat st;
	const char *p = line->data + 1; /* line->data[0] is a '\n' for a torn tail */
	size_t len = line->len - 1;
	int n;
	char last = '\n';

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1))
		goto fail;
	if (last != '\n')
		p--, len++;
	/* One write() of the whole line; a short one (the disk or a quota full)
	 * is carried on, so that errno says why it stopped. */
	n = kc_write_all(fd, p, len, 0);
	/* The line and the file's new size must survive a crash before the mint
	 * it records is handed out; a new file's name too. */
	if (n < 0 || (sync && fsync(fd) < 0) || (sync && made && fsync(dir) < 0)) {
		e = errno;
		if (ftruncate(fd, st.st_size) == 0)
			fsync(fd); /* cut back: no partial line stays behind */
		errno = e;
		goto fail;
	}
	if (close(fd) < 0)
		return kc_seterr(err, "cannot write the ledger: %s", strerror(errno)), -1;
	return 0;
fail:
	e = errno;
	kc_seterr(err, "cannot write the ledger %s/%s: %s", ledger_dir, KC_LEDGER_NAME, strerror(e));
	close(fd);
	errno = e;
	return -1;
}

int kc_ledger_append(const struct kc_ledger_entry *e, long long deadline_ms, struct kc_err *err)
{
	kc_autobuf struct kc_buf line = { 0 };
	int dir, lock, rc, saved;

	if (kc_buf_puts(&line, "\n") < 0) {
		errno = ENOMEM;
		return kc_seterr(err, "ledger: out of memory"), -1;
	}
	if (kc_ledger_format(e, &line, err) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (line.len - 1 > KC_LEDGER_LINE_MAX) {
		errno = EMSGSIZE;
		return kc_seterr(err, "ledger: a line of %zu bytes is more than the %u allowed", line.len - 1,
				 KC_LEDGER_LINE_MAX),
		       -1;
	}
	dir = open_dir(ledger_dir, err);
	if (dir < 0)
		return -1;
	lock = lock_ledger(dir, deadline_ms, err);
	if (lock < 0) {
		saved = errno;
		close(dir);
		errno = saved;
		return -1;
	}
	rc = append_locked(dir, &line, !e->unsynced, err);
	saved = errno;
	close(lock);
	close(dir);
	errno = saved;
	return rc;
}

/* Reading the root ledger back (see lifecycle/ledger.h): `audit` trusts these
 * records, which only root can have written. */
#include "lifecycle/ledger_read.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/subprocess.h"

#define GZIP "/bin/gzip"
#define GZIP_TIMEOUT_MS 120000
#define ROTATIONS_MAX 10000 /* files looked at beside the ledger */

/* ---- the reader ---------------------------------------------------------------- */

struct reader {
	kc_ledger_visit fn;
	void *arg;
	struct kc_ledger_stats *stats;
	const char *file; /* the one being read */
	char *buf; /* the line being gathered: KC_LEDGER_LINE_MAX bytes at most */
	size_t len, lineno;
	bool overlong; /* the line went past the cap: skipped to its end */
};

static int opt_string(json_t *o, const char *key, const char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

static int opt_time(json_t *o, const char *key, time_t *out)
{
	const char *s;

	*out = 0;
	if (opt_string(o, key, &s) < 0)
		return -1;
	return s && kc_parse_time(s, out) != 0 ? -1 : 0;
}

static int sessions_of(json_t *o, struct kc_ledger_entry *e, struct kc_ledger_session **out)
{
	json_t *a = json_object_get(o, "sessions"), *one;
	size_t i;

	*out = NULL;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return -1;
	if (!json_array_size(a))
		return 0;
	*out = calloc(json_array_size(a), sizeof(**out));
	if (!*out)
		return -1;
	json_array_foreach(a, i, one)
	{
		if (!json_is_object(one) || opt_string(one, "id", &(*out)[i].id) < 0 || !(*out)[i].id ||
		    opt_string(one, "rhost", &(*out)[i].rhost) < 0)
			return -1;
	}
	e->sessions = *out;
	e->n_sessions = json_array_size(a);
	return 0;
}

/* A line's object as an entry, or -1 when it is not a record. */
static int entry_of(json_t *o, struct kc_ledger_entry *e, struct kc_ledger_session **sessions)
{
	const char *event;
	json_t *uid = json_object_get(o, "uid");
	int ev;

	*e = (struct kc_ledger_entry){ .uid = (uid_t)-1, .detail = o };
	*sessions = NULL;
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "time")) || opt_time(o, "time", &e->time) < 0 ||
	    opt_string(o, "host", &e->host) < 0 || !e->host || opt_string(o, "event", &event) < 0 ||
	    (ev = kc_ledger_event_parse(event)) < 0)
		return -1;
	e->event = (enum kc_ledger_event)ev;
	if (opt_string(o, "user", &e->user) < 0 || opt_string(o, "cluster", &e->cluster) < 0 ||
	    opt_string(o, "serviceaccount", &e->serviceaccount) < 0 || opt_string(o, "secret", &e->secret) < 0 ||
	    opt_string(o, "jti", &e->jti) < 0 || opt_string(o, "reason", &e->reason) < 0 ||
	    opt_time(o, "exp", &e->exp) < 0)
		return -1;
	if (uid && (!json_is_integer(uid) || json_integer_value(uid) < 0 || json_integer_value(uid) >= 0xffffffffLL))
		return -1;
	if (uid)
		e->uid = (uid_t)json_integer_value(uid);
	return sessions_of(o, e, sessions);
}

static int visit_line(struct reader *r)
{
	const struct kc_ledger_where w = { r->file, r->lineno };
	struct kc_ledger_session *sessions = NULL;
	struct kc_ledger_entry e;
	json_t *o = json_loadb(r->buf, r->len, JSON_REJECT_DUPLICATES, NULL);
	int rc = 0;

	if (o && entry_of(o, &e, &sessions) == 0) {
		r->stats->records++;
		rc = r->fn(&e, &w, r->arg);
	} else {
		r->stats->skipped++;
	}
	free(sessions);
	json_decref(o);
	return rc;
}

/* Gathers lines from a file's bytes, each handed on at its '\n'. */
static int feed(struct reader *r, const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		int rc = 0;

		if (!r->overlong && r->len + take > KC_LEDGER_LINE_MAX)
			r->overlong = true;
		if (!r->overlong) {
			memcpy(r->buf + r->len, data, take);
			r->len += take;
		}
		if (!nl)
			return 0;
		r->lineno++;
		if (r->overlong)
			r->stats->skipped++;
		else
			rc = visit_line(r);
		r->len = 0;
		r->overlong = false;
		if (rc)
			return rc;
		data = nl + 1;
		n -= take + 1;
	}
	return 0;
}

/* A file's end: a last line without its '\n' is torn (its write failed). */
static void finish(struct reader *r)
{
	if (r->len || r->overlong)
		r->stats->skipped++;
	r->len = 0;
	r->overlong = false;
}

static int read_plain(int fd, struct reader *r, struct kc_err *err)
{
	kc_autofree char *chunk = malloc(64u << 10);
	ssize_t n;
	int rc = 0;

	if (!chunk)
		return kc_seterr(err, "out of memory"), -1;
	while (rc == 0 && (n = read(fd, chunk, 64u << 10)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kc_seterr(err, "cannot read %s: %s", r->file, strerror(errno)), -1;
		rc = feed(r, chunk, (size_t)n);
	}
	return rc;
}

/* gzip -dc PATH into memory (zlib is not one of our libraries): the buffer
 * grows until the output fits, up to KC_LEDGER_GZ_MAX. PATH is in a
 * directory only root may write. */
static int read_gz(const char *dirpath, struct reader *r, off_t size, struct kc_err *err)
{
	static char arg0[] = "gzip", arg1[] = "-dc", arg2[] = "--";
	char path[PATH_MAX], msg[512];
	char *const argv[] = { arg0, arg1, arg2, path, NULL };
	const struct kc_subprocess p = { .path = GZIP, .argv = argv, .timeout_ms = GZIP_TIMEOUT_MS };
	size_t cap = (size_t)size < (KC_LEDGER_GZ_MAX >> 4) ? (size_t)size * 16 + (1u << 20) : KC_LEDGER_GZ_MAX + 1;
	struct kc_subprocess_output o;
	struct kc_subprocess_result res;

	if (snprintf(path, sizeof(path), "%s/%s", dirpath, r->file) >= (int)sizeof(path))
		return kc_seterr(err, "%s/%s: the path is too long", dirpath, r->file), -1;
	for (;;) {
		kc_autofree char *out = malloc(cap);
		int rc;

		if (!out)
			return kc_seterr(err, "out of memory"), -1;
		o = (struct kc_subprocess_output){ .out = out, .out_cap = cap, .err = msg, .err_cap = sizeof(msg) };
		rc = kc_subprocess_run(&p, &o, &res);
		if (rc < 0 || res.exit_status != 0) {
			msg[strcspn(msg, "\n")] = '\0';
			return kc_seterr(err, "cannot decompress %s: %s", path,
					 rc < 0		 ? strerror(res.error)
					 : res.timed_out ? "gzip timed out"
							 : msg),
			       -1;
		}
		if (o.out_overflow && cap <= KC_LEDGER_GZ_MAX) {
			cap = cap > KC_LEDGER_GZ_MAX / 4 ? KC_LEDGER_GZ_MAX + 1 : cap * 4;
			continue;
		}
		if (o.out_overflow)
			return kc_seterr(err, "%s decompresses to more than %u bytes; not read", path,
					 KC_LEDGER_GZ_MAX),
			       -1;
		return feed(r, out, o.out_len);
	}
}

/* ---- the files, oldest first ------------------------------------------------------- */

enum age { DATED, NUMBERED, CURRENT }; /* the order files are read in */

struct rotation {
	char name[NAME_MAX + 1];
	enum age age;
	long n; /* NUMBERED: N of PATH.N */
	bool gz;
};

static bool all_of(const char *s, size_t len, const char *set)
{
	return len > 0 && strspn(s, set) >= len;
}

/* Is name the ledger (base) or one of its rotations? */
static bool rotation_of(const char *base, const char *name, struct rotation *out)
{
	size_t blen = strlen(base), nlen = strlen(name), rlen;
	const char *rest = name + blen;

	if (strncmp(name, base, blen) != 0 || nlen > NAME_MAX)
		return false;
	*out = (struct rotation){ .age = CURRENT };
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (!*rest)
		return true;
	out->gz = nlen > blen + 3 && strcmp(name + nlen - 3, ".gz") == 0;
	rlen = strlen(rest) - (out->gz ? 3 : 0);
	if (rest[0] == '.' && rlen <= 8 && all_of(rest + 1, rlen - 1, "0123456789")) {
		out->age = NUMBERED;
		out->n = strtol(rest + 1, NULL, 10);
		return out->n > 0;
	}
	out->age = DATED;
	return rest[0] == '-' && all_of(rest + 1, rlen - 1, "0123456789-_");
}

static int by_age(const void *a, const void *b)
{
	const struct rotation *x = a, *y = b;

	if (x->age != y->age)
		return x->age < y->age ? -1 : 1;
	if (x->age == NUMBERED && x->n != y->n)
		return x->n > y->n ? -1 : 1;
	if (x->age == NUMBERED)
		return (int)x->gz - (int)y->gz; /* PATH.N before PATH.N.gz */
	return strcmp(x->name, y->name);
}

static int list_files(int dir, const char *base, struct rotation **out, size_t *n, struct kc_err *err)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	struct rotation one;

	*out = NULL;
	*n = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return kc_seterr(err, "cannot list the ledger's directory: %s", strerror(errno)), -1;
	}
	while ((de = readdir(d)) && *n < ROTATIONS_MAX) {
		struct rotation *more;

		if (!rotation_of(base, de->d_name, &one))
			continue;
		more = realloc(*out, (*n + 1) * sizeof(**out));
		if (!more) {
			closedir(d);
			free(*out);
			*out = NULL;
			return kc_seterr(err, "out of memory"), -1;
		}
		*out = more;
		(*out)[(*n)++] = one;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), by_age);
	return 0;
}

static int read_file(int dir, const char *dirpath, const struct rotation *f, struct reader *r, struct kc_err *err)
{
	struct stat st;
	int fd = openat(dir, f->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), rc;

	if (fd < 0 && errno == ENOENT)
		return 0; /* rotated away since the listing */
	if (fd < 0)
		return kc_seterr(err, "cannot open %s/%s: %s", dirpath, f->name, strerror(errno)), -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		kc_seterr(err, "%s/%s must be a regular file owned by root, not writable by group or others; not read",
			  dirpath, f->name);
		close(fd);
		return -1;
	}
	r->file = f->name;
	r->lineno = 0;
	r->len = 0;
	r->overlong = false;
	r->stats->files++;
	rc = f->gz ? read_gz(dirpath, r, st.st_size, err) : read_plain(fd, r, err);
	close(fd);
	if (rc == 0)
		finish(r);
	return rc;
}

/* The directory of path, checked as the writer makes it (root's, not
 * writable by others); KC_ABSENT when it does not exist. */
static int open_dir_of(const char *dirpath, struct kc_err *err)
{
	struct stat st;
	int fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return KC_ABSENT;
	if (fd < 0)
		return kc_seterr(err, "cannot open %s: %s", dirpath, strerror(errno)), -1;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		kc_seterr(err, "%s must be a directory owned by root, not writable by group or others; not read",
			  dirpath);
		close(fd);
		return -1;
	}
	return fd;
}

int kc_ledger_read(const char *path, kc_ledger_visit fn, void *arg, struct kc_ledger_stats *stats, struct kc_err *err)
{
	char dirpath[PATH_MAX], whole[PATH_MAX];
	const char *slash, *base;
	struct kc_ledger_stats local = { 0 };
	struct reader r = { .fn = fn, .arg = arg, .stats = stats ? stats : &local };
	kc_autofree struct rotation *files = NULL;
	kc_autoclose int dir = -1;
	size_t n = 0;
	int rc = 0;

	*r.stats = (struct kc_ledger_stats){ 0 };
	if (!path && snprintf(whole, sizeof(whole), "%s/%s", kc_ledger_dir(), KC_LEDGER_NAME) < (int)sizeof(whole))
		path = whole;
	slash = path ? strrchr(path, '/') : NULL;
	base = slash ? slash + 1 : path;
	if (!path || !*base || strlen(path) >= sizeof(dirpath))
		return kc_seterr(err, "ledger: %s is not a file's path", path ? path : "(too long)"), -1;
	snprintf(dirpath, sizeof(dirpath), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (slash == path)
		snprintf(dirpath, sizeof(dirpath), "/");
	dir = open_dir_of(dirpath, err);
	if (dir == KC_ABSENT)
		return 0;
	if (dir < 0 || list_files(dir, base, &files, &n, err) < 0)
		return -1;
	r.buf = malloc(KC_LEDGER_LINE_MAX + 1);
	if (!r.buf)
		return kc_seterr(err, "out of memory"), -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		/* PATH.N and PATH.N.gz both: gzip is at work on the first. */
		if (i > 0 && files[i].age == NUMBERED && files[i - 1].age == NUMBERED && files[i].n == files[i - 1].n)
			continue;
		rc = read_file(dir, dirpath, &files[i], &r, err);
	}
	free(r.buf);
	return rc;
}

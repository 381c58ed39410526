/* An administrator's locks on users (see locks.h). */
#include "lifecycle/locks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json_alloc.h"
#include "common/log.h"

#define LOCK_FILE_MAX 4096
/* kc_locks_serialize()'s: not "lock-", so kc_locks_read() passes it by. */
#define SERIAL_NAME "commands.lock"

/* lock-<sha256 of "user\ncluster">: any name fits, the file says whose it is. */
static void file_name(const char *user, const char *cluster, char *out, size_t len)
{
	kc_autobuf struct kc_buf key = { 0 };
	char hex[65];

	kc_buf_printf(&key, "%s\n%s", user, cluster ? cluster : "");
	kc_sha256_hex(key.data ? key.data : "", key.len, hex);
	snprintf(out, len, "lock-%s", hex);
}

static int parse(const char *text, size_t len, struct kc_lock *k)
{
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	const char *user = NULL, *cluster = "", *by = "";
	json_int_t since = 0, until = 0;
	int fleet = 0, rc = -1;

	memset(k, 0, sizeof(*k));
	if (j &&
	    json_unpack(j, "{s:s, s?s, s:I, s:I, s?s, s?b}", "user", &user, "cluster", &cluster, "since", &since,
			"until", &until, "by", &by, "fleet", &fleet) == 0 &&
	    *user && strlen(user) < sizeof(k->user) && strlen(cluster) < sizeof(k->cluster) && until >= 0) {
		snprintf(k->user, sizeof(k->user), "%s", user);
		snprintf(k->cluster, sizeof(k->cluster), "%s", cluster);
		snprintf(k->by, sizeof(k->by), "%s", by);
		k->since = (time_t)since;
		k->until = (time_t)until;
		k->fleet = fleet;
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static int by_user(const void *a, const void *b)
{
	const struct kc_lock *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c ? c : strcmp(x->cluster, y->cluster);
}

/* A lapsed lock goes only while no revoke or unlock is at work (one try: a
 * reader never waits for them), and only if it is still the lapsed one: a
 * revoke may have written a new lock under its name since it was read. */
static void remove_lapsed(int dir, const char *name, time_t now)
{
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_err e;
	struct kc_lock k;
	kc_autoclose int serial = kc_locks_serialize(kc_now_ms(), &e);

	if (serial >= 0 && kc_read_at(dir, name, LOCK_FILE_MAX, &text, NULL, &e) == 0 &&
	    parse(text.data, text.len, &k) == 0 && k.until && k.until <= now)
		unlinkat(dir, name, 0);
}

/* One lock file: kept when it stands; a lapsed one is removed. An unreadable
 * one stands as a lock of nobody: it is reported, never ignored silently. */
static void read_one(int dir, const char *name, time_t now, struct kc_locks *out, struct kc_buf *stamp)
{
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_lock k;
	struct kc_err e;
	struct kc_lock *more;

	if (kc_read_at(dir, name, LOCK_FILE_MAX, &text, NULL, &e) < 0 || parse(text.data, text.len, &k) < 0) {
		kc_warn("%s/%s: not a lock this helper can read; remove it or run pam-kubeconfig unlock", KC_LOCKS_DIR,
			name);
		return;
	}
	if (k.until && k.until <= now) {
		remove_lapsed(dir, name, now);
		return;
	}
	more = reallocarray(out->l, out->n + 1, sizeof(*more));
	if (!more)
		return;
	out->l = more;
	out->l[out->n++] = k;
	kc_buf_printf(stamp, "%s\n", name);
	kc_buf_append(stamp, text.data, text.len);
}

int kc_locks_read(struct kc_locks *out, time_t now, struct kc_err *err)
{
	kc_autobuf struct kc_buf stamp = { 0 };
	int fd = open(KC_LOCKS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	memset(out, 0, sizeof(*out));
	if (fd < 0 && errno == ENOENT) {
		kc_sha256_hex("", 0, out->stamp);
		return 0;
	}
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return kc_seterr(err, "cannot read %s: %s", KC_LOCKS_DIR, strerror(errno)), -1;
	}
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "lock-", 5) == 0)
			read_one(dirfd(d), de->d_name, now, out, &stamp);
	closedir(d);
	if (out->n > 1)
		qsort(out->l, out->n, sizeof(*out->l), by_user);
	kc_sha256_hex(stamp.data ? stamp.data : "", stamp.len, out->stamp);
	return 0;
}

void kc_locks_free(struct kc_locks *l)
{
	free(l->l);
	memset(l, 0, sizeof(*l));
}

const struct kc_lock *kc_locks_of(const struct kc_locks *l, const char *user, size_t *count)
{
	size_t lo = 0, hi = l->n, end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(l->l[mid].user, user) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < l->n && strcmp(l->l[end].user, user) == 0; end++)
		;
	*count = end - lo;
	return *count ? &l->l[lo] : NULL;
}

void kc_locks_for_mapping(const struct kc_locks *l, const char *user, bool *all, const char ***names, size_t *n)
{
	size_t count;
	const struct kc_lock *k = user ? kc_locks_of(l, user, &count) : NULL;

	*all = false;
	*names = NULL;
	*n = 0;
	if (!k)
		return;
	*names = calloc(count + 1, sizeof(**names));
	for (size_t i = 0; i < count; i++) {
		if (!k[i].cluster[0])
			*all = true;
		else if (*names)
			(*names)[(*n)++] = k[i].cluster;
	}
	if (!*names)
		*all = true; /* out of memory: fail towards less access */
}

const struct kc_lock *kc_locks_holding(const struct kc_locks *l, const char *user, const char *cluster)
{
	size_t count;
	const struct kc_lock *k = kc_locks_of(l, user, &count);

	for (size_t i = 0; i < count; i++)
		if (!k[i].cluster[0])
			return &k[i];
	for (size_t i = 0; cluster && i < count; i++)
		if (strcmp(k[i].cluster, cluster) == 0)
			return &k[i];
	return NULL;
}

int kc_locks_add(struct kc_locks *l, const struct kc_lock *k)
{
	struct kc_lock *more = reallocarray(l->l, l->n + 1, sizeof(*more));

	if (!more)
		return -1;
	l->l = more;
	l->l[l->n++] = *k;
	qsort(l->l, l->n, sizeof(*l->l), by_user);
	return 0;
}

int kc_locks_serialize(long long deadline_ms, struct kc_err *err)
{
	kc_autoclose int dir = kc_open_state_dir(KC_LOCKS_DIR, err);
	int fd;

	if (dir < 0)
		return -1;
	fd = openat(dir, SERIAL_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_seterr(err, "cannot open %s/%s: %s", KC_LOCKS_DIR, SERIAL_NAME, strerror(errno)), -1;
	if (kc_flock_until(fd, LOCK_EX, deadline_ms) < 0) {
		kc_seterr(err, "another revoke or unlock still holds %s/%s: %s; try again", KC_LOCKS_DIR, SERIAL_NAME,
			  errno == ETIMEDOUT ? "waited until the deadline" : strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int kc_lock_put(const struct kc_lock *k, struct kc_err *err)
{
	const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_ALL };
	kc_autoclose int dir = kc_open_state_dir(KC_LOCKS_DIR, err);
	json_t *j;
	char *text, name[80];
	int rc;

	if (dir < 0)
		return -1;
	j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:b}", "user", k->user, "cluster", k->cluster, "since",
		      (json_int_t)k->since, "until", (json_int_t)k->until, "by", k->by, "fleet", k->fleet);
	text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return kc_seterr(err, "out of memory"), -1;
	file_name(k->user, k->cluster[0] ? k->cluster : NULL, name, sizeof(name));
	/* Synced: a lock must survive a crash (I6), unlike a session. */
	rc = kc_write_at(dir, name, text, strlen(text), &o, err);
	kc_json_free(text);
	return rc;
}

int kc_lock_drop(const char *user, const char *cluster, size_t *n, struct kc_err *err)
{
	struct kc_locks all;
	size_t count;
	const struct kc_lock *k;
	kc_autoclose int dir = open(KC_LOCKS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	*n = 0;
	if (dir < 0)
		return errno == ENOENT ? 0 : (kc_seterr(err, "cannot open %s: %s", KC_LOCKS_DIR, strerror(errno)), -1);
	if (kc_locks_read(&all, time(NULL), err) < 0)
		return -1;
	k = kc_locks_of(&all, user, &count);
	for (size_t i = 0; i < count; i++) {
		char name[80];

		if (cluster && strcmp(k[i].cluster, cluster) != 0)
			continue;
		file_name(k[i].user, k[i].cluster[0] ? k[i].cluster : NULL, name, sizeof(name));
		if (unlinkat(dir, name, 0) == 0)
			(*n)++;
	}
	fsync(dir);
	kc_locks_free(&all);
	return 0;
}

void kc_lock_until_text(const struct kc_lock *k, char *out, size_t len)
{
	struct tm tm;
	char when[32];

	if (!k->until) {
		snprintf(out, len, "until an administrator unlocks it");
		return;
	}
	gmtime_r(&k->until, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(out, len, "until %s", when);
}

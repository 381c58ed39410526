/* The index of open sessions (see live.h). */
#include "lifecycle/live.h"
#include "common/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void entry_name(uid_t uid, const struct kc_session_record *r, char *out, size_t len)
{
	int n = snprintf(out, len, "%u.%d.%llu.%.8s.%s", (unsigned)uid, (int)r->pid, r->pid_start, r->boot_id, r->id);

	if (r->cert.present && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, ".c%lld", (long long)r->cert.valid_before);
}

static int open_live(bool create)
{
	struct kc_err e;
	int fd;

	if (create)
		return kc_open_state_dir(KC_LIVE_DIR, &e);
	fd = open(KC_LIVE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 && errno == ENOENT ? KC_ABSENT : fd;
}

void kc_live_add(uid_t uid, const struct kc_session_record *r)
{
	char name[160];
	kc_autoclose int dir = open_live(true);
	int fd;

	if (dir < 0)
		return;
	entry_name(uid, r, name, sizeof(name));
	/* No fsync: a crash ends the boot, and every entry of another boot is dead. */
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

void kc_live_drop(uid_t uid, const struct kc_session_record *r)
{
	char name[160];

	entry_name(uid, r, name, sizeof(name));
	kc_live_remove(name);
}

void kc_live_remove(const char *name)
{
	kc_autoclose int dir = open_live(false);

	if (dir >= 0)
		unlinkat(dir, name, 0);
}

static bool parse(const char *name, const char *boot, struct kc_live_entry *e)
{
	unsigned long uid;
	int pid, used = 0;
	char b[9];

	memset(e, 0, sizeof(*e));
	if (sscanf(name, "%lu.%d.%llu.%8[0-9a-f].%n", &uid, &pid, &e->start, b, &used) != 4 || used == 0 || pid <= 0 ||
	    strlen(name) >= sizeof(e->name))
		return false;
	e->uid = (uid_t)uid;
	e->pid = (pid_t)pid;
	{
		const char *c = strstr(name + used, ".c"); /* a session id holds no '.' */
		long long until;

		if (c && sscanf(c, ".c%lld", &until) == 1 && until > 0)
			e->cert_until = (time_t)until;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->dead = strncmp(b, boot, 8) != 0; /* and its process is looked at once all are read */
	return true;
}

static void check_alive(void *ctx, size_t from, size_t to)
{
	struct kc_live_entry *e = ctx;

	for (size_t i = from; i < to; i++)
		e[i].dead = e[i].dead || !kc_process_alive(e[i].pid, e[i].start);
}

static int by_uid(const void *a, const void *b)
{
	uid_t x = ((const struct kc_live_entry *)a)->uid, y = ((const struct kc_live_entry *)b)->uid;

	return (x > y) - (x < y);
}

const struct kc_live_entry *kc_live_of(const struct kc_live_entry *e, size_t n, uid_t uid, size_t *count)
{
	size_t lo = 0, hi = n, end;

	while (lo < hi) { /* the first entry with a uid >= uid */
		size_t mid = lo + (hi - lo) / 2;

		if (e[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < n && e[end].uid == uid; end++)
		;
	*count = end - lo;
	return *count ? &e[lo] : NULL;
}

int kc_live_read(struct kc_live_entry **out, size_t *n, struct kc_err *err)
{
	char boot[64];
	size_t cap = 0;
	int fd = open_live(false);
	DIR *d;
	struct dirent *de;

	*out = NULL;
	*n = 0;
	if (fd == KC_ABSENT)
		return 0;
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return kc_seterr(err, "cannot read %s: %s", KC_LIVE_DIR, strerror(errno)), -1;
	}
	kc_boot_id(boot);
	while ((de = readdir(d))) {
		struct kc_live_entry e;

		if (de->d_name[0] == '.' || !parse(de->d_name, boot, &e))
			continue;
		if (*n == cap) {
			struct kc_live_entry *more = reallocarray(*out, cap ? cap * 2 : 64, sizeof(**out));

			if (!more) {
				closedir(d);
				return kc_seterr(err, "out of memory"), -1;
			}
			*out = more;
			cap = cap ? cap * 2 : 64;
		}
		(*out)[(*n)++] = e;
	}
	closedir(d);
	/* Each process against /proc: reading a process's stat costs the
	 * kernel ~8 us, with 10,000 sessions open most of a quiet refresh, so
	 * the entries are read in two halves side by side. */
	kc_halves(*n, 512, check_alive, *out);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), by_uid);
	return 0;
}

/* The account databases read once (see config/accounts.h): users sorted by uid
 * and by name, groups by gid, each user's groups from the member lists. Where
 * a database holds a uid, name or gid twice, the first entry wins, as it does
 * for getpwuid(), getpwnam() and getgrgid(). */
#include "config/accounts.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/util.h"

#define NSS_MAX (64u * 1024)
#define BUF_MAX (64u << 20) /* an entry's line, a department's group included */

struct acct {
	char *name, *home;
	uid_t uid;
	gid_t gid;
	long expire;
	size_t order; /* its place in the database: the first of equals wins */
	gid_t *gids; /* groups whose member lists name it */
	size_t n_gids;
};

struct grp_entry {
	char *name;
	gid_t gid;
	size_t order;
};

struct kc_accounts {
	struct acct *by_uid; /* owns the entries */
	size_t *by_name; /* indexes into by_uid, sorted by name, then order */
	size_t n;
	struct grp_entry *groups; /* sorted by gid, then order */
	size_t n_groups;
};

/* ---- is enumeration the whole truth? ----------------------------------------- */

/* The sources of db as glibc reads nsswitch.conf: the last line naming it
 * wins, blanks may lead and may precede the colon, '#' starts a comment.
 * Copies the sources into out; false when no line names db. */
static bool sources_of(const char *conf, const char *db, char *out, size_t len)
{
	size_t dl = strlen(db);
	bool found = false;

	for (const char *l = conf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *p = l + strspn(l, " \t");
		size_t n;

		if (strncmp(p, db, dl) != 0)
			continue;
		p += dl;
		p += strspn(p, " \t");
		if (*p != ':')
			continue;
		p++;
		n = strcspn(p, "\n#");
		snprintf(out, len, "%.*s", (int)n, p);
		found = true;
	}
	return found;
}

/* Every source of db is files or systemd ([action] items aside). */
static bool files_only(const char *conf, const char *db, bool absent_ok)
{
	char line[512], *save = NULL, *tok;
	bool any = false, in_action = false;

	if (!sources_of(conf, db, line, sizeof(line)))
		return absent_ok; /* else glibc's default, which may differ by version: ask one by one */
	for (tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
		if (tok[0] == '[' || in_action) {
			in_action = !strchr(tok, ']');
			continue;
		}
		if (strcmp(tok, "files") != 0 && strcmp(tok, "systemd") != 0)
			return false;
		any = true;
	}
	return any;
}

/* ---- reading ------------------------------------------------------------------- */

static char *grow(char *buf, size_t *size)
{
	free(buf);
	if (*size >= BUF_MAX)
		return NULL;
	*size = *size ? *size * 4 : 16384;
	return malloc(*size);
}

static int read_users(struct kc_accounts *a, struct kc_err *err)
{
	size_t size = 0, cap = 0;
	char *buf = grow(NULL, &size);
	int rc = -1;

	setpwent();
	while (buf) {
		struct passwd pw, *p = NULL;
		int e = getpwent_r(&pw, buf, size, &p);

		if (e == ERANGE) {
			buf = grow(buf, &size);
			continue;
		}
		if (e != 0 || !p) {
			rc = e == ENOENT || e == 0 ? 0 : -1;
			if (rc < 0)
				kc_seterr(err, "reading the user database: %s", strerror(e));
			break;
		}
		if (a->n == cap) {
			struct acct *more = reallocarray(a->by_uid, cap = cap ? cap * 2 : 256, sizeof(*more));

			if (!more)
				break; /* rc stays -1: a snapshot missing users would read as users gone */
			a->by_uid = more;
		}
		a->by_uid[a->n] = (struct acct){ .name = strdup(p->pw_name),
						 .home = strdup(p->pw_dir ? p->pw_dir : ""),
						 .uid = p->pw_uid,
						 .gid = p->pw_gid,
						 .expire = -1,
						 .order = a->n };
		if (!a->by_uid[a->n].name || !a->by_uid[a->n].home) {
			free(a->by_uid[a->n].name);
			free(a->by_uid[a->n].home);
			break;
		}
		a->n++;
	}
	endpwent();
	if (rc < 0 && !err->msg[0])
		kc_seterr(err, "out of memory reading the user database");
	free(buf);
	return rc;
}

static int cmp_uid(const void *x, const void *y)
{
	const struct acct *p = x, *q = y;

	return p->uid != q->uid ? (p->uid < q->uid ? -1 : 1) : (p->order < q->order ? -1 : p->order > q->order);
}

static int cmp_name(const void *x, const void *y, void *all)
{
	const struct acct *p = (const struct acct *)all + *(const size_t *)x;
	const struct acct *q = (const struct acct *)all + *(const size_t *)y;
	int c = strcmp(p->name, q->name);

	return c ? c : (p->order < q->order ? -1 : p->order > q->order);
}

static int cmp_gid(const void *x, const void *y)
{
	const struct grp_entry *p = x, *q = y;

	return p->gid != q->gid ? (p->gid < q->gid ? -1 : 1) : (p->order < q->order ? -1 : p->order > q->order);
}

static void index_names(struct kc_accounts *a)
{
	for (size_t i = 0; i < a->n; i++)
		a->by_name[i] = i;
	qsort_r(a->by_name, a->n, sizeof(*a->by_name), cmp_name, a->by_uid);
}

/* The first account named name, or NULL. */
static struct acct *by_name(const struct kc_accounts *a, const char *name)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(a->by_uid[a->by_name[mid]].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n && !strcmp(a->by_uid[a->by_name[lo]].name, name) ? &a->by_uid[a->by_name[lo]] : NULL;
}

static int add_gid(struct acct *u, gid_t gid)
{
	gid_t *more;

	for (size_t i = 0; i < u->n_gids; i++)
		if (u->gids[i] == gid)
			return 0;
	more = reallocarray(u->gids, u->n_gids + 1, sizeof(*more));
	if (!more)
		return -1;
	u->gids = more;
	u->gids[u->n_gids++] = gid;
	return 0;
}

/* One group: kept for its name, and counted in the groups of each member. */
static int take_group(struct kc_accounts *a, const struct group *g, size_t *cap)
{
	if (a->n_groups == *cap) {
		struct grp_entry *more = reallocarray(a->groups, *cap = *cap ? *cap * 2 : 256, sizeof(*more));

		if (!more)
			return -1;
		a->groups = more;
	}
	a->groups[a->n_groups] =
		(struct grp_entry){ .name = strdup(g->gr_name), .gid = g->gr_gid, .order = a->n_groups };
	if (!a->groups[a->n_groups].name)
		return -1;
	a->n_groups++;
	for (char **m = g->gr_mem; m && *m; m++) {
		struct acct *u = by_name(a, *m);

		if (u && add_gid(u, g->gr_gid) < 0)
			return -1;
	}
	return 0;
}

static int read_groups(struct kc_accounts *a, struct kc_err *err)
{
	size_t size = 0, cap = 0;
	char *buf = grow(NULL, &size);
	int rc = -1;

	setgrent();
	while (buf) {
		struct group gr, *g = NULL;
		int e = getgrent_r(&gr, buf, size, &g);

		if (e == ERANGE) {
			buf = grow(buf, &size);
			continue;
		}
		if (e != 0 || !g) {
			rc = e == ENOENT || e == 0 ? 0 : -1;
			if (rc < 0)
				kc_seterr(err, "reading the group database: %s", strerror(e));
			break;
		}
		if (take_group(a, g, &cap) < 0)
			break;
	}
	endgrent();
	if (rc < 0 && !err->msg[0])
		kc_seterr(err, "out of memory reading the group database");
	free(buf);
	return rc;
}

static int read_shadow(struct kc_accounts *a, struct kc_err *err)
{
	size_t size = 0;
	char *buf = grow(NULL, &size);
	int rc = -1;

	setspent();
	while (buf) {
		struct spwd sp, *s = NULL;
		int e = getspent_r(&sp, buf, size, &s);
		struct acct *u;

		if (e == ERANGE) {
			buf = grow(buf, &size);
			continue;
		}
		if (e != 0 || !s) {
			rc = e == ENOENT || e == 0 ? 0 : -1;
			if (rc < 0)
				kc_seterr(err, "reading the shadow database: %s", strerror(e));
			break;
		}
		if ((u = by_name(a, s->sp_namp)) && u->expire == -1)
			u->expire = s->sp_expire > 0 ? s->sp_expire : 0;
	}
	endspent();
	if (buf)
		explicit_bzero(buf, size); /* it held password hashes */
	free(buf);
	return rc;
}

struct kc_accounts *kc_accounts_snapshot(const char *nsswitch_path, struct kc_err *err)
{
	kc_autobuf struct kc_buf conf = { 0 };
	struct kc_accounts *a;

	err->msg[0] = '\0';
	/* getgrouplist() follows initgroups: when nsswitch.conf has that line. */
	if (kc_read_root_file(nsswitch_path, NSS_MAX, 022, false, &conf, err) < 0 || !conf.data ||
	    !files_only(conf.data, "passwd", false) || !files_only(conf.data, "group", false) ||
	    !files_only(conf.data, "shadow", false) || !files_only(conf.data, "initgroups", true))
		return NULL;
	if (!(a = calloc(1, sizeof(*a))))
		return NULL;
	if (read_users(a, err) < 0 || !a->n || !(a->by_name = calloc(a->n, sizeof(size_t))))
		goto fail;
	index_names(a);
	if (read_groups(a, err) < 0 || read_shadow(a, err) < 0)
		goto fail;
	if (a->n_groups)
		qsort(a->groups, a->n_groups, sizeof(*a->groups), cmp_gid);
	qsort(a->by_uid, a->n, sizeof(*a->by_uid), cmp_uid);
	index_names(a); /* by_uid moved under it */
	return a;
fail:
	kc_accounts_free(a);
	return NULL;
}

void kc_accounts_free(struct kc_accounts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->by_uid[i].name);
		free(a->by_uid[i].home);
		free(a->by_uid[i].gids);
	}
	for (size_t i = 0; i < a->n_groups; i++)
		free(a->groups[i].name);
	free(a->by_uid);
	free(a->by_name);
	free(a->groups);
	free(a);
}

/* ---- answering ------------------------------------------------------------------- */

static const char *group_name(const struct kc_accounts *a, gid_t gid)
{
	size_t lo = 0, hi = a->n_groups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->groups[mid].gid < gid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n_groups && a->groups[lo].gid == gid ? a->groups[lo].name : NULL;
}

static int add_name(struct kc_identity *id, const char *name)
{
	if (!name)
		return 0; /* a gid without a name cannot match a rule */
	for (size_t i = 0; i < id->n_groups; i++)
		if (id->groups[i] && !strcmp(id->groups[i], name))
			return 0;
	return (id->groups[id->n_groups] = strdup(name)) ? (int)(id->n_groups++, 0) : -1;
}

int kc_accounts_identity(const struct kc_accounts *a, uid_t uid, struct kc_identity *id, long *expire,
			 struct kc_err *err)
{
	size_t lo = 0, hi = a->n;
	const struct acct *u;

	memset(id, 0, sizeof(*id));
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->by_uid[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == a->n || a->by_uid[lo].uid != uid)
		return kc_seterr(err, "no account has uid %u", (unsigned)uid), KC_ABSENT;
	u = by_name(a, a->by_uid[lo].name); /* as kc_identity_load(getpwuid(uid)->pw_name) */
	*expire = u->expire > 0 ? u->expire : -1;
	id->name = strdup(u->name);
	id->home = strdup(u->home);
	id->uid = u->uid;
	id->gid = u->gid;
	id->groups = calloc(u->n_gids + 2, sizeof(*id->groups));
	id->gids = calloc(u->n_gids + 1, sizeof(*id->gids));
	if (!id->name || !id->home || !id->groups || !id->gids || add_name(id, group_name(a, u->gid)) < 0)
		goto oom;
	id->gids[id->n_gids++] = u->gid;
	for (size_t i = 0; i < u->n_gids; i++) {
		if (add_name(id, group_name(a, u->gids[i])) < 0)
			goto oom;
		if (u->gids[i] != u->gid)
			id->gids[id->n_gids++] = u->gids[i];
	}
	return 0;
oom:
	kc_identity_free(id);
	return kc_seterr(err, "out of memory"), KC_UNKNOWN;
}

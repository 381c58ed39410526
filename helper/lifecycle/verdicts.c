/* refresh's verdicts between runs (see lifecycle/verdicts.h). One cache entry, a
 * line per user: "uid key since until". */
#include "lifecycle/verdicts.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"

struct verdict {
	uid_t uid;
	char key[65];
	time_t since, until;
	bool carried; /* into the next set (each old verdict at most once) */
};

struct kc_verdicts {
	struct verdict *old; /* sorted by uid */
	size_t n_old;
	struct verdict *next;
	size_t n_next, cap;
	bool noted; /* a fresh verdict is among next */
};

static int by_uid(const void *a, const void *b)
{
	const struct verdict *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* One line "uid key since until"; false when it is not one. */
static bool parse_line(const char *p, const char *end, struct verdict *d)
{
	char *q;
	unsigned long uid;
	long long since, until;

	if (!isdigit((unsigned char)*p))
		return false;
	errno = 0;
	uid = strtoul(p, &q, 10);
	if (q == p || *q != ' ' || end - (q + 1) < 65 || q[65] != ' ')
		return false;
	memcpy(d->key, q + 1, 64);
	d->key[64] = '\0';
	p = q + 66;
	since = strtoll(p, &q, 10);
	if (q == p || *q != ' ' || !(isdigit((unsigned char)*p) || *p == '-'))
		return false;
	p = q + 1;
	if (!(isdigit((unsigned char)*p) || *p == '-'))
		return false;
	until = strtoll(p, &q, 10);
	if (q == p || q != end || errno)
		return false;
	d->uid = (uid_t)uid;
	d->since = (time_t)since;
	d->until = (time_t)until;
	return true;
}

/* Line by line, each parsed within its own bounds (sscanf would measure the
 * rest of the text at every line: 10,000 users made that quadratic). */
static void parse(struct kc_verdicts *v, const char *text)
{
	size_t lines = 0;

	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	v->old = calloc(lines + 1, sizeof(*v->old));
	for (const char *p = text, *end; v->old && *p && (end = strchr(p, '\n')); p = end + 1)
		if (v->n_old < lines && parse_line(p, end, &v->old[v->n_old]))
			v->n_old++;
	if (v->old)
		qsort(v->old, v->n_old, sizeof(*v->old), by_uid);
}

struct kc_verdicts *kc_verdicts_load(void)
{
	struct kc_verdicts *v = calloc(1, sizeof(*v));
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_err e;

	if (v && kc_cache_get("refresh", "verdicts", KC_VERDICT_MAX_S, 0, &text, NULL, &e) == 0 && text.data)
		parse(v, text.data);
	return v;
}

void kc_verdicts_free(struct kc_verdicts *v)
{
	if (!v)
		return;
	free(v->old);
	free(v->next);
	free(v);
}

/* A field of the key: fixed-width numbers as they are, strings with their
 * terminating NUL, so that no two different keys read the same. */
static void put_num(struct kc_buf *b, long long n)
{
	kc_buf_append(b, &n, sizeof(n));
}

static void put_str(struct kc_buf *b, const char *s)
{
	kc_buf_append(b, s, strlen(s) + 1);
}

void kc_verdict_key(const struct kc_config *cfg, const struct kc_identity *id, bool in_scope, const struct stat *dir,
		    char out[65])
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_target *t = calloc(cfg->n_clusters + 1, sizeof(*t));

	put_num(&b, (long long)dir->st_dev);
	put_num(&b, (long long)dir->st_ino);
	put_num(&b, (long long)dir->st_mtim.tv_sec);
	put_num(&b, dir->st_mtim.tv_nsec);
	put_num(&b, in_scope);
	put_num(&b, cfg->refresh_before);
	put_num(&b, cfg->revoke_on_logout);
	put_str(&b, cfg->host_id);
	put_str(&b, id ? id->name : "");
	if (t && id && in_scope)
		kc_map_user(cfg, id, t);
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		put_str(&b, cfg->clusters[i].name);
		put_str(&b, t && t[i].rule ? t[i].sa_namespace : "-");
		put_str(&b, t && t[i].rule ? t[i].sa_name : "-");
		put_num(&b, t && t[i].error[0]);
	}
	if (!t)
		put_str(&b, "out of memory: matches nothing stored");
	free(t);
	kc_sha256_hex(b.data ? b.data : "", b.len, out);
}

static void add(struct kc_verdicts *v, const struct verdict *d)
{
	if (v->n_next == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		struct verdict *more = reallocarray(v->next, cap, sizeof(*more));

		if (!more)
			return; /* a verdict not kept costs a full look next time */
		v->next = more;
		v->cap = cap;
	}
	v->next[v->n_next++] = *d;
}

bool kc_verdicts_hold(struct kc_verdicts *v, uid_t uid, const char key[65], time_t now)
{
	struct verdict want = { .uid = uid };
	struct verdict *d = v->old ? bsearch(&want, v->old, v->n_old, sizeof(*v->old), by_uid) : NULL;

	if (!d || strcmp(d->key, key) != 0 || now < d->since || now >= d->until || now >= d->since + KC_VERDICT_MAX_S)
		return false;
	if (!d->carried)
		add(v, d);
	d->carried = true;
	return true;
}

void kc_verdicts_note(struct kc_verdicts *v, uid_t uid, const char key[65], time_t now, time_t until)
{
	struct verdict d = { .uid = uid, .since = now };

	d.until = until && until < now + KC_VERDICT_MAX_S ? until : now + KC_VERDICT_MAX_S;
	snprintf(d.key, sizeof(d.key), "%s", key);
	add(v, &d);
	v->noted = true;
}

void kc_verdicts_save(const struct kc_verdicts *v)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_err e;

	/* Every last verdict held (each is carried once) and none is new: the
	 * stored set is the next one already (a quiet refresh over 10,000 users
	 * writes no megabyte). */
	if (!v->noted && v->n_next == v->n_old)
		return;
	for (size_t i = 0; i < v->n_next; i++)
		kc_buf_printf(&b, "%lu %s %lld %lld\n", (unsigned long)v->next[i].uid, v->next[i].key,
			      (long long)v->next[i].since, (long long)v->next[i].until);
	kc_cache_put("refresh", "verdicts", b.data ? b.data : "", b.len, &e);
}

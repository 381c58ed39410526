/* refresh's verdicts between runs (see lifecycle/verdicts.h). One cache entry, a
 * line per user: "uid key since until". */
#include "lifecycle/verdicts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"

struct verdict {
	uid_t uid;
	char key[65];
	time_t since, until;
};

struct kc_verdicts {
	struct verdict *old; /* sorted by uid */
	size_t n_old;
	struct verdict *next;
	size_t n_next, cap;
};

static int by_uid(const void *a, const void *b)
{
	const struct verdict *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void parse(struct kc_verdicts *v, const char *text)
{
	size_t lines = 0;

	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	v->old = calloc(lines + 1, sizeof(*v->old));
	for (const char *p = text; v->old && *p;) {
		struct verdict d;
		unsigned long uid;
		long long since, until;

		if (sscanf(p, "%lu %64s %lld %lld", &uid, d.key, &since, &until) == 4 && strlen(d.key) == 64 &&
		    v->n_old < lines) {
			d.uid = (uid_t)uid;
			d.since = (time_t)since;
			d.until = (time_t)until;
			v->old[v->n_old++] = d;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : "";
	}
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

void kc_verdict_key(const struct kc_config *cfg, const struct kc_identity *id, bool in_scope, const struct stat *dir,
		    char out[65])
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_target *t = calloc(cfg->n_clusters + 1, sizeof(*t));

	kc_buf_printf(&b, "%llu %llu %lld.%09ld\n%d %d %d %s\n%s\n", (unsigned long long)dir->st_dev,
		      (unsigned long long)dir->st_ino, (long long)dir->st_mtim.tv_sec, dir->st_mtim.tv_nsec, in_scope,
		      cfg->refresh_before, cfg->revoke_on_logout, cfg->host_id, id ? id->name : "");
	if (t && id && in_scope)
		kc_map_user(cfg, id, t);
	for (size_t i = 0; i < cfg->n_clusters; i++)
		kc_buf_printf(&b, "%s %s %s %s\n", cfg->clusters[i].name, t && t[i].rule ? t[i].sa_namespace : "-",
			      t && t[i].rule ? t[i].sa_name : "-", t && t[i].error[0] ? "error" : "");
	if (!t)
		kc_buf_puts(&b, "out of memory: matches nothing stored");
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
	const struct verdict *d = v->old ? bsearch(&want, v->old, v->n_old, sizeof(*v->old), by_uid) : NULL;

	if (!d || strcmp(d->key, key) != 0 || now < d->since || now >= d->until || now >= d->since + KC_VERDICT_MAX_S)
		return false;
	add(v, d);
	return true;
}

void kc_verdicts_note(struct kc_verdicts *v, uid_t uid, const char key[65], time_t now, time_t until)
{
	struct verdict d = { .uid = uid, .since = now };

	d.until = until && until < now + KC_VERDICT_MAX_S ? until : now + KC_VERDICT_MAX_S;
	snprintf(d.key, sizeof(d.key), "%s", key);
	add(v, &d);
}

void kc_verdicts_save(const struct kc_verdicts *v)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_err e;

	for (size_t i = 0; i < v->n_next; i++)
		kc_buf_printf(&b, "%lu %s %lld %lld\n", (unsigned long)v->next[i].uid, v->next[i].key,
			      (long long)v->next[i].since, (long long)v->next[i].until);
	kc_cache_put("refresh", "verdicts", b.data ? b.data : "", b.len, &e);
}

/* libFuzzer: the kubeconfig merge round trip. The first input byte picks our
 * entries (how many, which, token or token file, whether ~/.kube/config names
 * some of them); the rest is the existing file. When the merge accepts it:
 * what it writes parses back strictly; our entries hold our values; every
 * other entry, top-level key and value of the input is there unchanged and in
 * order, and so are the keys of our entries we do not own; current-context
 * follows its rule; merging the result again changes nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asuser/kubeconfig_merge.h"
#include "asuser/kubeconfig_names.h"
#include "asuser/kubeconfig_read.h"

#define CHECK(c)                                                                              \
	do {                                                                                  \
		if (!(c)) {                                                                   \
			fprintf(stderr, "fuzz_merge.c:%d: %s does not hold\n", __LINE__, #c); \
			__builtin_trap();                                                     \
		}                                                                             \
	} while (0)

static const unsigned char CA[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
static const char *const LISTS[3] = { "clusters", "contexts", "users" };
static const char *const INNER[3] = { "cluster", "context", "user" };
/* The keys of our objects the merge owns, per kind. */
static const char *const OWNED[3][5] = {
	{ "server", "certificate-authority-data", "certificate-authority", "insecure-skip-tls-verify", NULL },
	{ "cluster", "user", NULL },
	{ "token", "tokenFile", NULL },
};
static const char *const OLD_KEYS[3][4] = {
	{ "server", "certificate-authority-data", "insecure-skip-tls-verify", NULL },
	{ "cluster", "user", "namespace", NULL },
	{ "token", NULL },
};

static bool in(const char *const *keys, const struct kc_ynode *key)
{
	for (size_t i = 0; keys[i]; i++)
		if (kc_ytree_is(key, keys[i]))
			return true;
	return false;
}

static bool marked(const struct kc_ynode *item, int k)
{
	const struct kc_ynode *inner = kc_ytree_get(item, INNER[k]);
	const struct kc_ynode *ext = inner && inner->kind == KC_YMAP ? kc_ytree_get(inner, "extensions") : NULL;

	for (size_t i = 0; ext && ext->kind == KC_YSEQ && i < ext->n; i++)
		if (kc_ytree_is(kc_ytree_get(ext->items[i], "name"), KC_MERGE_MARKER))
			return true;
	return false;
}

static bool keys_within(const struct kc_ynode *map, const char *const *keys)
{
	for (size_t i = 0; i < map->n; i += 2)
		if (!in(keys, map->items[i]))
			return false;
	return true;
}

/* Written independently of the merge: the old writer's header and entry shape. */
static bool old_header(const char *d, size_t len)
{
	static const char tag[] = "# pam-kubeconfig-host-id: ";
	size_t i = 0;

	while (i < len && d[i] == '#') {
		const char *nl;

		if (len - i >= sizeof(tag) - 1 && memcmp(d + i, tag, sizeof(tag) - 1) == 0)
			return true;
		nl = memchr(d + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - d) + 1;
	}
	return false;
}

static const struct kc_ynode *first_named(const struct kc_ynode *list, const char *name)
{
	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++)
		if (kc_ytree_is(kc_ytree_get(list->items[i], "name"), name))
			return list->items[i];
	return NULL;
}

static bool shaped_old(const struct kc_ynode *item, int k)
{
	const char *const item_keys[] = { "name", INNER[k], NULL };
	const struct kc_ynode *inner = kc_ytree_get(item, INNER[k]);

	return item->kind == KC_YMAP && keys_within(item, item_keys) && inner && inner->kind == KC_YMAP &&
	       keys_within(inner, OLD_KEYS[k]);
}

/* What the merge should take for the old writer's, decided here on its own. */
struct old {
	bool header;
	bool name[3]; /* per entry of ours */
	const struct kc_merge_entry *e;
	size_t n;
};

static void find_old(struct old *o, const struct kc_ynode *t1)
{
	static const char *const token_only[] = { "token", NULL };

	for (int k = 0; k < 3 && !o->header && t1; k++) {
		const struct kc_ynode *l = kc_ytree_get(t1, LISTS[k]);

		for (size_t i = 0; l && l->kind == KC_YSEQ && i < l->n; i++)
			if (marked(l->items[i], k))
				return;
	}
	for (size_t j = 0; j < o->n && !o->header && t1; j++) {
		const struct kc_ynode *u = first_named(kc_ytree_get(t1, "users"), o->e[j].name);
		const struct kc_ynode *c = first_named(kc_ytree_get(t1, "contexts"), o->e[j].name);

		o->name[j] = u && c && shaped_old(u, 2) && keys_within(kc_ytree_get(u, "user"), token_only) &&
			     kc_ytree_get(kc_ytree_get(u, "user"), "token") && shaped_old(c, 1) &&
			     kc_ytree_is(kc_ytree_get(kc_ytree_get(c, "context"), "cluster"), o->e[j].name) &&
			     kc_ytree_is(kc_ytree_get(kc_ytree_get(c, "context"), "user"), o->e[j].name);
	}
}

static bool ours_before(const struct kc_ynode *item, int k, const struct old *o)
{
	bool old_name = false;

	if (marked(item, k))
		return true;
	for (size_t j = 0; j < o->n; j++)
		old_name |= o->name[j] && kc_ytree_is(kc_ytree_get(item, "name"), o->e[j].name);
	return (o->header || old_name) && shaped_old(item, k);
}

/* Other entries: the same, in the same order. */
static void check_others_kept(const struct kc_ynode *a, const struct kc_ynode *b, int k, const struct old *old)
{
	size_t j = 0;

	for (size_t i = 0; a && a->kind == KC_YSEQ && i < a->n; i++) {
		if (ours_before(a->items[i], k, old))
			continue;
		while (j < b->n && marked(b->items[j], k))
			j++;
		CHECK(j < b->n && kc_ytree_equal(a->items[i], b->items[j]));
		j++;
	}
	while (j < b->n && marked(b->items[j], k))
		j++;
	CHECK(j == b->n);
}

static void check_object(const struct kc_ynode *obj, int k, const struct kc_merge_entry *e)
{
	const struct kc_ynode *v;

	if (k == 0) {
		CHECK(kc_ytree_is(kc_ytree_get(obj, "server"), e->server));
		CHECK(!kc_ytree_get(obj, "certificate-authority"));
		CHECK(!kc_ytree_get(obj, e->ca_pem ? "insecure-skip-tls-verify" : "certificate-authority-data"));
		v = kc_ytree_get(obj, e->ca_pem ? "certificate-authority-data" : "insecure-skip-tls-verify");
		CHECK(v && v->kind == KC_YSCALAR && (e->ca_pem || (v->style == KC_YPLAIN && kc_ytree_is(v, "true"))));
	} else if (k == 1) {
		CHECK(kc_ytree_is(kc_ytree_get(obj, "cluster"), e->name));
		CHECK(kc_ytree_is(kc_ytree_get(obj, "user"), e->name));
	} else {
		CHECK(kc_ytree_is(kc_ytree_get(obj, e->token_file ? "tokenFile" : "token"),
				  e->token_file ? e->token_file : e->token));
		CHECK(!kc_ytree_get(obj, e->token_file ? "token" : "tokenFile"));
	}
}

static bool has_nul(const struct kc_ynode *key)
{
	return strlen(key->value) != key->len;
}

/* Every key we do not own, of an entry of ours that was there, is kept. */
static void check_unowned_kept(const struct kc_ynode *was, const struct kc_ynode *now, int k)
{
	const struct kc_ynode *a = kc_ytree_get(was, INNER[k]), *b = kc_ytree_get(now, INNER[k]);

	for (size_t i = 0; i < was->n; i += 2)
		if (!kc_ytree_is(was->items[i], INNER[k]) && !has_nul(was->items[i]))
			CHECK(kc_ytree_equal(was->items[i + 1], kc_ytree_get(now, was->items[i]->value)));
	for (size_t i = 0; i < a->n; i += 2)
		if (!in(OWNED[k], a->items[i]) && !has_nul(a->items[i]))
			CHECK(kc_ytree_equal(a->items[i + 1], kc_ytree_get(b, a->items[i]->value)));
}

static void check_ours(const struct kc_ynode *t1, const struct kc_ynode *t2, const struct kc_merge_entry *e, size_t n,
		       const struct old *old)
{
	for (int k = 0; k < 3; k++) {
		const struct kc_ynode *l1 = kc_ytree_get(t1, LISTS[k]), *l2 = kc_ytree_get(t2, LISTS[k]);

		for (size_t i = 0; i < n; i++) {
			const struct kc_ynode *was = first_named(l1, e[i].name), *now = first_named(l2, e[i].name);

			CHECK(now);
			if (was && !ours_before(was, k, old)) {
				CHECK(kc_ytree_equal(was, now)); /* someone else's now: left alone */
				continue;
			}
			CHECK(marked(now, k));
			check_object(kc_ytree_get(now, INNER[k]), k, &e[i]);
			if (was && marked(was, k))
				check_unowned_kept(was, now, k);
		}
		if (l2)
			check_others_kept(l1, l2, k, old);
	}
}

static bool context_named(const struct kc_ynode *root, const struct kc_ynode *cc,
			  const struct kc_kubeconfig_names *others)
{
	const struct kc_ynode *l = kc_ytree_get(root, "contexts");

	for (size_t i = 0; l && l->kind == KC_YSEQ && i < l->n; i++) {
		const struct kc_ynode *name = kc_ytree_get(l->items[i], "name");

		if (name && name->kind == KC_YSCALAR && name->len == cc->len &&
		    !memcmp(name->value, cc->value, cc->len))
			return true;
	}
	for (size_t i = 0; others && i < others->n_contexts; i++)
		if (kc_ytree_is(cc, others->contexts[i]))
			return true;
	return false;
}

static void check_top(const struct kc_ynode *t1, const struct kc_ynode *t2, const struct kc_merge_entry *e, size_t n,
		      const struct kc_kubeconfig_names *others)
{
	static const char *const merged[] = { "clusters", "contexts", "users", "current-context", NULL };
	const struct kc_ynode *cc1 = t1 ? kc_ytree_get(t1, "current-context") : NULL;
	const struct kc_ynode *cc2 = kc_ytree_get(t2, "current-context");
	size_t j = 0;

	for (size_t i = 0; t1 && i < t1->n; i += 2) {
		if (in(merged, t1->items[i]))
			continue;
		while (j < t2->n && in(merged, t2->items[j]))
			j += 2;
		CHECK(j < t2->n && kc_ytree_equal(t1->items[i], t2->items[j]) &&
		      kc_ytree_equal(t1->items[i + 1], t2->items[j + 1]));
		j += 2;
	}
	while (t1 && j < t2->n && in(merged, t2->items[j]))
		j += 2;
	CHECK(!t1 || j == t2->n); /* nothing added but the merged keys */
	if (cc1 && cc1->kind == KC_YSCALAR && cc1->len && !kc_ytree_is_null(cc1) && context_named(t2, cc1, others))
		CHECK(cc2 && kc_ytree_equal(cc1, cc2));
	else if (n)
		CHECK(kc_ytree_is(cc2, e[0].name));
	else
		CHECK(!cc2 || kc_ytree_is_null(cc2) || kc_ytree_is(cc2, ""));
}

static void pick(uint8_t sel, struct kc_merge_entry *e, size_t *n)
{
	static const struct kc_merge_entry all[3] = {
		{ "a", "https://a.example", CA, sizeof(CA) - 1, false, "team-a", "/run/pam_kubeconfig/1000/a.token",
		  NULL },
		{ "prod", "https://prod.example:443", CA, sizeof(CA) - 1, false, "ns", "/run/p/prod.token", NULL },
		{ "yes", "https://127.0.0.1:6443", NULL, 0, true, NULL, NULL, "123" },
	};

	*n = sel % 4;
	for (size_t i = 0; i < *n; i++)
		e[i] = all[(i + sel / 4) % 3];
	if (*n && (sel & 0x80)) {
		e[0].token_file = NULL;
		e[0].token = "eyJhbGciOi.J9.sig";
	}
}

/* The lenient reader of the user's own file reads whatever the strict reader
 * does, to the same current-context and names. */
static void check_names(const char *file, size_t len)
{
	struct kc_kubeconfig_names got;
	struct kc_ynode *t = NULL;
	struct kc_err err;
	int rc = kc_kubeconfig_names_parse(file, len, &got, &err);

	if (kc_kubeconfig_read(file, len, &t, &err) == 0 && t && t->kind == KC_YMAP) {
		const struct kc_ynode *cc = kc_ytree_get(t, "current-context");
		const struct kc_ynode *ctxs = kc_ytree_get(t, "contexts");

		CHECK(rc == 0);
		if (cc && cc->kind == KC_YSCALAR && !kc_ytree_is_null(cc) && strlen(cc->value) == cc->len && !cc->tag)
			CHECK(got.current_context && !strcmp(got.current_context, cc->value));
		if (ctxs && ctxs->kind == KC_YSEQ && got.n_contexts)
			CHECK(got.n_contexts <= ctxs->n);
	}
	kc_ytree_free(t);
	kc_kubeconfig_names_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[] = "a", mine[] = "mine", *ctx[] = { a, mine };
	struct kc_kubeconfig_names names = { .contexts = ctx, .n_contexts = 2, .clusters = ctx, .n_clusters = 1 };
	struct kc_merge_entry e[3];
	struct kc_buf out = { 0 }, notes = { 0 }, out2 = { 0 };
	struct kc_ynode *t1 = NULL, *t2 = NULL;
	const struct kc_kubeconfig_names *others;
	struct kc_err err;
	bool changed, empty;
	const char *file;
	size_t n, len;

	if (size < 1)
		return 0;
	pick(data[0], e, &n);
	others = (data[0] & 0x40) ? &names : NULL;
	file = (const char *)data + 1;
	len = size - 1;
	if (kc_kubeconfig_merge(file, len, e, n, others, &out, &changed, &empty, &notes, &err) == 0) {
		CHECK(kc_kubeconfig_read(file, len, &t1, &err) == 0);
		CHECK(changed == (out.len != len || (len && memcmp(out.data, file, len) != 0)));
		if (out.len) {
			CHECK(kc_kubeconfig_read(out.data, out.len, &t2, &err) == 0 && t2 && t2->kind == KC_YMAP);
			struct old old = { .header = old_header(file, len), .e = e, .n = n };

			find_old(&old, t1);
			check_ours(t1, t2, e, n, &old);
			check_top(t1, t2, e, n, others);
			for (int k = 0; k < 3 && empty; k++)
				CHECK(!kc_ytree_get(t2, LISTS[k]) || kc_ytree_get(t2, LISTS[k])->n == 0);
			CHECK(kc_kubeconfig_merge(out.data, out.len, e, n, others, &out2, &changed, &empty, &notes,
						  &err) == 0);
			CHECK(!changed && out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
		} else {
			CHECK(!n && !t1 && empty);
		}
	}
	check_names(file, len);
	kc_ytree_free(t1);
	kc_ytree_free(t2);
	kc_buf_free(&out);
	kc_buf_free(&out2);
	kc_buf_free(&notes);
	return 0;
}

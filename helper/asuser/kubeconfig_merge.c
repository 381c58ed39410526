/* Merges our cluster, context and user entries into the user's kubeconfig,
 * keeping everything else another tool or the user put there. Ours are the
 * entries marked with the pam-kubeconfig NamedExtension (kubectl and awscli
 * keep extensions; they drop comments). Runs as the user, on bytes only. */
#include "kc_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_ytree.h"

/* The header the writer before markers put on its files (helper/kubeconfig.c). */
#define OLD_HOST_ID_TAG "# pam-kubeconfig-host-id: "
/* Kept under 80 columns where kubectl writes it, so kubectl does not fold it. */
#define MARKER_NOTE "updated at login; remove this extension to keep the entry as is"

enum kind { CLUSTER, CONTEXT, USER, KINDS };

struct kind_desc {
	const char *list; /* the top-level key */
	const char *inner; /* the entry's object */
	const char *stale; /* what a note says is no longer updated */
	const char *const *old_keys; /* the old writer's keys in that object */
};

static const char *const old_cluster_keys[] = { "server", "certificate-authority-data", "insecure-skip-tls-verify",
						NULL };
static const char *const old_context_keys[] = { "cluster", "user", "namespace", NULL };
static const char *const old_user_keys[] = { "token", NULL };

static const struct kind_desc kinds[KINDS] = {
	{ "clusters", "cluster", "its server and certificate are", old_cluster_keys },
	{ "contexts", "context", "its cluster and user are", old_context_keys },
	{ "users", "user", "its token is", old_user_keys },
};

struct merge {
	const struct kc_merge_entry *ours;
	size_t n;
	const struct kc_kubeconfig_names *others;
	char **ca; /* base64 of each entry's CA, NULL when insecure */
	bool *seen; /* per entry of ours: an entry of its name is in the list (this kind) */
	bool *old; /* per entry of ours: its name's entries are the old writer's (see find_old) */
	bool old_header;
	struct kc_buf *notes;
	struct kc_err *err;
};

static int check_entry(const struct kc_merge_entry *e, size_t i, struct kc_err *err)
{
	const char *strings[] = { e->name, e->server, e->sa_namespace, e->token_file, e->token };

	if (!e->name || !*e->name) {
		kc_seterr(err, "entry %zu of ours has no name", i);
		return -1;
	}
	for (size_t s = 0; s < sizeof(strings) / sizeof(*strings); s++) {
		if (strings[s] && !kc_ytree_valid_utf8(strings[s])) {
			kc_seterr(err, "entry %zu of ours holds a value that is not valid UTF-8", i);
			return -1;
		}
	}
	if (!e->server || !*e->server)
		kc_seterr(err, "entry \"%s\" has no server", e->name);
	else if ((e->ca_pem && e->ca_pem_len) == e->insecure_skip_tls_verify)
		kc_seterr(err, "entry \"%s\" needs exactly one of a CA and insecure_skip_tls_verify", e->name);
	else if (!e->token_file == !e->token)
		kc_seterr(err, "entry \"%s\" needs exactly one of a token file and a token", e->name);
	else
		return 0;
	return -1;
}

static int check_entries(const struct kc_merge_entry *ours, size_t n, struct kc_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (check_entry(&ours[i], i, err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ours[i].name, ours[j].name) == 0) {
				kc_seterr(err, "two entries of ours are named \"%s\"", ours[i].name);
				return -1;
			}
		}
	}
	return 0;
}

/* The old writer's header sits in the leading comment lines; any rewrite by
 * another tool drops comments, so the header means the old writer's own file. */
static bool old_format_header(const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	size_t tag = strlen(OLD_HOST_ID_TAG);

	while (p && p < end && *p == '#') {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if ((size_t)(end - p) >= tag && memcmp(p, OLD_HOST_ID_TAG, tag) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static ssize_t find_ours(const struct merge *m, const struct kc_ynode *name)
{
	for (size_t i = 0; name && i < m->n; i++)
		if (kc_ytree_is(name, m->ours[i].name))
			return (ssize_t)i;
	return -1;
}

static bool has_marker(const struct kc_ynode *inner)
{
	const struct kc_ynode *ext = kc_ytree_get(inner, "extensions");

	for (size_t i = 0; ext && ext->kind == KC_YSEQ && i < ext->n; i++)
		if (kc_ytree_is(kc_ytree_get(ext->items[i], "name"), KC_MERGE_MARKER))
			return true;
	return false;
}

static bool keys_within(const struct kc_ynode *map, const char *const *keys)
{
	for (size_t i = 0; i < map->n; i += 2) {
		size_t k = 0;

		while (keys[k] && !kc_ytree_is(map->items[i], keys[k]))
			k++;
		if (!keys[k])
			return false;
	}
	return true;
}

/* An entry as the old writer made it: name and object, with its keys only. */
static bool old_shape(const struct kc_ynode *item, const struct kind_desc *kd)
{
	const char *item_keys[] = { "name", kd->inner, NULL };
	const struct kc_ynode *inner = kc_ytree_get(item, kd->inner);

	return item->kind == KC_YMAP && keys_within(item, item_keys) && inner && inner->kind == KC_YMAP &&
	       keys_within(inner, kd->old_keys);
}

static bool any_marker(const struct kc_ynode *root)
{
	for (enum kind k = CLUSTER; k < KINDS; k++) {
		const struct kc_ynode *list = kc_ytree_get(root, kinds[k].list);

		for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++) {
			const struct kc_ynode *inner = kc_ytree_get(list->items[i], kinds[k].inner);

			if (inner && inner->kind == KC_YMAP && has_marker(inner))
				return true;
		}
	}
	return false;
}

static const struct kc_ynode *named(const struct kc_ynode *root, enum kind k, const char *name)
{
	const struct kc_ynode *list = kc_ytree_get(root, kinds[k].list);

	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++)
		if (kc_ytree_is(kc_ytree_get(list->items[i], "name"), name))
			return list->items[i];
	return NULL;
}

/* Entries the writer before markers made. With its header (no other tool has
 * rewritten the file), every entry of its shape. Without it (kubectl or awscli
 * rewrote the file and dropped the comment), in a file that holds no marker at
 * all, the entries of one of our names when its user entry holds a token and
 * nothing else and its context points at that name, as that writer wrote them. */
static void find_old(struct merge *m, const struct kc_ynode *root)
{
	const char *const token_only[] = { "token", NULL };

	if (m->old_header || any_marker(root))
		return;
	for (size_t j = 0; j < m->n; j++) {
		const char *name = m->ours[j].name;
		const struct kc_ynode *user = named(root, USER, name), *context = named(root, CONTEXT, name);
		const struct kc_ynode *u = kc_ytree_get(user, "user"), *c = kc_ytree_get(context, "context");

		m->old[j] = user && old_shape(user, &kinds[USER]) && keys_within(u, token_only) &&
			    kc_ytree_get(u, "token") && context && old_shape(context, &kinds[CONTEXT]) &&
			    kc_ytree_is(kc_ytree_get(c, "cluster"), name) && kc_ytree_is(kc_ytree_get(c, "user"), name);
	}
}

/* extensions: [{extension: {managed-by: pam-kubeconfig, note: ...}, name: pam-kubeconfig}],
 * keys in the order kubectl writes them. */
static struct kc_ynode *marker(void)
{
	struct kc_ynode *seq = kc_ytree_seq(), *named = kc_ytree_map(), *ext = kc_ytree_map();

	if (!seq || !named || !ext || kc_ytree_set(ext, "managed-by", kc_ytree_str(KC_MERGE_MARKER)) < 0 ||
	    kc_ytree_set(ext, "note", kc_ytree_str(MARKER_NOTE)) < 0) {
		kc_ytree_free(seq), kc_ytree_free(named), kc_ytree_free(ext);
		return NULL;
	}
	if (kc_ytree_set(named, "extension", ext) < 0 ||
	    kc_ytree_set(named, "name", kc_ytree_str(KC_MERGE_MARKER)) < 0) {
		kc_ytree_free(seq), kc_ytree_free(named);
		return NULL;
	}
	if (kc_ytree_push(seq, named) < 0) {
		kc_ytree_free(seq);
		return NULL;
	}
	return seq;
}

/* Our values in an entry's object; what else is there stays. A CA and the
 * insecure flag exclude each other, as a token and a token file do (client-go
 * refuses or silently prefers one of each pair). */
static int update_cluster(struct kc_ynode *c, const struct kc_merge_entry *e, const char *ca)
{
	const struct kc_ynode *insecure = kc_ytree_get(c, "insecure-skip-tls-verify");

	kc_ytree_del(c, "certificate-authority");
	if (ca) {
		kc_ytree_del(c, "insecure-skip-tls-verify");
		if (kc_ytree_set_str(c, "certificate-authority-data", ca) < 0)
			return -1;
	} else {
		kc_ytree_del(c, "certificate-authority-data");
		if (!(insecure && !insecure->tag && insecure->style == KC_YPLAIN && kc_ytree_is(insecure, "true")) &&
		    kc_ytree_set(c, "insecure-skip-tls-verify", kc_ytree_plain("true")) < 0)
			return -1;
	}
	return kc_ytree_set_str(c, "server", e->server);
}

static int update(enum kind k, struct kc_ynode *inner, const struct kc_merge_entry *e, const char *ca)
{
	if (k == CLUSTER)
		return update_cluster(inner, e, ca);
	if (k == CONTEXT)
		return kc_ytree_set_str(inner, "cluster", e->name) < 0 || kc_ytree_set_str(inner, "user", e->name) < 0
			       ? -1
			       : 0;
	if (e->token_file) {
		kc_ytree_del(inner, "token");
		return kc_ytree_set_str(inner, "tokenFile", e->token_file);
	}
	kc_ytree_del(inner, "tokenFile");
	return kc_ytree_set_str(inner, "token", e->token);
}

/* A new object, its keys sorted as kubectl sorts them, so that kubectl's
 * rewrite of the file leaves our entries' bytes alone. */
static int fill_new(enum kind k, struct kc_ynode *inner, const struct kc_merge_entry *e, const char *ca)
{
	if (k == CLUSTER && ca && kc_ytree_set_str(inner, "certificate-authority-data", ca) < 0)
		return -1;
	if (k == CONTEXT && kc_ytree_set_str(inner, "cluster", e->name) < 0)
		return -1;
	if (kc_ytree_set(inner, "extensions", marker()) < 0)
		return -1;
	if (k == CONTEXT && e->sa_namespace && *e->sa_namespace &&
	    kc_ytree_set_str(inner, "namespace", e->sa_namespace) < 0)
		return -1;
	return update(k, inner, e, ca);
}

static struct kc_ynode *create_entry(enum kind k, const struct kc_merge_entry *e, const char *ca)
{
	struct kc_ynode *item = kc_ytree_map(), *inner = kc_ytree_map();
	int rc = item && inner ? fill_new(k, inner, e, ca) : -1;

	if (rc == 0 && k == USER)
		rc = kc_ytree_set_str(item, "name", e->name);
	if (rc == 0) {
		rc = kc_ytree_set(item, kinds[k].inner, inner);
		inner = NULL;
	}
	if (rc == 0 && k != USER)
		rc = kc_ytree_set_str(item, "name", e->name);
	kc_ytree_free(inner);
	if (rc < 0) {
		kc_ytree_free(item);
		return NULL;
	}
	return item;
}

static void note_unmarked(struct merge *m, enum kind k, const char *name)
{
	char text[160];

	kc_ytree_printable(name, strlen(name), text, sizeof(text));
	kc_buf_printf(m->notes,
		      "%s \"%s\" has no pam-kubeconfig marker (another tool or you rewrote it): it is left as it is "
		      "and %s no longer updated at login; delete it to have ours written again\n",
		      kinds[k].inner, text, kinds[k].stale);
}

/* One entry of a list: 0 kept (updated or left), 1 removed, -1 failed. */
static int visit(struct merge *m, enum kind k, struct kc_ynode *list, size_t i)
{
	struct kc_ynode *item = list->items[i], *inner = kc_ytree_get(item, kinds[k].inner);
	ssize_t j = find_ours(m, kc_ytree_get(item, "name"));
	bool marked = inner && inner->kind == KC_YMAP && has_marker(inner);
	bool old = !marked && (m->old_header || (j >= 0 && m->old[j])) && old_shape(item, &kinds[k]);

	if (!marked && !old) {
		if (j >= 0 && !m->seen[j]) {
			m->seen[j] = true;
			note_unmarked(m, k, m->ours[j].name);
		}
		return 0;
	}
	if (j < 0 || m->seen[j]) {
		kc_ytree_remove_at(list, i);
		return 1;
	}
	m->seen[j] = true;
	if (marked)
		return update(k, inner, &m->ours[j], m->ca[j]);
	/* The old writer's entry (with its token) gives way to a marked one. */
	inner = create_entry(k, &m->ours[j], m->ca[j]);
	if (!inner)
		return -1;
	kc_ytree_free(item);
	list->items[i] = inner;
	return 0;
}

static int merge_list(struct merge *m, struct kc_ynode *root, enum kind k)
{
	struct kc_ynode *list = kc_ytree_get(root, kinds[k].list);

	if (list && !kc_ytree_is_null(list) && list->kind != KC_YSEQ) {
		kc_seterr(m->err, "line %u: \"%s\" is not a list; fix it or move the file away", list->line,
			  kinds[k].list);
		return -1;
	}
	memset(m->seen, 0, m->n * sizeof(*m->seen));
	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n;) {
		int rc = visit(m, k, list, i);

		if (rc < 0)
			goto oom;
		i += rc == 0;
	}
	for (size_t j = 0; j < m->n; j++) {
		if (m->seen[j])
			continue;
		if (!list || list->kind != KC_YSEQ) {
			list = kc_ytree_seq();
			if (kc_ytree_set(root, kinds[k].list, list) < 0)
				goto oom;
		}
		if (kc_ytree_push(list, create_entry(k, &m->ours[j], m->ca[j])) < 0)
			goto oom;
	}
	return 0;
oom:
	kc_seterr(m->err, "out of memory while merging");
	return -1;
}

static bool in_names(char **names, size_t n, const struct kc_ynode *name)
{
	for (size_t i = 0; i < n; i++)
		if (kc_ytree_is(name, names[i]))
			return true;
	return false;
}

static bool context_exists(const struct merge *m, const struct kc_ynode *root, const struct kc_ynode *name)
{
	const struct kc_ynode *list = kc_ytree_get(root, "contexts");

	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++) {
		const struct kc_ynode *other = kc_ytree_get(list->items[i], "name");

		if (other && other->kind == KC_YSCALAR && other->len == name->len &&
		    memcmp(other->value, name->value, name->len) == 0)
			return true;
	}
	return m->others && in_names(m->others->contexts, m->others->n_contexts, name);
}

/* current-context stays while it names a context here or in the other file;
 * else it becomes our first context, or empty when we have none. */
static int fix_current_context(struct merge *m, struct kc_ynode *root)
{
	const struct kc_ynode *cc = kc_ytree_get(root, "current-context");
	const char *want = m->n ? m->ours[0].name : "";
	bool set = cc && cc->kind == KC_YSCALAR && !kc_ytree_is_null(cc) && cc->len;

	if (cc && cc->kind != KC_YSCALAR) {
		kc_seterr(m->err, "line %u: \"current-context\" is not a string; fix it or move the file away",
			  cc->line);
		return -1;
	}
	if (set ? context_exists(m, root, cc) : !*want)
		return 0;
	if (set) {
		char old[160], now[160];

		kc_ytree_printable(cc->value, cc->len, old, sizeof(old));
		kc_ytree_printable(want, strlen(want), now, sizeof(now));
		kc_buf_printf(m->notes, "current-context \"%s\" named no context any more: %s%s%s\n", old,
			      *want ? "it is now \"" : "it is cleared", now, *want ? "\"" : "");
	}
	if (kc_ytree_set_str(root, "current-context", want) < 0) {
		kc_seterr(m->err, "out of memory while merging");
		return -1;
	}
	return 0;
}

static bool has_name(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* client-go takes the first file's entry on a name clash: ours is first in
 * KUBECONFIG, so the user's own entry of that name is hidden. */
static void clash_notes(struct merge *m)
{
	const struct kc_kubeconfig_names *o = m->others;

	for (size_t i = 0; o && i < m->n; i++) {
		const char *what[3];
		size_t k = 0;
		char text[160];

		if (has_name(o->contexts, o->n_contexts, m->ours[i].name))
			what[k++] = "context";
		if (has_name(o->clusters, o->n_clusters, m->ours[i].name))
			what[k++] = "cluster";
		if (has_name(o->users, o->n_users, m->ours[i].name))
			what[k++] = "user";
		if (!k)
			continue;
		kc_ytree_printable(m->ours[i].name, strlen(m->ours[i].name), text, sizeof(text));
		kc_buf_printf(m->notes,
			      "\"%s\" is also a %s%s%s%s%s name in %s: kubectl uses this file's, listed first "
			      "in KUBECONFIG\n",
			      text, what[0],
			      k == 3   ? ", "
			      : k == 2 ? " and "
				       : "",
			      k > 1 ? what[1] : "", k == 3 ? " and " : "", k == 3 ? what[2] : "",
			      o->label ? o->label : "your other kubeconfig");
	}
}

/* Nothing but the frame of a kubeconfig: the file may go. */
static bool only_frame(const struct kc_ynode *root)
{
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const struct kc_ynode *key = root->items[i], *v = root->items[i + 1];
		bool empty_list = kc_ytree_is_null(v) || (v->kind == KC_YSEQ && !v->n);

		if (kc_ytree_is(key, "apiVersion") || kc_ytree_is(key, "kind") || kc_ytree_is(key, "current-context"))
			continue;
		if (kc_ytree_is(key, "preferences") && (kc_ytree_is_null(v) || (v->kind == KC_YMAP && !v->n)))
			continue;
		if ((kc_ytree_is(key, "clusters") || kc_ytree_is(key, "contexts") || kc_ytree_is(key, "users")) &&
		    empty_list)
			continue;
		return false;
	}
	return true;
}

/* A new file has kubectl's frame and key order. */
static struct kc_ynode *new_file(void)
{
	struct kc_ynode *root = kc_ytree_map();

	if (!root || kc_ytree_set_str(root, "apiVersion", "v1") < 0 ||
	    kc_ytree_set(root, "clusters", kc_ytree_seq()) < 0 || kc_ytree_set(root, "contexts", kc_ytree_seq()) < 0 ||
	    kc_ytree_set_str(root, "current-context", "") < 0 || kc_ytree_set_str(root, "kind", "Config") < 0 ||
	    kc_ytree_set(root, "preferences", kc_ytree_map()) < 0 || kc_ytree_set(root, "users", kc_ytree_seq()) < 0) {
		kc_ytree_free(root);
		return NULL;
	}
	return root;
}

static int merge_tree(struct merge *m, struct kc_ynode *root)
{
	m->seen = calloc(m->n + 1, sizeof(*m->seen));
	m->old = calloc(m->n + 1, sizeof(*m->old));
	m->ca = calloc(m->n + 1, sizeof(*m->ca));
	if (!m->seen || !m->old || !m->ca)
		goto oom;
	find_old(m, root);
	for (size_t i = 0; i < m->n; i++)
		if (m->ours[i].ca_pem &&
		    !(m->ca[i] = kc_base64_encode(m->ours[i].ca_pem, m->ours[i].ca_pem_len, false)))
			goto oom;
	for (enum kind k = CLUSTER; k < KINDS; k++)
		if (merge_list(m, root, k) < 0)
			return -1;
	if (fix_current_context(m, root) < 0)
		return -1;
	clash_notes(m);
	return 0;
oom:
	kc_seterr(m->err, "out of memory while merging");
	return -1;
}

static int read_tree(const char *data, size_t len, struct kc_ynode **root, struct kc_err *err)
{
	if (kc_ytree_parse(data, len, root, err) < 0) {
		kc_seterr(err, "%s; fix it or move the file away", err->msg);
		return -1;
	}
	if (*root && (*root)->kind != KC_YMAP) {
		kc_seterr(err, "it is not a kubeconfig (its top level is not a mapping); fix it or move the file away");
		kc_ytree_free(*root);
		*root = NULL;
		return -1;
	}
	return 0;
}

int kc_kubeconfig_merge(const char *data, size_t len, const struct kc_merge_entry *ours, size_t n,
			const struct kc_kubeconfig_names *others, struct kc_buf *out, bool *changed, bool *empty,
			struct kc_buf *notes, struct kc_err *err)
{
	struct merge m = { .ours = ours, .n = n, .others = others, .notes = notes, .err = err };
	struct kc_ynode *root = NULL;
	size_t notes_len = notes->len;
	int rc = -1;

	*changed = *empty = false;
	out->secret = true;
	if (!data)
		len = 0;
	if (check_entries(ours, n, err) < 0 || read_tree(data, len, &root, err) < 0)
		return -1;
	if (!root && !n) {
		/* Nothing there and nothing of ours: no file is the result. */
		*empty = true;
		*changed = len > 0;
		return 0;
	}
	if (!root && !(root = new_file())) {
		kc_seterr(err, "out of memory while merging");
		return -1;
	}
	m.old_header = old_format_header(data, len);
	if (merge_tree(&m, root) == 0 && kc_ytree_emit(root, KC_YTREE_MAX_BYTES, out, err) == 0) {
		*empty = only_frame(root);
		*changed = out->len != len || (len && memcmp(out->data, data, len) != 0);
		rc = 0;
	}
	for (size_t i = 0; m.ca && i < n; i++)
		free(m.ca[i]);
	free(m.ca);
	free(m.seen);
	free(m.old);
	kc_ytree_free(root);
	if (rc < 0 && notes->data) {
		notes->len = notes_len;
		notes->data[notes_len] = '\0';
	}
	return rc;
}

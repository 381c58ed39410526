/* Merges our cluster, context and user entries into the user's kubeconfig,
 * keeping everything else another tool or the user put there. Ours are the
 * entries marked with the pam-kubeconfig NamedExtension (kubectl and awscli
 * keep extensions; they drop comments). Runs as the user, on bytes only. */
#include "asuser/kubeconfig_merge.h"
#include "asuser/kubeconfig_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asuser/kubeconfig_read.h"
#include "asuser/our_entries.h"

struct merge {
	const struct kc_merge_entry *ours;
	size_t n;
	const struct kc_kubeconfig_names *others;
	char **ca; /* base64 of each entry's CA, NULL when insecure */
	bool *seen; /* per entry of ours: an entry of its name is in the list (this kind) */
	bool *old; /* per entry of ours: its name's entries are the old writer's (see kc_ours_find_old) */
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

static ssize_t find_ours(const struct merge *m, const struct kc_ynode *name)
{
	for (size_t i = 0; name && i < m->n; i++)
		if (kc_ytree_is(name, m->ours[i].name))
			return (ssize_t)i;
	return -1;
}

static void note_unmarked(struct merge *m, enum kc_ours_kind k, const char *name)
{
	char text[160];

	kc_ytree_printable(name, strlen(name), text, sizeof(text));
	kc_buf_printf(m->notes,
		      "%s \"%s\" has no pam-kubeconfig marker (another tool or you rewrote it): it is left as it is "
		      "and %s no longer updated at login; delete it to have ours written again\n",
		      kc_ours_kinds[k].inner, text, kc_ours_kinds[k].stale);
}

/* One entry of a list: 0 kept (updated or left), 1 removed, -1 failed. */
static int visit(struct merge *m, enum kc_ours_kind k, struct kc_ynode *list, size_t i)
{
	struct kc_ynode *item = list->items[i], *inner = kc_ytree_get(item, kc_ours_kinds[k].inner);
	ssize_t j = find_ours(m, kc_ytree_get(item, "name"));
	bool marked = inner && inner->kind == KC_YMAP && kc_ours_marked(inner);
	bool old = !marked && (m->old_header || (j >= 0 && m->old[j])) && kc_ours_old_shape(item, k);

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
		return kc_ours_update(k, inner, &m->ours[j], m->ca[j]);
	/* The old writer's entry (with its token) gives way to a marked one. */
	inner = kc_ours_create(k, &m->ours[j], m->ca[j]);
	if (!inner)
		return -1;
	kc_ytree_free(item);
	list->items[i] = inner;
	return 0;
}

static int merge_list(struct merge *m, struct kc_ynode *root, enum kc_ours_kind k)
{
	struct kc_ynode *list = kc_ytree_get(root, kc_ours_kinds[k].list);

	if (list && !kc_ytree_is_null(list) && list->kind != KC_YSEQ) {
		kc_seterr(m->err, "line %u: \"%s\" is not a list; fix it or move the file away", list->mark.line,
			  kc_ours_kinds[k].list);
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
			if (kc_ytree_set(root, kc_ours_kinds[k].list, list) < 0)
				goto oom;
		}
		if (kc_ytree_push(list, kc_ours_create(k, &m->ours[j], m->ca[j])) < 0)
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
	return m->others && (m->others->unreadable || in_names(m->others->contexts, m->others->n_contexts, name));
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
			  cc->mark.line);
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
	if (!m->old_header)
		kc_ours_find_old(root, m->ours, m->n, m->old);
	for (size_t i = 0; i < m->n; i++)
		if (m->ours[i].ca_pem &&
		    !(m->ca[i] = kc_base64_encode(m->ours[i].ca_pem, m->ours[i].ca_pem_len, false)))
			goto oom;
	for (enum kc_ours_kind k = KC_OURS_CLUSTER; k < KC_OURS_KINDS; k++)
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
	if (kc_kubeconfig_read(data, len, root, err) < 0) {
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
	m.old_header = kc_ours_old_header(data, len);
	if (merge_tree(&m, root) == 0 && kc_ytree_emit(root, KC_KUBECONFIG_MAX_BYTES, out, err) == 0) {
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

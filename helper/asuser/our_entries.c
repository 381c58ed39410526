/* Our cluster, context and user entries as YAML: how we write them, how the
 * merge knows them (the marker, or the shape the writer before markers gave
 * them) and which of their values are ours to replace. */
#include "asuser/our_entries.h"

#include <string.h>

/* The header the writer before markers put on its files (helper/kubeconfig.c). */
#define OLD_HOST_ID_TAG "# pam-kubeconfig-host-id: "
/* Kept under 80 columns where kubectl writes it, so kubectl does not fold it. */
#define MARKER_NOTE "updated at login; remove this extension to keep the entry as is"

static const char *const old_cluster_keys[] = { "server", "certificate-authority-data", "insecure-skip-tls-verify",
						NULL };
static const char *const old_context_keys[] = { "cluster", "user", "namespace", NULL };
static const char *const old_user_keys[] = { "token", NULL };

const struct kc_ours_desc kc_ours_kinds[KC_OURS_KINDS] = {
	{ "clusters", "cluster", "its server and certificate are", old_cluster_keys },
	{ "contexts", "context", "its cluster and user are", old_context_keys },
	{ "users", "user", "its token is", old_user_keys },
};

/* The old writer's header sits in the leading comment lines; any rewrite by
 * another tool drops comments, so the header means the old writer's own file. */
bool kc_ours_old_header(const char *data, size_t len)
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

bool kc_ours_marked(const struct kc_ynode *inner)
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
bool kc_ours_old_shape(const struct kc_ynode *item, enum kc_ours_kind k)
{
	const struct kc_ours_desc *kd = &kc_ours_kinds[k];
	const char *item_keys[] = { "name", kd->inner, NULL };
	const struct kc_ynode *inner = kc_ytree_get(item, kd->inner);

	return item->kind == KC_YMAP && keys_within(item, item_keys) && inner && inner->kind == KC_YMAP &&
	       keys_within(inner, kd->old_keys);
}

static bool any_marker(const struct kc_ynode *root)
{
	for (enum kc_ours_kind k = KC_OURS_CLUSTER; k < KC_OURS_KINDS; k++) {
		const struct kc_ynode *list = kc_ytree_get(root, kc_ours_kinds[k].list);

		for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++) {
			const struct kc_ynode *inner = kc_ytree_get(list->items[i], kc_ours_kinds[k].inner);

			if (inner && inner->kind == KC_YMAP && kc_ours_marked(inner))
				return true;
		}
	}
	return false;
}

static const struct kc_ynode *named(const struct kc_ynode *root, enum kc_ours_kind k, const char *name)
{
	const struct kc_ynode *list = kc_ytree_get(root, kc_ours_kinds[k].list);

	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++)
		if (kc_ytree_is(kc_ytree_get(list->items[i], "name"), name))
			return list->items[i];
	return NULL;
}

/* The names whose entries the writer before markers made, in a file without
 * its header (kubectl or awscli rewrote it and dropped the comment): when the
 * file holds no marker at all, the entries of one of our names whose user
 * entry holds a token and nothing else and whose context points at that name,
 * as that writer wrote them. Sets old[j] for ours[j]. */
void kc_ours_find_old(const struct kc_ynode *root, const struct kc_merge_entry *ours, size_t n, bool *old)
{
	const char *const token_only[] = { "token", NULL };

	if (any_marker(root))
		return;
	for (size_t j = 0; j < n; j++) {
		const char *name = ours[j].name;
		const struct kc_ynode *user = named(root, KC_OURS_USER, name);
		const struct kc_ynode *context = named(root, KC_OURS_CONTEXT, name);
		const struct kc_ynode *u = kc_ytree_get(user, "user"), *c = kc_ytree_get(context, "context");

		old[j] = user && kc_ours_old_shape(user, KC_OURS_USER) && keys_within(u, token_only) &&
			 kc_ytree_get(u, "token") && context && kc_ours_old_shape(context, KC_OURS_CONTEXT) &&
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

int kc_ours_update(enum kc_ours_kind k, struct kc_ynode *inner, const struct kc_merge_entry *e, const char *ca)
{
	if (k == KC_OURS_CLUSTER)
		return update_cluster(inner, e, ca);
	if (k == KC_OURS_CONTEXT)
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
static int fill_new(enum kc_ours_kind k, struct kc_ynode *inner, const struct kc_merge_entry *e, const char *ca)
{
	if (k == KC_OURS_CLUSTER && ca && kc_ytree_set_str(inner, "certificate-authority-data", ca) < 0)
		return -1;
	if (k == KC_OURS_CONTEXT && kc_ytree_set_str(inner, "cluster", e->name) < 0)
		return -1;
	if (kc_ytree_set(inner, "extensions", marker()) < 0)
		return -1;
	if (k == KC_OURS_CONTEXT && e->sa_namespace && *e->sa_namespace &&
	    kc_ytree_set_str(inner, "namespace", e->sa_namespace) < 0)
		return -1;
	return kc_ours_update(k, inner, e, ca);
}

struct kc_ynode *kc_ours_create(enum kc_ours_kind k, const struct kc_merge_entry *e, const char *ca)
{
	struct kc_ynode *item = kc_ytree_map(), *inner = kc_ytree_map();
	int rc = item && inner ? fill_new(k, inner, e, ca) : -1;

	if (rc == 0 && k == KC_OURS_USER)
		rc = kc_ytree_set_str(item, "name", e->name);
	if (rc == 0) {
		rc = kc_ytree_set(item, kc_ours_kinds[k].inner, inner);
		inner = NULL;
	}
	if (rc == 0 && k != KC_OURS_USER)
		rc = kc_ytree_set_str(item, "name", e->name);
	kc_ytree_free(inner);
	if (rc < 0) {
		kc_ytree_free(item);
		return NULL;
	}
	return item;
}

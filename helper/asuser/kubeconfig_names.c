/* The names another kubeconfig file (the user's ~/.kube/config) defines: for
 * its clash notes and for a current-context that names a context of that file.
 *
 * That file is the user's, written by hand or by any tool, and never written
 * here: it is read as kubectl reads it, not with the merge's strict limits.
 * Anchors and aliases are fine (an alias is never followed: where a name would
 * be it counts as no name), keys may be anything and appear twice, and only the
 * first document is read. Its size is the caller's cap (the writer reads up to
 * 8 MiB); the tree's depth and values are capped here, as the reader needs. */
#include "asuser/kubeconfig_names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ytree.h"

/* libyaml keeps a state per open level: a file of brackets must not grow it
 * without end. A kubeconfig's names sit 3 levels down; 64 more are allowed
 * below them. */
#define NAMES_MAX_LEVELS (3 + 64)
#define NAMES_MAX_NODES 500000

static const struct kc_ytree_limits lenient = {
	.max_bytes = SIZE_MAX,
	.max_nodes = NAMES_MAX_NODES,
	.max_depth = NAMES_MAX_LEVELS,
	.max_collection_depth = NAMES_MAX_LEVELS - 1,
	.flags = KC_YTREE_ALIASES | KC_YTREE_FIRST_DOCUMENT,
};

/* A node as a plain string: a scalar without NUL bytes (an untagged null
 * counts as none). NULL otherwise: an alias, a list, a mapping. */
static const char *name_of(const struct kc_ynode *n)
{
	if (n->kind != KC_YSCALAR || strlen(n->value) != n->len || kc_ytree_is_null(n))
		return NULL;
	return n->value;
}

static int add_name(char ***names, size_t *n, const char *name)
{
	char **grown = reallocarray(*names, *n + 1, sizeof(**names));

	if (!grown)
		return -1;
	*names = grown;
	if (!((*names)[*n] = strdup(name)))
		return -1;
	(*n)++;
	return 0;
}

/* The name: of each entry of contexts:, clusters: or users: that has a string
 * there; an entry that is not a mapping has none. */
static int read_list(const struct kc_ynode *list, char ***names, size_t *n)
{
	for (size_t i = 0; list->kind == KC_YSEQ && i < list->n; i++) {
		const struct kc_ynode *entry = list->items[i];

		for (size_t k = 0; entry->kind == KC_YMAP && k + 1 < entry->n; k += 2) {
			const char *key = name_of(entry->items[k]), *name = name_of(entry->items[k + 1]);

			if (key && !strcmp(key, "name") && name && add_name(names, n, name) < 0)
				return -1;
		}
	}
	return 0;
}

/* The top-level keys in order: a later current-context: replaces an earlier one. */
static int read_top(const struct kc_ynode *root, struct kc_kubeconfig_names *out)
{
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const char *key = name_of(root->items[i]);
		const struct kc_ynode *v = root->items[i + 1];
		int rc = 0;

		if (!key)
			continue;
		if (!strcmp(key, "current-context")) {
			free(out->current_context);
			out->current_context = NULL;
			if (name_of(v) && !(out->current_context = strdup(name_of(v))))
				rc = -1;
		} else if (!strcmp(key, "contexts")) {
			rc = read_list(v, &out->contexts, &out->n_contexts);
		} else if (!strcmp(key, "clusters")) {
			rc = read_list(v, &out->clusters, &out->n_clusters);
		} else if (!strcmp(key, "users")) {
			rc = read_list(v, &out->users, &out->n_users);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void say(const struct kc_ytree_error *e, struct kc_err *err)
{
	switch (e->fault) {
	case KC_YTREE_NOMEM: kc_seterr(err, "out of memory while reading it"); break;
	case KC_YTREE_YAML_NOMEM:
	case KC_YTREE_NOT_TEXT:
	case KC_YTREE_SYNTAX:
		kc_seterr(err, "line %u: %s; kubectl will not read it either", e->mark.line,
			  e->problem ? e->problem : "not YAML");
		break;
	case KC_YTREE_TOO_DEEP:
		kc_seterr(err, "line %u: nested more than %d levels", e->mark.line, NAMES_MAX_LEVELS);
		break;
	case KC_YTREE_TOO_MANY: kc_seterr(err, "line %u: more than %d values", e->mark.line, NAMES_MAX_NODES); break;
	default: kc_seterr(err, "line %u: unexpected YAML structure", e->mark.line); break;
	}
}

int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err)
{
	struct kc_ynode *root = NULL;
	struct kc_ytree_error e;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!data || len == 0)
		return 0;
	if (kc_ytree_read(data, len, &lenient, &root, &e) < 0) {
		say(&e, err);
		return -1;
	}
	/* No document, or only a null: no names. */
	if (root && !(root->kind == KC_YSCALAR && !name_of(root))) {
		if (root->kind != KC_YMAP) {
			kc_seterr(err, "it is not a kubeconfig (its top level is not a mapping)");
			rc = -1;
		} else if (read_top(root, out) < 0) {
			kc_seterr(err, "out of memory while reading it");
			rc = -1;
		}
	}
	kc_ytree_free(root);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void kc_kubeconfig_names_free(struct kc_kubeconfig_names *names)
{
	free_names(names->contexts, names->n_contexts);
	free_names(names->clusters, names->n_clusters);
	free_names(names->users, names->n_users);
	free(names->current_context);
	memset(names, 0, sizeof(*names));
}

/* The names another kubeconfig file (the user's ~/.kube/config) defines, read
 * with the same strict reader as the merge: for its clash notes and for a
 * current-context that names a context of that file. */
#include "kc_merge.h"

#include <stdlib.h>
#include <string.h>

#include "kc_ytree.h"

static int collect_names(const struct kc_ynode *root, const char *key, char ***names, size_t *n)
{
	const struct kc_ynode *list = kc_ytree_get(root, key);

	for (size_t i = 0; list && list->kind == KC_YSEQ && i < list->n; i++) {
		const struct kc_ynode *name = kc_ytree_get(list->items[i], "name");
		char **grown;

		/* A name with a NUL byte in it cannot be one of ours: skip it. */
		if (!name || name->kind != KC_YSCALAR || strlen(name->value) != name->len)
			continue;
		grown = reallocarray(*names, *n + 1, sizeof(**names));
		if (!grown)
			return -1;
		*names = grown;
		if (!((*names)[*n] = strdup(name->value)))
			return -1;
		(*n)++;
	}
	return 0;
}

int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err)
{
	struct kc_ynode *root = NULL;
	const struct kc_ynode *cc;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (kc_ytree_parse(data, data ? len : 0, &root, err) < 0)
		return -1;
	if (!root)
		return 0;
	if (root->kind != KC_YMAP) {
		kc_seterr(err, "it is not a kubeconfig (its top level is not a mapping)");
		kc_ytree_free(root);
		return -1;
	}
	if (collect_names(root, "contexts", &out->contexts, &out->n_contexts) < 0 ||
	    collect_names(root, "clusters", &out->clusters, &out->n_clusters) < 0 ||
	    collect_names(root, "users", &out->users, &out->n_users) < 0) {
		kc_seterr(err, "out of memory while reading it");
		rc = -1;
	}
	cc = kc_ytree_get(root, "current-context");
	if (rc == 0 && cc && cc->kind == KC_YSCALAR && !kc_ytree_is_null(cc) && strlen(cc->value) == cc->len &&
	    !(out->current_context = strdup(cc->value))) {
		kc_seterr(err, "out of memory while reading it");
		rc = -1;
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

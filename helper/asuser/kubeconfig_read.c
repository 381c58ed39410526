/* A kubeconfig read strictly for the merge (see kubeconfig_read.h): the one
 * YAML reader within the merge's limits, and its refusals in the words the
 * user reads at login. */
#include "asuser/kubeconfig_read.h"

#define MAX_NODES 100000

static const struct kc_ytree_limits strict = {
	.max_bytes = KC_KUBECONFIG_MAX_BYTES,
	.max_nodes = MAX_NODES,
	.max_depth = KC_KUBECONFIG_MAX_DEPTH,
	.max_collection_depth = KC_KUBECONFIG_MAX_DEPTH - 1,
	.flags = KC_YTREE_STRING_KEYS,
};

static void say(const struct kc_ytree_error *e, size_t len, struct kc_err *err)
{
	unsigned line = e->mark.line;

	switch (e->fault) {
	case KC_YTREE_NOMEM:
	case KC_YTREE_YAML_NOMEM: kc_seterr(err, "out of memory while reading it"); break;
	case KC_YTREE_NOT_TEXT:
		kc_seterr(err, "byte %zu: not valid YAML text (%s)", e->offset, e->problem ? e->problem : "unreadable");
		break;
	case KC_YTREE_SYNTAX:
		kc_seterr(err, "line %u, column %u: not valid YAML (%s)", line, e->mark.col,
			  e->problem ? e->problem : "syntax error");
		break;
	case KC_YTREE_TOO_BIG:
		kc_seterr(err, "it is %zu bytes, more than the %d a kubeconfig may have here", len,
			  KC_KUBECONFIG_MAX_BYTES);
		break;
	case KC_YTREE_TOO_MANY: kc_seterr(err, "line %u: more than %d values", line, MAX_NODES); break;
	case KC_YTREE_TOO_DEEP:
		kc_seterr(err, "line %u: nested deeper than %d levels", line, KC_KUBECONFIG_MAX_DEPTH);
		break;
	case KC_YTREE_ALIAS:
		kc_seterr(err, "line %u: an alias (*name); kubeconfig files use none, write the value out in full",
			  line);
		break;
	case KC_YTREE_SECOND_DOCUMENT:
		kc_seterr(err, "line %u: a second YAML document; a kubeconfig holds one", line);
		break;
	case KC_YTREE_KEY_NOT_STRING: kc_seterr(err, "line %u: a mapping key that is not a string", line); break;
	case KC_YTREE_KEY_EMPTY: kc_seterr(err, "line %u: an empty mapping key", line); break;
	case KC_YTREE_KEY_TWICE:
		kc_seterr(err, "line %u: the key \"%s\" appears twice in one mapping", line, e->key);
		break;
	default: kc_seterr(err, "line %u: unexpected YAML structure", line); break;
	}
}

int kc_kubeconfig_read(const char *data, size_t len, struct kc_ynode **root, struct kc_err *err)
{
	struct kc_ytree_error e;

	if (kc_ytree_read(data, len, &strict, root, &e) < 0) {
		say(&e, len, err);
		return -1;
	}
	if (*root && kc_ytree_is_null(*root)) {
		kc_ytree_free(*root);
		*root = NULL;
	}
	return 0;
}

/* The config's YAML, read strictly into the common tree (see tree.h). */
#include "config/tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct kc_ytree_limits config_limits = {
	.max_bytes = KC_CONFIG_MAX,
	.max_nodes = 2000000,
	.max_depth = 32,
	.max_collection_depth = 32,
	.flags = KC_YTREE_NO_NUL,
};

int cfg_fail_at(struct cfg_ctx *c, struct kc_mark m, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kc_seterr(c->err, "%s:%u:%u: %s", c->path, m.line, m.col, msg);
	return -1;
}

static void say(struct cfg_ctx *c, const struct kc_ytree_error *e, size_t len)
{
	switch (e->fault) {
	case KC_YTREE_NOMEM:
		if (!e->mark.line)
			kc_seterr(c->err, "%s: out of memory", c->path);
		else
			cfg_fail_at(c, e->mark, "out of memory");
		break;
	case KC_YTREE_YAML_NOMEM:
	case KC_YTREE_NOT_TEXT:
	case KC_YTREE_SYNTAX:
		cfg_fail_at(c, e->mark, "YAML syntax error: %s%s%s", e->problem ? e->problem : "unknown",
			    e->context ? " " : "", e->context ? e->context : "");
		break;
	case KC_YTREE_TOO_BIG:
		kc_seterr(c->err, "%s: %zu bytes, more than the %u allowed", c->path, len, KC_CONFIG_MAX);
		break;
	case KC_YTREE_TOO_MANY:
		cfg_fail_at(c, e->mark, "more than %zu values in one file", config_limits.max_nodes);
		break;
	case KC_YTREE_TOO_DEEP:
		cfg_fail_at(c, e->mark, "nested more than %u levels deep", config_limits.max_depth);
		break;
	case KC_YTREE_ALIAS:
		cfg_fail_at(c, e->mark, "YAML aliases (*name) are not supported; write the value out");
		break;
	case KC_YTREE_NUL: cfg_fail_at(c, e->mark, "a value contains a NUL byte"); break;
	case KC_YTREE_SECOND_DOCUMENT:
		cfg_fail_at(c, e->mark, "a second YAML document; the config is one document");
		break;
	default: cfg_fail_at(c, e->mark, "unexpected YAML event"); break;
	}
}

struct kc_ynode *cfg_tree_parse(struct cfg_ctx *c, const char *data, size_t len)
{
	struct kc_ytree_error e;
	struct kc_ynode *root;

	if (kc_ytree_read(data, len, &config_limits, &root, &e) < 0) {
		say(c, &e, len);
		return NULL;
	}
	if (!root) {
		struct kc_mark m = { 1, 1 };

		cfg_fail_at(c, m, "the file is empty; see pam_kubeconfig.yaml(5) for the format");
	}
	return root;
}

/* ---- typed access with strict checks ------------------------------------ */

bool cfg_plain(const struct kc_ynode *v)
{
	return v->kind == KC_YSCALAR && v->style == KC_YPLAIN && (!v->tag || strcmp(v->tag, "!") == 0);
}

const char *cfg_kind_name(enum kc_ynode_kind k)
{
	return k == KC_YMAP ? "a mapping" : k == KC_YSEQ ? "a list" : "a single value";
}

int cfg_check_keys(struct cfg_ctx *c, const struct kc_ynode *map, const char *what, const char *const allowed[])
{
	if (map->kind != KC_YMAP)
		return cfg_fail_at(c, map->mark, "%s must be a mapping of key: value, not %s", what,
				   cfg_kind_name(map->kind));
	for (size_t i = 0; i < map->n; i += 2) {
		const struct kc_ynode *k = map->items[i];
		bool known = false;

		if (k->kind != KC_YSCALAR)
			return cfg_fail_at(c, k->mark, "keys in %s must be plain words", what);
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(map->items[j]->value, k->value) == 0)
				return cfg_fail_at(c, k->mark, "duplicate key '%s' in %s (first at line %u); keep one",
						   k->value, what, map->items[j]->mark.line);
		for (size_t j = 0; allowed[j]; j++)
			if (strcmp(allowed[j], k->value) == 0)
				known = true;
		if (!known) {
			char list[512] = "";
			size_t off = 0;

			for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "",
							allowed[j]);
			return cfg_fail_at(c, k->mark, "unknown key '%s' in %s; expected one of: %s", k->value, what,
					   list);
		}
	}
	return 0;
}

struct kc_mark cfg_mark_of(const struct kc_ynode *map, const char *key)
{
	const struct kc_ynode *v = kc_ytree_get(map, key);

	return v ? v->mark : map->mark;
}

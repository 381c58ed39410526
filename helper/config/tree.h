/* The config room's YAML reader: libyaml events into a small tree with marks,
 * strictly (one document, no aliases, depth and size capped), and the error
 * every refusal becomes: PATH:LINE:COL: what is wrong and what to write. */
#ifndef KC_CONFIG_TREE_H
#define KC_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "common/util.h"

enum cfg_kind { CFG_SCALAR, CFG_MAP, CFG_SEQ };

struct cfg_node {
	enum cfg_kind kind;
	struct kc_mark mark;
	char *value; /* scalars */
	bool plain; /* an unquoted scalar: may be a bool or a number */
	struct cfg_node **items; /* a map: key, value, key, value...; a list: its items */
	size_t n, cap;
};

struct cfg_ctx {
	const char *path;
	struct kc_err *err;
	unsigned flags;
	size_t nodes;
};

int cfg_fail_at(struct cfg_ctx *c, struct kc_mark m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The document's root, or NULL (err set). Caller frees with cfg_node_free(). */
struct cfg_node *cfg_tree_parse(struct cfg_ctx *c, const char *data, size_t len);
void cfg_node_free(struct cfg_node *n);

/* The value under key in a map, NULL when absent. */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);
/* Where key's value is (the map's own mark when key is absent). */
struct kc_mark cfg_mark_of(const struct cfg_node *map, const char *key);
const char *cfg_kind_name(enum cfg_kind k);
/* map is a mapping whose keys are all plain words from allowed (NULL-ended). */
int cfg_check_keys(struct cfg_ctx *c, const struct cfg_node *map, const char *what, const char *const allowed[]);

#endif

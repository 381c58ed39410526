/* The config room's view of the YAML tree (common/ytree.h): the config read
 * strictly (one document, no aliases, no NUL bytes, depth and values capped),
 * and the error every refusal becomes: PATH:LINE:COL: what is wrong and what
 * to write. */
#ifndef KC_CONFIG_TREE_H
#define KC_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "common/util.h"
#include "common/ytree.h"

struct cfg_ctx {
	const char *path;
	struct kc_err *err;
	unsigned flags;
};

int cfg_fail_at(struct cfg_ctx *c, struct kc_mark m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The document's root, or NULL (err set). Caller frees with kc_ytree_free(). */
struct kc_ynode *cfg_tree_parse(struct cfg_ctx *c, const char *data, size_t len);

/* An unquoted scalar (untagged, or tagged "!"): it may be a bool or a number. */
bool cfg_plain(const struct kc_ynode *v);
/* Where key's value is (the map's own mark when key is absent). */
struct kc_mark cfg_mark_of(const struct kc_ynode *map, const char *key);
const char *cfg_kind_name(enum kc_ynode_kind k);
/* map is a mapping whose keys are all plain words from allowed (NULL-ended). */
int cfg_check_keys(struct cfg_ctx *c, const struct kc_ynode *map, const char *what, const char *const allowed[]);

#endif

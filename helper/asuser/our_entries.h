/* Our cluster, context and user entries as YAML, for the merge: how they are
 * written, known (the marker, or the shape the writer before markers gave
 * them) and updated. Internal to helper/asuser. */
#ifndef KC_OUR_ENTRIES_H
#define KC_OUR_ENTRIES_H

#include <stdbool.h>
#include <stddef.h>

#include "asuser/kubeconfig_merge.h"
#include "common/ytree.h"

enum kc_ours_kind { KC_OURS_CLUSTER, KC_OURS_CONTEXT, KC_OURS_USER, KC_OURS_KINDS };

struct kc_ours_desc {
	const char *list; /* the top-level key: "clusters" */
	const char *inner; /* the entry's object: "cluster" */
	const char *stale; /* what a note says is no longer updated */
	const char *const *old_keys; /* the old writer's keys in that object */
};

extern const struct kc_ours_desc kc_ours_kinds[KC_OURS_KINDS];

/* An entry's object (cluster:, context:, user:) carries our marker. */
bool kc_ours_marked(const struct kc_ynode *inner);

/* The file starts with the old writer's comment header. */
bool kc_ours_old_header(const char *data, size_t len);
/* An entry with the old writer's keys only (name and an object of its keys). */
bool kc_ours_old_shape(const struct kc_ynode *item, enum kc_ours_kind k);
/* See our_entries.c: which of our names have the old writer's entries in a
 * file that lost the header. */
void kc_ours_find_old(const struct kc_ynode *root, const struct kc_merge_entry *ours, size_t n, bool *old);

/* A new entry of ours, marked, keys in kubectl's order; NULL when out of
 * memory. ca: the base64 CA, NULL for insecure_skip_tls_verify. */
struct kc_ynode *kc_ours_create(enum kc_ours_kind k, const struct kc_merge_entry *e, const char *ca);
/* Our values in an existing entry's object; its other keys stay. */
int kc_ours_update(enum kc_ours_kind k, struct kc_ynode *inner, const struct kc_merge_entry *e, const char *ca);

#endif

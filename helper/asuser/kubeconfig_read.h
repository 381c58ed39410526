/* The user's kubeconfig (~/.kube/config-eks) read strictly into the YAML tree,
 * for the merge to edit: one document, no aliases, string keys each once, size,
 * depth and values capped; each refusal a sentence naming the line. */
#ifndef KC_ASUSER_KUBECONFIG_READ_H
#define KC_ASUSER_KUBECONFIG_READ_H

#include <stddef.h>

#include "common/util.h"
#include "common/ytree.h"

#define KC_KUBECONFIG_MAX_BYTES (1024 * 1024)
#define KC_KUBECONFIG_MAX_DEPTH 32 /* levels of mappings and sequences */

/* *root is NULL when the file holds no document (empty, only comments) or only
 * a null. Returns 0, or -1 with err saying what is wrong and where. Caller
 * frees with kc_ytree_free(). */
int kc_kubeconfig_read(const char *data, size_t len, struct kc_ynode **root, struct kc_err *err);

#endif

/* The least privilege the helper's identity needs under a config: computed once,
 * printed as a manifest by `rbac` and checked against a server by `check --online`. */
#ifndef KC_RBAC_H
#define KC_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "kc_config.h"

#define KC_DEFAULT_IDENTITY "pam-kubeconfig"

struct kc_strset {
	char **items;
	size_t n, cap;
};
int kc_strset_add(struct kc_strset *s, const char *v);
void kc_strset_free(struct kc_strset *s);

/* What one namespace needs. An empty name set with *_any false means none. */
struct kc_rbac_ns {
	char *ns;
	struct kc_strset token_names; /* serviceaccounts/token create, by name */
	bool token_any; /* ... namespace-wide ("*" rules create them) */
	bool secrets; /* create/delete the revocation Secrets */
	bool reconcile; /* get/create serviceaccounts, get/create/delete rolebindings */
	struct kc_strset bind_roles; /* ClusterRoles bound by RoleBindings here */
};

struct kc_rbac {
	const struct kc_cluster *cluster;
	struct kc_rbac_ns *ns;
	size_t n_ns;
	struct kc_strset cluster_bind_roles; /* ClusterRoles bound cluster-wide */
};

/* Needs for one cluster. A templated namespace cannot be limited by a Role and
 * is an error. Caller frees with kc_rbac_free(). */
int kc_rbac_compute(const struct kc_config *cfg, const struct kc_cluster *cl, struct kc_rbac *out, struct kc_err *err);
void kc_rbac_free(struct kc_rbac *r);

/* The manifest (Namespaces, Roles, RoleBindings, ClusterRole/Binding) for every
 * cluster of the config, for the Kubernetes user `identity`. */
int kc_rbac_manifest(const struct kc_config *cfg, const char *identity, struct kc_buf *out, struct kc_err *err);

#endif

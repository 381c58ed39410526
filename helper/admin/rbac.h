/* The least privilege the helper's identity needs under a config: computed once
 * as a list of rules, printed as a manifest by `rbac` and probed rule by rule by
 * `check --online`, so the two can never disagree. */
#ifndef KC_RBAC_H
#define KC_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define KC_DEFAULT_IDENTITY "pam-kubeconfig"
#define KC_RBAC_OBJECT "pam-kubeconfig-minter" /* the name of every Role and binding `rbac` prints */

struct kc_strset {
	char **items;
	size_t n, cap;
};
int kc_strset_add(struct kc_strset *s, const char *v);
void kc_strset_free(struct kc_strset *s);

/* What one namespace needs. A name set with its *_any false limits the rule by
 * resourceNames; *_any true means every object (a "*" rule names them after users). */
struct kc_rbac_ns {
	char *ns;
	struct kc_strset token_names; /* serviceaccounts/token create */
	bool token_any;
	bool secrets; /* create/delete the revocation Secrets */
	bool reconcile; /* create: true rules make ServiceAccounts here */
	struct kc_strset sa_names; /* ... get them by these names */
	bool sa_any;
	struct kc_strset binding_names; /* RoleBindings those rules make here: get/delete */
	bool binding_any;
	struct kc_strset bind_roles; /* ClusterRoles bound by RoleBindings here */
	bool fleet; /* the fleet's namespace: its ConfigMaps (lifecycle/fleet.h) */
};

/* One rule of the manifest. ns NULL: a rule of the ClusterRole. resource is as
 * the manifest writes it ("serviceaccounts/token"). names NULL: every object. */
struct kc_rbac_rule {
	const char *ns;
	const char *group;
	const char *resource;
	const struct kc_strset *names;
	const char *const *verbs;
	size_t n_verbs;
};

struct kc_rbac {
	const struct kc_cluster *cluster;
	struct kc_rbac_ns *ns;
	size_t n_ns;
	struct kc_strset cluster_bind_roles; /* ClusterRoles bound cluster-wide */
	struct kc_strset cluster_binding_names; /* the ClusterRoleBindings those rules make */
	struct kc_rbac_rule *rules; /* every rule, in the manifest's order; point into this struct */
	size_t n_rules;
};

/* Needs for one cluster. A templated namespace cannot be limited by a Role, nor a
 * templated cluster_wide ServiceAccount by resourceNames: both are errors. Caller
 * frees with kc_rbac_free(). */
int kc_rbac_compute(const struct kc_config *cfg, const struct kc_cluster *cl, struct kc_rbac *out, struct kc_err *err);
void kc_rbac_free(struct kc_rbac *r);

/* The manifest (Namespaces, Roles, RoleBindings, ClusterRole/Binding) for one
 * cluster of the config, for the Kubernetes user `identity`. cluster may be NULL
 * only when the config has one cluster: each cluster's objects belong on it alone. */
int kc_rbac_manifest(const struct kc_config *cfg, const char *cluster, const char *identity, struct kc_buf *out,
		     struct kc_err *err);

#endif

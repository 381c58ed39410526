/* The objects the helper keeps on a cluster: the per-user revocation Secret,
 * the ServiceAccounts and bindings of create: true rules, and the access
 * reviews of `check --online`. */
#ifndef KC_KUBE_OBJECTS_H
#define KC_KUBE_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"
#include "kube/kubeapi.h"

/* Who the Secret is made for, written into its annotations (pam-kubeconfig/user,
 * /uid, /host, /session, /rhost, /created, /reason), so that the cluster
 * itself answers which bastion login made it. No secret. */
struct kc_secret_origin {
	const char *user;
	uid_t uid;
	const char *host; /* the host id */
	const char *sessions; /* "ID,ID": the login sessions it is made for; NULL: none */
	const char *rhosts; /* their remote hosts, in the same order */
	const char *reason; /* "login", "refresh" */
};

/* The per-user revocation Secret. create: 0 made (*uid set), 1 exists already,
 * -1 error. secret_uid (a dry-run delete): 0 found (*uid set), 1 gone, -1.
 * delete (with preconditions.uid): 0 deleted, 1 that incarnation is gone, -1. */
int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const struct kc_secret_origin *o,
			  char uid[64], struct kc_err *err);
int kc_kube_secret_uid(struct kc_kube *k, const char *ns, const char *name, char uid[64], struct kc_err *err);
int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, const char *uid, struct kc_err *err);

/* create: true: the ServiceAccount exists, and when clusterrole is set a
 * (Cluster)RoleBinding named kc_kube_binding_name() binds it to that role. */
int kc_kube_reconcile(struct kc_kube *k, const char *ns, const char *name, const char *clusterrole, bool cluster_wide,
		      struct kc_err *err);
void kc_kube_binding_name(const char *ns, const char *name, bool cluster_wide, char *out, size_t len);

/* SelfSubjectAccessReview: may the helper's identity do this? */
int kc_kube_can_i(struct kc_kube *k, const char *verb, const char *group, const char *resource, const char *subresource,
		  const char *ns, const char *name, bool *allowed, struct kc_err *err);

/* "pam-kubeconfig-" + a hash of host id, user and cluster: a valid name for any user. */
void kc_kube_secret_name(const char *host_id, const char *user, const char *cluster, char *out, size_t len);

#endif

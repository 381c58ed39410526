/* The Kubernetes API as the helper needs it: one HTTPS connection per server,
 * only the configured CA trusted, JSON strictly parsed, errors as one line a
 * sysadmin can act on. */
#ifndef KC_KUBEAPI_H
#define KC_KUBEAPI_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "kc_config.h"

#define KC_RESPONSE_MAX (1u << 20)

struct kc_kube;

/* Connects lazily; loads the helper's credential for the cluster now (a secret
 * kept in wiped memory). Caller frees with kc_kube_close(). */
struct kc_kube *kc_kube_open(const struct kc_config *cfg, const struct kc_cluster *cl, struct kc_err *err);
void kc_kube_close(struct kc_kube *k);
/* How many requests this connection sent (for tests and benchmarks). */
unsigned kc_kube_requests(const struct kc_kube *k);
/* All calls from now on end by this monotonic time (kc_now_ms()). */
void kc_kube_set_deadline(struct kc_kube *k, long long deadline_ms);
/* Did a call fail for want of a healthy server (transport error, timeout, 5xx)? */
bool kc_kube_unreachable(const struct kc_kube *k);

/* What a call was for, to phrase its errors. */
struct kc_action {
	const char *verb; /* "create" */
	const char *resource; /* "serviceaccounts/token" */
	const char *ns;
	const char *name;
};

/* One request. Returns the HTTP status (>= 100) with *resp the parsed body (may
 * be NULL; caller json_decref()s), or -1 on a transport or parse error. */
long kc_kube_call(struct kc_kube *k, const char *method, const char *path, json_t *body, json_t **resp,
		  struct kc_err *err);
/* Turns an error status into the one-line message for the action. */
void kc_kube_status_error(struct kc_kube *k, long status, json_t *resp, const struct kc_action *what,
			  struct kc_err *err);

/* The same for any cluster name, without a connection (tests, fuzzers). */
void kc_status_error(const char *cluster, long status, json_t *resp, const struct kc_action *what, struct kc_err *err);

struct kc_minted {
	char *token; /* secret: kc_minted_clear() wipes it */
	time_t expiry; /* status.expirationTimestamp */
	long lifetime; /* expiry - time of the request */
	bool shortened; /* the server gave less than asked */
	char jti[128]; /* from the JWT, for audit only; "" if absent */
};
void kc_minted_clear(struct kc_minted *m);

/* A TokenRequest answer: status.token and status.expirationTimestamp (which must
 * lie ahead); exp and jti from the JWT for reporting only. */
int kc_token_response_parse(const char *cluster, const char *ns, const char *name, json_t *resp, long ttl, time_t asked,
			    struct kc_minted *out, struct kc_err *err);

/* TokenRequest for ns/name, bound to the Secret bound_secret in the same
 * namespace unless that is NULL. */
int kc_kube_token_request(struct kc_kube *k, const char *ns, const char *name, long ttl, char *const *audiences,
			  size_t n_audiences, const char *bound_secret, struct kc_minted *out, struct kc_err *err);

/* The per-user revocation Secret: create (an existing one is fine) and delete
 * (a missing one is fine). */
int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const char *user, const char *host,
			  struct kc_err *err);
int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err);

/* create: true: the ServiceAccount exists, and when clusterrole is set a
 * (Cluster)RoleBinding named kc_binding_name() binds it to that role. */
int kc_kube_reconcile(struct kc_kube *k, const char *ns, const char *name, const char *clusterrole, bool cluster_wide,
		      struct kc_err *err);
void kc_binding_name(const char *ns, const char *name, bool cluster_wide, char *out, size_t len);

/* SelfSubjectAccessReview: may the helper's identity do this? */
int kc_kube_can_i(struct kc_kube *k, const char *verb, const char *group, const char *resource, const char *subresource,
		  const char *ns, const char *name, bool *allowed, struct kc_err *err);

/* "pam-kubeconfig-" + a hash of host id and user: a valid name for any user. */
void kc_revocation_secret_name(const char *host_id, const char *user, char *out, size_t len);

#endif

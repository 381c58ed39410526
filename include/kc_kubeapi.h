/* The Kubernetes API as the helper needs it: one HTTPS connection per server,
 * only the configured CA trusted, JSON strictly parsed, errors as one line a
 * sysadmin can act on. */
#ifndef KC_KUBEAPI_H
#define KC_KUBEAPI_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "kc_cluster.h"
#include "kc_config.h"

#define KC_RESPONSE_MAX (1u << 20)

struct kc_kube;

/* A client for one resolved cluster with the helper's credential (copied into
 * wiped memory). Connects lazily. Caller frees with kc_kube_close(). */
struct kc_kube *kc_kube_open(const struct kc_cluster_endpoint *ep, const struct kc_cluster_credential *cred,
			     long connect_timeout_ms, long request_timeout_ms, struct kc_err *err);
void kc_kube_close(struct kc_kube *k);
/* The cluster's name in the config, for messages. */
const char *kc_kube_name(const struct kc_kube *k);
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
void kc_kube_status_error_for(const char *cluster, long status, json_t *resp, const struct kc_action *what,
			      struct kc_err *err);

struct kc_minted {
	char *token; /* secret: kc_kube_minted_clear() wipes it */
	time_t expiry; /* on our clock: the time we asked + lifetime */
	long lifetime; /* what the server granted (spec.expirationSeconds) */
	bool shortened; /* the server gave less than asked */
	char jti[128]; /* from the JWT, for audit only; "" if absent */
	char secret_uid[64]; /* the uid of the Secret the server bound it to; "" if unbound */
};
void kc_kube_minted_clear(struct kc_minted *m);

/* A TokenRequest answer: status.token and status.expirationTimestamp (which must
 * lie ahead), spec.expirationSeconds; jti and the bound uid from the JWT. */
int kc_kube_token_response_parse(const char *cluster, const char *ns, const char *name, json_t *resp, long ttl,
				 time_t asked, struct kc_minted *out, struct kc_err *err);

struct kc_token_spec {
	const char *sa_namespace;
	const char *sa_name;
	long ttl;
	char *const *audiences;
	size_t n_audiences;
	const char *secret; /* bound to this Secret in the same namespace; NULL or "": unbound */
	const char *secret_uid; /* and to this incarnation of it; "": whichever exists */
};

enum { KC_MINT_OK = 0, KC_MINT_SA_MISSING = 1, KC_MINT_SECRET_MISSING = 2, KC_MINT_FAILED = -1 };
/* TokenRequest. SECRET_MISSING: the bound Secret is gone or is another
 * incarnation (409). */
int kc_kube_token_request(struct kc_kube *k, const struct kc_token_spec *t, struct kc_minted *out, struct kc_err *err);

/* The per-user revocation Secret. create: 0 made (*uid set), 1 exists already,
 * -1 error. secret_uid (a dry-run delete): 0 found (*uid set), 1 gone, -1.
 * delete (with preconditions.uid): 0 deleted, 1 that incarnation is gone, -1. */
int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const char *user, const char *host,
			  char uid[64], struct kc_err *err);
int kc_kube_secret_uid(struct kc_kube *k, const char *ns, const char *name, char uid[64], struct kc_err *err);
int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, const char *uid, struct kc_err *err);

/* "ip port" of the API server's address on the last call, for cutting connections. */
const char *kc_kube_peer(const struct kc_kube *k);

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

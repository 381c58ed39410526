/* The Kubernetes API as the helper needs it: one HTTPS connection per server,
 * only the configured CA trusted, JSON strictly parsed, errors as one line a
 * sysadmin can act on. */
#ifndef KC_KUBE_KUBEAPI_H
#define KC_KUBE_KUBEAPI_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "common/util.h"
#include "config/config.h"
#include "kube/cluster.h"

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
/* The next call's request does not act before wait(arg) returns 0: a body
 * is sent only then (the connection, the TLS handshake and the request's
 * head go meanwhile: the server acts on nothing before the body is whole), a
 * request without one is not sent before. When wait fails, nothing acts:
 * the call fails with "not sent". Once. */
void kc_kube_gate(struct kc_kube *k, int (*wait)(void *arg), void *arg);
/* Did a call fail for want of a healthy server (transport error, timeout, 5xx)? */
bool kc_kube_unreachable(const struct kc_kube *k);
/* Did a call fail because the command's deadline came (before it, or while it
 * waited), not a timeout of the cluster's own (network.*_timeout)? */
bool kc_kube_out_of_time(const struct kc_kube *k);

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
/* "ip port" of the API server's address on the last call, for cutting connections. */
const char *kc_kube_peer(const struct kc_kube *k);

/* Resolves the cluster (kube/cluster.h), takes the helper's credential for it
 * and opens a client holding both. *ep (optional) receives the endpoint (caller
 * frees); the credential is wiped once the client holds its copy. */
struct kc_kube *kc_kube_connect(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
				struct kc_cluster_endpoint *ep, struct kc_err *err);

#endif

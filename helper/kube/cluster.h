/* A cluster made ready to call, in three steps: where it is (the config's
 * server and CA, or EKS discovery), the helper's own credential for it (a token
 * file, a client certificate, or an EKS token), then an HTTP client
 * (kube/kubeapi.h, kc_kube_connect) with both. The config is never changed: resolving fills a
 * copy. Every step is bounded by the caller's deadline. */
#ifndef KC_CLUSTER_H
#define KC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "common/util.h"

struct kc_cluster_endpoint {
	const struct kc_cluster *cl;
	char *server; /* https://host[:port] */
	unsigned char *ca_pem; /* NULL only when TLS verification is off */
	size_t ca_pem_len;
	bool insecure; /* insecure_skip_tls_verify without a CA */
	char *context; /* the kubeconfig's context name: the config's, or the ARN discovery found */
};

/* What makes a configured cluster the same cluster: its server and CA (and
 * whether TLS is verified), or its EKS reference (name, region, endpoint
 * choices), as a hex SHA-256. Two grants made under different identities
 * are different targets. From the config alone: no network. */
void kc_cluster_identity(const struct kc_cluster *cl, char out[65]);

/* Where the cluster is. Caller frees with kc_cluster_endpoint_free(). */
int kc_cluster_resolve(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
		       struct kc_cluster_endpoint *out, struct kc_err *err);
void kc_cluster_endpoint_free(struct kc_cluster_endpoint *ep);

/* The helper's credential for the cluster: a bearer token, or a client
 * certificate and key. Secrets: kc_cluster_credential_free() wipes them. */
struct kc_cluster_credential {
	struct kc_buf bearer;
	struct kc_buf cert;
	struct kc_buf key;
};
int kc_cluster_credential(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
			  struct kc_cluster_credential *out, struct kc_err *err);
void kc_cluster_credential_free(struct kc_cluster_credential *c);

#endif

/* Resolving a cluster, the helper's credential for it, and connecting. */
#include "kube/cluster.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/aws_credentials.h"
#include "aws/eks.h"
#include "aws/aws_sigv4.h"
#include "common/fileio.h"

void kc_cluster_identity(const struct kc_cluster *cl, char out[65])
{
	kc_autobuf struct kc_buf b = { 0 };

	if (cl->has_eks) {
		const struct kc_eks_ref *e = &cl->eks;

		kc_buf_printf(&b, "eks\n%s\n%s\n%s\n%d %d\n", e->cluster_name, e->region,
			      e->endpoint ? e->endpoint : "", e->use_fips_endpoint, e->use_dualstack_endpoint);
	} else {
		kc_buf_printf(&b, "server\n%s\n%d\n", cl->server ? cl->server : "", cl->insecure_skip_tls_verify);
		if (cl->ca_pem)
			kc_buf_append(&b, cl->ca_pem, cl->ca_pem_len);
	}
	kc_sha256_hex(b.data ? b.data : "", b.len, out);
}

void kc_cluster_endpoint_free(struct kc_cluster_endpoint *ep)
{
	free(ep->server);
	free(ep->ca_pem);
	free(ep->context);
	memset(ep, 0, sizeof(*ep));
}

static int copy_bytes(unsigned char **dst, size_t *dlen, const unsigned char *src, size_t len)
{
	*dst = NULL;
	*dlen = 0;
	if (!src)
		return 0;
	*dst = malloc(len + 1);
	if (!*dst)
		return -1;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	*dlen = len;
	return 0;
}

static struct kc_aws_budget limits_of(const struct kc_config *cfg, long long deadline_ms)
{
	return (struct kc_aws_budget){ .connect_timeout_ms = cfg->connect_timeout_ms,
				       .timeout_ms = cfg->request_timeout_ms,
				       .deadline_ms = deadline_ms };
}

/* Who asks DescribeCluster: the AWS identity of a cluster of the config that
 * authenticates with EKS to that cluster, else (NULL) the instance role. */
static const struct kc_eks_ref *discovery_identity(const struct kc_config *cfg, const struct kc_eks_ref *ref)
{
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct kc_cluster *cl = &cfg->clusters[i];

		if (cl->has_eks && cl->auth == KC_AUTH_EKS &&
		    (&cl->eks == ref || (strcmp(cl->eks.cluster_name, ref->cluster_name) == 0 &&
					 strcmp(cl->eks.region, ref->region) == 0)))
			return &cl->auth_eks;
	}
	return NULL;
}

/* DescribeCluster (or its cache), within the deadline. */
static int discover(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
		    struct kc_cluster_endpoint *ep, struct kc_err *err)
{
	struct kc_eks_cluster found = { 0 };
	struct kc_aws_budget limits = limits_of(cfg, deadline_ms);

	if (kc_eks_describe_cluster(&cl->eks, discovery_identity(cfg, &cl->eks), &limits, &found, err) < 0)
		return kc_seterr(err, "cluster %s: %s", cl->name, err->msg), -1;
	ep->server = found.endpoint;
	ep->ca_pem = found.ca_pem;
	ep->ca_pem_len = found.ca_pem_len;
	found.endpoint = NULL;
	found.ca_pem = NULL;
	if (!cl->context_given && found.arn) {
		free(ep->context);
		ep->context = found.arn; /* as `aws eks update-kubeconfig` names it */
		found.arn = NULL;
	}
	kc_eks_cluster_free(&found);
	return 0;
}

int kc_cluster_resolve(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
		       struct kc_cluster_endpoint *out, struct kc_err *err)
{
	memset(out, 0, sizeof(*out));
	out->cl = cl;
	out->context = strdup(cl->context);
	if (!out->context)
		return kc_seterr(err, "out of memory"), -1;
	if (cl->has_eks && !cl->server) {
		if (discover(cfg, cl, deadline_ms, out, err) < 0) {
			kc_cluster_endpoint_free(out);
			return -1;
		}
	} else {
		out->server = strdup(cl->server);
		if (!out->server || copy_bytes(&out->ca_pem, &out->ca_pem_len, cl->ca_pem, cl->ca_pem_len) < 0) {
			kc_cluster_endpoint_free(out);
			return kc_seterr(err, "out of memory"), -1;
		}
	}
	out->insecure = cl->insecure_skip_tls_verify && !out->ca_pem;
	return 0;
}

void kc_cluster_credential_free(struct kc_cluster_credential *c)
{
	kc_buf_free(&c->bearer);
	kc_buf_free(&c->cert);
	kc_buf_free(&c->key);
}

static int token_file(const struct kc_cluster *cl, struct kc_buf *out, struct kc_err *err)
{
	struct kc_err e;
	size_t n;

	if (kc_read_root_file(cl->token_file, KC_CREDENTIAL_MAX, 077, true, out, &e) < 0)
		return kc_seterr(err, "cluster %s: token_file: %s", cl->name, e.msg), -1;
	n = out->data ? strcspn(out->data, "\r\n") : 0;
	if (n == 0 || !out->data)
		return kc_seterr(err, "cluster %s: token_file %s is empty", cl->name, cl->token_file), -1;
	explicit_bzero(out->data + n, out->len - n);
	out->len = n;
	return 0;
}

static int eks_token(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
		     struct kc_buf *out, struct kc_err *err)
{
	struct kc_aws_credentials cred;
	struct kc_aws_budget limits = limits_of(cfg, deadline_ms);
	char *token = NULL;
	struct kc_err e;
	int rc;

	if (kc_aws_helper_credentials(&cl->auth_eks, &limits, &cred, &e) < 0)
		return kc_seterr(err, "cluster %s: AWS credentials: %s", cl->name, e.msg), -1;
	rc = kc_eks_auth_token(&cl->auth_eks, &cred, time(NULL), &token, &e);
	kc_aws_credentials_clear(&cred);
	if (rc < 0)
		return kc_seterr(err, "cluster %s: EKS token: %s", cl->name, e.msg), -1;
	rc = kc_buf_puts(out, token);
	kc_free_secret(token);
	return rc < 0 ? (kc_seterr(err, "out of memory"), -1) : 0;
}

int kc_cluster_credential(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
			  struct kc_cluster_credential *out, struct kc_err *err)
{
	struct kc_err e;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->bearer.secret = out->key.secret = true;
	switch (cl->auth) {
	case KC_AUTH_TOKEN: rc = token_file(cl, &out->bearer, err); break;
	case KC_AUTH_CERT:
		if (kc_read_root_file(cl->client_certificate, KC_CREDENTIAL_MAX, 022, false, &out->cert, &e) < 0 ||
		    kc_read_root_file(cl->client_key, KC_CREDENTIAL_MAX, 077, true, &out->key, &e) < 0)
			kc_seterr(err, "cluster %s: %s", cl->name, e.msg);
		else
			rc = 0;
		break;
	case KC_AUTH_EKS: rc = eks_token(cfg, cl, deadline_ms, &out->bearer, err); break;
	default: kc_seterr(err, "cluster %s: no auth configured", cl->name); break;
	}
	if (rc < 0)
		kc_cluster_credential_free(out);
	return rc;
}

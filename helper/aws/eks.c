/* EKS: the k8s-aws-v1 token, `aws eks get-token`'s output, and DescribeCluster
 * discovery of endpoint, CA and ARN (cached in the cache store for discovery_ttl). */
#include "aws/eks.h"
#include "aws/aws_credentials.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/cache.h"
#include "aws/http.h"
#include "common/json_alloc.h"
#include "common/log.h"

#define DISCOVERY_KIND "eks-cluster"

int kc_eks_token(const struct kc_aws_credentials *cred, const char *cluster_id,
		 const struct kc_aws_service_endpoint *sts, time_t now, char **token, struct kc_err *err)
{
	const struct kc_sigv4_header h[2] = { { "host", sts->host }, { "x-k8s-aws-id", cluster_id } };
	const struct kc_sigv4_request req = {
		"GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", h, 2, NULL, 0
	};
	const struct kc_sigv4_options o = { sts->signing_region, "sts", now, true, 60, true, false, false };
	kc_autobuf struct kc_buf url = { .secret = true }, out = { .secret = true };
	struct kc_sigv4_result r;
	char *b64;

	*token = NULL;
	if (kc_sigv4_sign(&req, cred, &o, &r, err) < 0)
		return -1;
	/* botocore's order: the request's own parameters, then Algorithm, Credential,
	 * Date, Expires, SignedHeaders, Security-Token, and the Signature last. */
	kc_buf_printf(&url, "%s/?Action=GetCallerIdentity&Version=2011-06-15", sts->url);
	{
		const struct kc_sigv4_param *order[] = { &r.algorithm,	    &r.credential,	     &r.date,
							 &r.expires,	    &r.signed_headers_param, &r.security_token,
							 &r.signature_param };

		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
			if (order[i]->value)
				kc_buf_printf(&url, "&%s=%s", order[i]->key, order[i]->value);
	}
	kc_sigv4_result_free(&r);
	b64 = url.data ? kc_base64_encode(url.data, url.len, true) : NULL;
	if (!b64)
		return kc_seterr(err, "out of memory"), -1;
	kc_buf_printf(&out, "%s%s", KC_EKS_TOKEN_PREFIX, b64);
	kc_free_secret(b64);
	if (!out.data)
		return kc_seterr(err, "out of memory"), -1;
	*token = out.data;
	out = (struct kc_buf){ 0 };
	return 0;
}

int kc_eks_auth_token(const struct kc_eks_ref *auth, const struct kc_aws_credentials *cred, time_t now, char **token,
		      struct kc_err *err)
{
	const struct kc_aws_variant v = { auth->use_fips_endpoint, auth->use_dualstack_endpoint, false };
	struct kc_aws_service_endpoint sts;

	*token = NULL;
	if (kc_aws_resolve("sts", auth->region, &v, &sts, err) < 0)
		return -1;
	return kc_eks_token(cred, auth->cluster_id ? auth->cluster_id : auth->cluster_name, &sts, now, token, err);
}

char *kc_eks_exec_credential(const char *token, time_t now, const char *api_version)
{
	char when[32];
	json_t *j;
	char *text, *out = NULL;

	kc_format_time(now + KC_EKS_TOKEN_LIFETIME, when, sizeof(when));
	j = json_pack("{s:s, s:s, s:{}, s:{s:s, s:s}}", "kind", "ExecCredential", "apiVersion",
		      api_version ? api_version : KC_EXEC_V1BETA1, "spec", "status", "expirationTimestamp", when,
		      "token", token);
	if (!j)
		return NULL;
	text = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text && asprintf(&out, "%s\n\n", text) < 0) /* awscli ends with a blank line */
		out = NULL;
	if (text) {
		explicit_bzero(text, strlen(text));
		kc_json_free(text);
	}
	return out;
}

/* ---- DescribeCluster -------------------------------------------------------------- */

void kc_eks_cluster_free(struct kc_eks_cluster *c)
{
	free(c->endpoint);
	free(c->ca_pem);
	free(c->arn);
	memset(c, 0, sizeof(*c));
}

static int parse_cluster(const char *data, size_t len, struct kc_eks_cluster *out, struct kc_err *err)
{
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	const char *endpoint = NULL, *ca = NULL, *arn = NULL;

	memset(out, 0, sizeof(*out));
	if (!j ||
	    json_unpack(j, "{s:{s?s, s?{s?s}, s?s}}", "cluster", "endpoint", &endpoint, "certificateAuthority", "data",
			&ca, "arn", &arn) < 0 ||
	    !endpoint || !ca || !arn) {
		json_decref(j);
		return kc_seterr(
			       err,
			       "DescribeCluster: the answer lacks cluster.endpoint, certificateAuthority.data or arn"),
		       -1;
	}
	if (strncmp(endpoint, "https://", 8) != 0 ||
	    kc_base64_decode(ca, strlen(ca), &out->ca_pem, &out->ca_pem_len) < 0 ||
	    !memmem(out->ca_pem, out->ca_pem_len, "-----BEGIN CERTIFICATE-----", 27)) {
		json_decref(j);
		kc_eks_cluster_free(out);
		return kc_seterr(err,
				 "DescribeCluster: the endpoint is not https:// or the CA is not a PEM certificate"),
		       -1;
	}
	out->endpoint = strdup(endpoint);
	out->arn = strdup(arn);
	json_decref(j);
	if (!out->endpoint || !out->arn) {
		kc_eks_cluster_free(out);
		return kc_seterr(err, "out of memory"), -1;
	}
	return 0;
}

static void cache_key(const struct kc_eks_ref *ref, struct kc_buf *k)
{
	kc_buf_printf(k, "%s\037%s\037%s\037%d%d", ref->cluster_name, ref->region, ref->endpoint ? ref->endpoint : "",
		      ref->use_fips_endpoint, ref->use_dualstack_endpoint);
}

static int describe(const struct kc_eks_ref *ref, const struct kc_aws_credentials *cred,
		    const struct kc_aws_budget *limits, struct kc_buf *resp, struct kc_err *err)
{
	const struct kc_aws_variant v = { ref->use_fips_endpoint, ref->use_dualstack_endpoint, false };
	kc_autobuf struct kc_buf path = { 0 }, url = { 0 }, auth = { .secret = true }, date = { 0 },
				 token = { .secret = true }, host = { 0 };
	struct kc_aws_service_endpoint eks;
	struct kc_sigv4_result sig;
	const char *headers[6];
	size_t nh = 0;
	long status;

	if (kc_aws_resolve("eks", ref->region, &v, &eks, err) < 0 ||
	    (ref->endpoint && kc_aws_endpoint_connect_to(&eks, ref->endpoint, err) < 0))
		return -1;
	kc_buf_puts(&path, "/clusters/");
	kc_aws_uri_encode(&path, ref->cluster_name, strlen(ref->cluster_name), false);
	{
		const struct kc_sigv4_header h[1] = { { "host", eks.host } };
		const struct kc_sigv4_request r = { "GET", path.data, NULL, h, 1, NULL, 0 };
		const struct kc_sigv4_options o = {
			eks.signing_region, "eks", time(NULL), false, 0, false, false, false
		};

		if (kc_sigv4_sign(&r, cred, &o, &sig, err) < 0)
			return -1;
	}
	kc_buf_printf(&auth, "Authorization: %s", sig.authorization.data);
	kc_buf_printf(&date, "X-Amz-Date: %s", sig.amz_date);
	kc_buf_printf(&host, "Host: %s", eks.host);
	kc_sigv4_result_free(&sig);
	headers[nh++] = host.data;
	headers[nh++] = date.data;
	headers[nh++] = auth.data;
	if (cred->session_token && *cred->session_token) {
		kc_buf_printf(&token, "X-Amz-Security-Token: %s", cred->session_token);
		headers[nh++] = token.data;
	}
	headers[nh++] = "Accept: application/json";
	headers[nh] = NULL;
	kc_buf_printf(&url, "%s%s", kc_aws_endpoint_target(&eks), path.data);
	{
		struct kc_http_call c = { .method = "GET",
					  .url = url.data,
					  .headers = headers,
					  .ca_file = ref->endpoint_ca,
					  .connect_timeout_ms = limits->connect_timeout_ms,
					  .timeout_ms = limits->timeout_ms,
					  .deadline_ms = limits->deadline_ms };

		status = kc_http(&c, resp, err);
	}
	if (status < 0)
		return kc_seterr(err, "eks DescribeCluster %s: %s", ref->cluster_name, err->msg), -1;
	if (status != 200)
		return kc_seterr(err, "eks DescribeCluster %s in %s (%s) failed (HTTP %ld): %.200s", ref->cluster_name,
				 ref->region, eks.host, status, resp->data ? resp->data : ""),
		       -1;
	return 0;
}

int kc_eks_describe_cluster(const struct kc_eks_ref *ref, const struct kc_eks_ref *auth,
			    const struct kc_aws_budget *limits, struct kc_eks_cluster *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf key = { 0 }, resp = { 0 };
	struct kc_aws_credentials cred;
	struct kc_err e;
	int rc;

	memset(out, 0, sizeof(*out));
	cache_key(ref, &key);
	if (key.data && kc_cache_get(DISCOVERY_KIND, key.data, ref->discovery_ttl, 0, &resp, NULL, &e) == 0 &&
	    parse_cluster(resp.data ? resp.data : "", resp.len, out, &e) == 0)
		return 0;
	kc_buf_free(&resp);
	if (auth) {
		rc = kc_aws_helper_credentials(auth, limits, &cred, err);
	} else { /* the instance role */
		struct kc_eks_ref instance_role = { .cluster_name = ref->cluster_name,
						    .region = ref->region,
						    .use_fips_endpoint = ref->use_fips_endpoint,
						    .use_dualstack_endpoint = ref->use_dualstack_endpoint };

		rc = kc_aws_helper_credentials(&instance_role, limits, &cred, err);
	}
	if (rc < 0)
		return kc_seterr(err, "discovery: AWS credentials: %s", err->msg), -1;
	rc = describe(ref, &cred, limits, &resp, err);
	kc_aws_credentials_clear(&cred);
	if (rc < 0 || parse_cluster(resp.data ? resp.data : "", resp.len, out, err) < 0)
		return -1;
	if (key.data && kc_cache_put(DISCOVERY_KIND, key.data, resp.data, resp.len, &e) < 0)
		kc_warn("cannot cache what DescribeCluster answered: %s", e.msg);
	return 0;
}

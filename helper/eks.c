/* EKS: the k8s-aws-v1 token, `aws eks get-token`'s output, and DescribeCluster
 * discovery of endpoint, CA and ARN (cached for discovery_ttl). */
#include "kc_aws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "kc_http.h"
#include "kc_json.h"
#include "kc_cache.h"

int kc_eks_token(const struct kc_aws_credentials *cred, const char *cluster_name, const char *region,
		 const char *sts_url, time_t now, char **token, struct kc_err *err)
{
	char url_base[512], host[300];
	const char *p;
	struct kc_sigv4_header h[2];
	struct kc_sigv4_result r;
	kc_autobuf struct kc_buf url = { .secret = true };
	char *b64;

	*token = NULL;
	if (sts_url)
		snprintf(url_base, sizeof(url_base), "%s", sts_url);
	else
		snprintf(url_base, sizeof(url_base), "https://sts.%s.amazonaws.com", region);
	p = strstr(url_base, "://");
	p = p ? p + 3 : url_base;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(p, "/"), p);
	h[0] = (struct kc_sigv4_header){ "host", host };
	h[1] = (struct kc_sigv4_header){ "x-k8s-aws-id", cluster_name };
	{
		struct kc_sigv4_request req = {
			"GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", h, 2, NULL, 0
		};
		struct kc_sigv4_options o = { region, "sts", now, true, 60, true, false, false };

		if (kc_sigv4_sign(&req, cred, &o, &r, err) < 0)
			return -1;
	}
	/* botocore's order: the request's own parameters, then Algorithm, Credential,
	 * Date, Expires, SignedHeaders, Security-Token, and the Signature last. */
	kc_buf_printf(&url, "%s/?Action=GetCallerIdentity&Version=2011-06-15", url_base);
	{
		const struct kc_sigv4_param *order[] = { &r.algorithm,	    &r.credential,	     &r.date,
							 &r.expires,	    &r.signed_headers_param, &r.security_token,
							 &r.signature_param };

		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
			if (order[i]->value)
				kc_buf_printf(&url, "&%s=%s", order[i]->key, order[i]->value);
	}
	kc_sigv4_result_free(&r);
	if (!url.data)
		return kc_seterr(err, "out of memory"), -1;
	b64 = kc_base64_encode(url.data, url.len, true);
	if (!b64)
		return kc_seterr(err, "out of memory"), -1;
	{
		size_t n = strlen(KC_EKS_TOKEN_PREFIX), m = strlen(b64);

		*token = malloc(n + m + 1);
		if (*token) {
			memcpy(*token, KC_EKS_TOKEN_PREFIX, n);
			memcpy(*token + n, b64, m + 1);
		}
	}
	kc_free_secret(b64);
	return *token ? 0 : (kc_seterr(err, "out of memory"), -1);
}

char *kc_eks_exec_credential(const char *token, time_t now)
{
	char when[32];
	json_t *j;
	char *text, *out = NULL;

	kc_format_time(now + KC_EKS_TOKEN_LIFETIME, when, sizeof(when));
	j = json_pack("{s:s, s:s, s:{}, s:{s:s, s:s}}", "kind", "ExecCredential", "apiVersion",
		      "client.authentication.k8s.io/v1beta1", "spec", "status", "expirationTimestamp", when, "token",
		      token);
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

static void cache_name(const struct kc_eks_ref *ref, char out[80])
{
	kc_autobuf struct kc_buf k = { 0 };
	char hex[65];

	kc_buf_printf(&k, "%s|%s|%s", ref->cluster_name, ref->region, ref->endpoint ? ref->endpoint : "");
	kc_sha256_hex(k.data, k.len, hex);
	snprintf(out, 80, "eks-cluster-%.24s.json", hex);
}

static int cache_read(const char *name, long ttl, struct kc_buf *data)
{
	struct kc_err e;
	kc_autoclose int dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	kc_autoclose int fd = -1;
	struct stat st;
	char chunk[4096];
	ssize_t n;

	if (dir < 0 || (fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || time(NULL) - st.st_mtime >= ttl || st.st_size > KC_HTTP_MAX)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		kc_buf_append(data, chunk, (size_t)n);
	return data->len ? 0 : -1;
}

static void cache_write(const char *name, const struct kc_buf *data)
{
	struct kc_err e;
	kc_autoclose int dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	kc_autoclose int fd = -1;
	char tmp[128];

	if (dir < 0)
		return;
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && kc_write_all(fd, data->data, data->len) == 0)
		renameat(dir, tmp, dir, name);
	else
		unlinkat(dir, tmp, 0);
}

int kc_eks_describe_cluster(const struct kc_config *cfg, const struct kc_eks_ref *ref,
			    const struct kc_aws_credentials *cred, struct kc_eks_cluster *out, struct kc_err *err)
{
	char name[80], base[512], host[300], path[400];
	kc_autobuf struct kc_buf resp = { 0 }, url = { 0 }, auth = { .secret = true }, date = { 0 },
				 token = { .secret = true };
	struct kc_sigv4_header h[1];
	struct kc_sigv4_result sig;
	const char *headers[5];
	size_t nh = 0;
	const char *p;
	long status;

	memset(out, 0, sizeof(*out));
	cache_name(ref, name);
	if (cache_read(name, ref->discovery_ttl, &resp) == 0 && parse_cluster(resp.data, resp.len, out, err) == 0)
		return 0;
	kc_buf_free(&resp);
	if (ref->endpoint)
		snprintf(base, sizeof(base), "%s", ref->endpoint);
	else
		snprintf(base, sizeof(base), "https://eks.%s.amazonaws.com", ref->region);
	p = strstr(base, "://");
	p = p ? p + 3 : base;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(p, "/"), p);
	snprintf(path, sizeof(path), "/clusters/%s", ref->cluster_name);
	h[0] = (struct kc_sigv4_header){ "host", host };
	{
		struct kc_sigv4_request r = { "GET", path, NULL, h, 1, NULL, 0 };
		struct kc_sigv4_options o = { ref->region, "eks", time(NULL), false, 0, true, false, false };

		if (kc_sigv4_sign(&r, cred, &o, &sig, err) < 0)
			return -1;
	}
	kc_buf_printf(&auth, "Authorization: %s", sig.authorization.data);
	kc_buf_printf(&date, "X-Amz-Date: %s", sig.amz_date);
	kc_sigv4_result_free(&sig);
	headers[nh++] = date.data;
	headers[nh++] = auth.data;
	if (cred->session_token) {
		kc_buf_printf(&token, "X-Amz-Security-Token: %s", cred->session_token);
		headers[nh++] = token.data;
	}
	headers[nh++] = "Accept: application/json";
	headers[nh] = NULL;
	kc_buf_printf(&url, "%s%s", base, path);
	{
		struct kc_http_call c = { "GET",
					  url.data,
					  headers,
					  NULL,
					  0,
					  ref->endpoint_ca,
					  false,
					  cfg->connect_timeout_ms,
					  cfg->request_timeout_ms };

		status = kc_http(&c, &resp, err);
	}
	if (status < 0)
		return kc_seterr(err, "eks DescribeCluster %s: %s", ref->cluster_name, err->msg), -1;
	if (status != 200)
		return kc_seterr(err, "eks DescribeCluster %s in %s failed (HTTP %ld): %.200s", ref->cluster_name,
				 ref->region, status, resp.data ? resp.data : ""),
		       -1;
	if (parse_cluster(resp.data, resp.len, out, err) < 0)
		return -1;
	cache_write(name, &resp);
	return 0;
}

int kc_eks_discover(const struct kc_config *cfg, struct kc_cluster *cl, struct kc_err *err)
{
	struct kc_aws_credentials cred;
	struct kc_eks_cluster found;
	const struct kc_eks_ref *auth = cl->auth == KC_AUTH_EKS ? &cl->auth_eks : NULL;
	struct kc_eks_ref fallback = { 0 };
	int rc;

	if (!cl->has_eks || cl->server)
		return 0;
	if (!auth) {
		/* Discovery with a static token: the instance role asks EKS. */
		fallback.region = cl->eks.region;
		fallback.cluster_name = cl->eks.cluster_name;
		auth = &fallback;
	}
	if (kc_aws_helper_credentials(cfg, auth, &cred, err) < 0)
		return kc_seterr(err, "cluster %s: discovery: %s", cl->name, err->msg), -1;
	rc = kc_eks_describe_cluster(cfg, &cl->eks, &cred, &found, err);
	kc_aws_credentials_clear(&cred);
	if (rc < 0)
		return kc_seterr(err, "cluster %s: %s", cl->name, err->msg), -1;
	cl->server = found.endpoint;
	cl->ca_pem = found.ca_pem;
	cl->ca_pem_len = found.ca_pem_len;
	if (!cl->context_given) {
		free(cl->context);
		cl->context = found.arn; /* as `aws eks update-kubeconfig` names it */
		found.arn = NULL;
	}
	free(found.arn);
	return 0;
}

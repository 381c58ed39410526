/* HTTP + JSON for the Kubernetes API: TokenRequest, the revocation Secret,
 * ServiceAccounts and bindings, access reviews. */
#include "kc_kubeapi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "kc_aws.h"
#include "kc_json.h"

struct kc_kube {
	CURL *curl;
	const struct kc_cluster *cl;
	struct curl_slist *headers; /* holds the bearer token: wiped before freeing */
	struct kc_buf credential; /* token, or client key PEM */
	struct kc_buf client_cert;
	unsigned requests;
	long request_timeout_ms;
	long long deadline_ms; /* 0: none */
	bool unreachable;
};

static void wipe_headers(struct curl_slist *h)
{
	for (; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
}

/* EKS discovery fills the cluster's server, CA and context in place, once per
 * process (until clusters are resolved into a copy before this point). */
static int eks_discover(const struct kc_config *cfg, struct kc_cluster *cl, long long deadline_ms, struct kc_err *err)
{
	struct kc_eks_cluster found;

	if (kc_eks_describe_cluster(cfg, &cl->eks, deadline_ms, &found, err) < 0)
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

struct kc_kube *kc_kube_open(const struct kc_config *cfg, const struct kc_cluster *cl, struct kc_err *err)
{
	struct kc_kube *k = calloc(1, sizeof(*k));
	long long aws_deadline = kc_now_ms() + cfg->request_timeout_ms;
	struct kc_err e;

	if (!k) {
		kc_seterr(err, "out of memory");
		return NULL;
	}
	/* every way to a cluster passes here */
	if (cl->has_eks && !cl->server && eks_discover(cfg, (struct kc_cluster *)cl, aws_deadline, &e) < 0) {
		kc_seterr(err, "%s", e.msg);
		goto fail;
	}
	k->cl = cl;
	k->request_timeout_ms = cfg->request_timeout_ms;
	k->credential.secret = true;
	k->curl = curl_easy_init();
	if (!k->curl) {
		kc_seterr(err, "cluster %s: cannot initialise libcurl", cl->name);
		goto fail;
	}
	k->headers = curl_slist_append(k->headers, "Accept: application/json");
	k->headers = curl_slist_append(k->headers, "Content-Type: application/json");
	k->headers = curl_slist_append(k->headers, "User-Agent: pam-kubeconfig");
	switch (cl->auth) {
	case KC_AUTH_TOKEN: {
		kc_autobuf struct kc_buf hdr = { .secret = true };
		size_t n;

		if (kc_read_root_file(cl->token_file, KC_CREDENTIAL_MAX, 077, true, &k->credential, &e) < 0) {
			kc_seterr(err, "cluster %s: token_file: %s", cl->name, e.msg);
			goto fail;
		}
		n = strcspn(k->credential.data, "\r\n");
		k->credential.data[n] = '\0';
		k->credential.len = n;
		if (n == 0) {
			kc_seterr(err, "cluster %s: token_file %s is empty", cl->name, cl->token_file);
			goto fail;
		}
		if (kc_buf_printf(&hdr, "Authorization: Bearer %s", k->credential.data) < 0)
			goto oom;
		k->headers = curl_slist_append(k->headers, hdr.data);
		break;
	}
	case KC_AUTH_CERT: {
		struct curl_blob cert, key;

		if (kc_read_root_file(cl->client_certificate, KC_CREDENTIAL_MAX, 022, false, &k->client_cert, &e) < 0 ||
		    kc_read_root_file(cl->client_key, KC_CREDENTIAL_MAX, 077, true, &k->credential, &e) < 0) {
			kc_seterr(err, "cluster %s: %s", cl->name, e.msg);
			goto fail;
		}
		cert = (struct curl_blob){ k->client_cert.data, k->client_cert.len, CURL_BLOB_COPY };
		key = (struct curl_blob){ k->credential.data, k->credential.len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(k->curl, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(k->curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(k->curl, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(k->curl, CURLOPT_SSLKEYTYPE, "PEM");
		break;
	}
	case KC_AUTH_EKS: {
		struct kc_aws_credentials cred;
		kc_autobuf struct kc_buf hdr = { .secret = true };
		char *token = NULL;
		int rc;

		if (kc_aws_helper_credentials(cfg, &cl->auth_eks, aws_deadline, &cred, &e) < 0) {
			kc_seterr(err, "cluster %s: AWS credentials: %s", cl->name, e.msg);
			goto fail;
		}
		rc = kc_eks_auth_token(&cl->auth_eks, &cred, time(NULL), &token, &e);
		kc_aws_credentials_clear(&cred);
		if (rc < 0) {
			kc_seterr(err, "cluster %s: EKS token: %s", cl->name, e.msg);
			goto fail;
		}
		rc = kc_buf_printf(&hdr, "Authorization: Bearer %s", token);
		kc_free_secret(token);
		if (rc < 0)
			goto oom;
		k->headers = curl_slist_append(k->headers, hdr.data);
		break;
	}
	default: kc_seterr(err, "cluster %s: no auth configured", cl->name); goto fail;
	}
	if (!k->headers)
		goto oom;

	/* HTTPS only, no redirects, no proxy from the environment, only our CA. */
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k->curl, CURLOPT_PROXY, cl->proxy ? cl->proxy : "");
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, cfg->request_timeout_ms);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, k->headers);
	curl_easy_setopt(k->curl, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(k->curl, CURLOPT_CAPATH, NULL);
	if (cl->insecure_skip_tls_verify && !cl->ca_pem) {
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		struct curl_blob ca = { cl->ca_pem, cl->ca_pem_len, CURL_BLOB_COPY };

		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(k->curl, CURLOPT_CAINFO_BLOB, &ca);
	}
	return k;
oom:
	kc_seterr(err, "out of memory");
fail:
	kc_kube_close(k);
	return NULL;
}

void kc_kube_close(struct kc_kube *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	wipe_headers(k->headers);
	curl_slist_free_all(k->headers);
	kc_buf_free(&k->credential);
	kc_buf_free(&k->client_cert);
	free(k);
}

unsigned kc_kube_requests(const struct kc_kube *k)
{
	return k->requests;
}

void kc_kube_set_deadline(struct kc_kube *k, long long deadline_ms)
{
	k->deadline_ms = deadline_ms;
}

bool kc_kube_unreachable(const struct kc_kube *k)
{
	return k->unreachable;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct kc_buf *b = userp;
	size_t n = size * nmemb;

	if (b->len + n > KC_RESPONSE_MAX || kc_buf_append(b, data, n) < 0)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	return n;
}

long kc_kube_call(struct kc_kube *k, const char *method, const char *path, json_t *body, json_t **resp,
		  struct kc_err *err)
{
	kc_autobuf struct kc_buf url = { 0 };
	kc_autobuf struct kc_buf in = { .secret = true };
	char *out = NULL;
	json_error_t jerr;
	long status = 0;
	CURLcode rc;
	size_t base_len = strlen(k->cl->server);

	*resp = NULL;
	while (base_len > 0 && k->cl->server[base_len - 1] == '/')
		base_len--;
	if (kc_buf_append(&url, k->cl->server, base_len) < 0 || kc_buf_puts(&url, path) < 0) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	if (body) {
		out = json_dumps(body, JSON_COMPACT);
		if (!out) {
			kc_seterr(err, "out of memory");
			return -1;
		}
	}
	curl_easy_setopt(k->curl, CURLOPT_URL, url.data);
	if (out) {
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, out);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(out));
	} else {
		curl_easy_setopt(k->curl, CURLOPT_HTTPGET, 1L); /* no body left from the call before */
	}
	curl_easy_setopt(k->curl, CURLOPT_CUSTOMREQUEST, method);
	{
		long timeout = k->request_timeout_ms;

		if (k->deadline_ms) {
			long long left = k->deadline_ms - kc_now_ms();

			if (left < 1) {
				kc_seterr(err, "cluster %s: out of time before the request", k->cl->name);
				k->unreachable = true;
				kc_json_free(out);
				return -1;
			}
			if (left < timeout)
				timeout = (long)left;
		}
		curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, timeout);
	}
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &in);
	k->requests++;
	rc = curl_easy_perform(k->curl);
	kc_json_free(out);
	if (rc != CURLE_OK) {
		k->unreachable = true;
		if (rc == CURLE_WRITE_ERROR)
			kc_seterr(err, "cluster %s: the API server's answer is larger than %u bytes", k->cl->name,
				  KC_RESPONSE_MAX);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			kc_seterr(err, "cluster %s: no answer from %s within the timeout (%s)", k->cl->name,
				  k->cl->server, curl_easy_strerror(rc));
		else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
			 rc == CURLE_SSL_CONNECT_ERROR)
			kc_seterr(err,
				  "cluster %s: TLS with %s failed (%s): the server's certificate is not signed by "
				  "the configured certificate_authority or does not name the host",
				  k->cl->name, k->cl->server, curl_easy_strerror(rc));
		else
			kc_seterr(err, "cluster %s: cannot reach %s: %s", k->cl->name, k->cl->server,
				  curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 500)
		k->unreachable = true;
	if (in.len > 0) {
		*resp = json_loadb(in.data, in.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!*resp && status >= 200 && status < 300) {
			kc_seterr(err, "cluster %s: the API server answered %ld with a body that is not JSON (%s)",
				  k->cl->name, status, jerr.text);
			return -1;
		}
	}
	return status;
}

void kc_status_error(const char *cluster, long status, json_t *resp, const struct kc_action *w, struct kc_err *err)
{
	const char *message = NULL, *reason = NULL;
	char target[KC_ERR_MAX / 2];
	char detail[300] = "";

	if (json_is_object(resp)) {
		json_t *m = json_object_get(resp, "message"), *r = json_object_get(resp, "reason");

		message = json_is_string(m) ? json_string_value(m) : NULL;
		reason = json_is_string(r) ? json_string_value(r) : NULL;
	}
	if (message)
		snprintf(detail, sizeof(detail), ": %.250s", message);
	if (w->ns && w->name)
		snprintf(target, sizeof(target), "%s/%s", w->ns, w->name);
	else
		snprintf(target, sizeof(target), "%s", w->name ? w->name : w->ns ? w->ns : "the cluster");

	switch (status) {
	case 401:
		kc_seterr(err,
			  "cluster %s: the API server does not accept the helper's credentials (401); check auth "
			  "for this cluster in the config",
			  cluster);
		break;
	case 403:
		kc_seterr(err, "cluster %s: the helper's identity may not %s %s for %s (403); run pam-kubeconfig rbac",
			  cluster, w->verb, w->resource, target);
		break;
	case 404: kc_seterr(err, "cluster %s: %s %s not found (404)%s", cluster, w->resource, target, detail); break;
	default:
		kc_seterr(err, "cluster %s: %s %s %s failed with HTTP %ld%s%s%s", cluster, w->verb, w->resource, target,
			  status, reason ? " " : "", reason ? reason : "", detail);
		break;
	}
}

void kc_kube_status_error(struct kc_kube *k, long status, json_t *resp, const struct kc_action *w, struct kc_err *err)
{
	kc_status_error(k->cl->name, status, resp, w, err);
}

void kc_minted_clear(struct kc_minted *m)
{
	kc_free_secret(m->token);
	memset(m, 0, sizeof(*m));
}

/* exp and jti from the JWT payload, for reporting only; nothing depends on them. */
static void read_jwt_claims(const char *token, struct kc_minted *out)
{
	const char *p1 = strchr(token, '.'), *p2;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_t *claims;
	const char *jti = NULL;

	if (!p1 || !(p2 = strchr(p1 + 1, '.')) || (size_t)(p2 - p1) > 16384)
		return;
	if (kc_base64_decode(p1 + 1, (size_t)(p2 - p1 - 1), &raw, &rawlen) < 0)
		return;
	claims = json_loadb((char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	explicit_bzero(raw, rawlen);
	free(raw);
	if (!claims)
		return;
	if (json_unpack(claims, "{s?s}", "jti", &jti) == 0 && jti)
		snprintf(out->jti, sizeof(out->jti), "%s", jti);
	json_decref(claims);
}

int kc_token_response_parse(const char *cluster, const char *ns, const char *name, json_t *resp, long ttl, time_t asked,
			    struct kc_minted *out, struct kc_err *err)
{
	const char *token = NULL, *expiry = NULL;
	json_error_t jerr;

	memset(out, 0, sizeof(*out));
	if (!resp ||
	    json_unpack_ex(resp, &jerr, 0, "{s:{s:s, s:s}}", "status", "token", &token, "expirationTimestamp",
			   &expiry) < 0 ||
	    !*token) {
		kc_seterr(err, "cluster %s: the TokenRequest answer for %s/%s holds no token (%s)", cluster, ns, name,
			  resp ? jerr.text : "no body");
		return -1;
	}
	if (kc_parse_time(expiry, &out->expiry) < 0 || out->expiry <= time(NULL)) {
		kc_seterr(err,
			  "cluster %s: the TokenRequest answer for %s/%s has an expiry in the past or unreadable "
			  "('%.40s')",
			  cluster, ns, name, expiry);
		return -1;
	}
	out->token = strdup(token);
	if (!out->token) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	out->lifetime = (long)(out->expiry - asked);
	/* The server may cap the lifetime (EKS and --service-account-max-token-expiration). */
	out->shortened = out->lifetime < ttl - 60;
	read_jwt_claims(out->token, out);
	return 0;
}

int kc_kube_token_request(struct kc_kube *k, const char *ns, const char *name, long ttl, char *const *audiences,
			  size_t n_audiences, const char *bound_secret, struct kc_minted *out, struct kc_err *err)
{
	struct kc_action what = { "create", "serviceaccounts/token", ns, name };
	char path[512];
	json_t *req, *spec, *auds, *resp = NULL;
	time_t asked = time(NULL);
	long status;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	auds = json_array();
	for (size_t i = 0; i < n_audiences; i++)
		json_array_append_new(auds, json_string(audiences[i]));
	spec = json_pack("{s:I, s:o}", "expirationSeconds", (json_int_t)ttl, "audiences", auds);
	if (spec && bound_secret)
		json_object_set_new(
			spec, "boundObjectRef",
			json_pack("{s:s, s:s, s:s}", "kind", "Secret", "apiVersion", "v1", "name", bound_secret));
	req = json_pack("{s:s, s:s, s:o}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenRequest", "spec",
			spec);
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", ns, name);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		goto out;
	if (status != 200 && status != 201) {
		kc_kube_status_error(k, status, resp, &what, err);
		goto out;
	}
	rc = kc_token_response_parse(k->cl->name, ns, name, resp, ttl, asked, out, err);
out:
	json_decref(resp);
	if (rc < 0)
		kc_minted_clear(out);
	return rc;
}

void kc_revocation_secret_name(const char *host_id, const char *user, char *out, size_t len)
{
	kc_autobuf struct kc_buf in = { 0 };
	char hex[65];

	kc_buf_puts(&in, host_id);
	kc_buf_append(&in, "", 1); /* a NUL between the two: no pair of strings collides */
	kc_buf_puts(&in, user);
	kc_sha256_hex(in.data, in.len, hex);
	snprintf(out, len, "pam-kubeconfig-%.20s", hex);
}

int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const char *user, const char *host,
			  struct kc_err *err)
{
	struct kc_action what = { "create", "secrets", ns, name };
	char path[300];
	json_t *req, *resp = NULL;
	long status;

	req = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s}, s:{s:s, s:s}}}", "apiVersion", "v1", "kind", "Secret", "type",
			"Opaque", "metadata", "name", name, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig",
			"annotations", "pam-kubeconfig/user", user, "pam-kubeconfig/host", host);
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", ns);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 200 && status != 409) {
		kc_kube_status_error(k, status, resp, &what, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err)
{
	struct kc_action what = { "delete", "secrets", ns, name };
	char path[300];
	json_t *resp = NULL;
	long status;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
	status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
	if (status < 0)
		return -1;
	if (status != 200 && status != 202 && status != 404) {
		kc_kube_status_error(k, status, resp, &what, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

void kc_binding_name(const char *ns, const char *name, bool cluster_wide, char *out, size_t len)
{
	if (cluster_wide)
		snprintf(out, len, "pam-kubeconfig:%s:%s", ns, name);
	else
		snprintf(out, len, "pam-kubeconfig:%s", name);
}

static int ensure_service_account(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err)
{
	struct kc_action get = { "get", "serviceaccounts", ns, name },
			 create = { "create", "serviceaccounts", ns, name };
	char path[400];
	json_t *resp = NULL, *req;
	long status;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, name);
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	json_decref(resp);
	if (status < 0)
		return -1;
	if (status == 200)
		return 0;
	if (status != 404) {
		kc_kube_status_error(k, status, NULL, &get, err);
		return -1;
	}
	req = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata",
			"name", name, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", ns);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 409) {
		kc_kube_status_error(k, status, resp, &create, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

static int ensure_binding(struct kc_kube *k, const char *ns, const char *name, const char *role, bool cluster_wide,
			  struct kc_err *err)
{
	const char *resource = cluster_wide ? "clusterrolebindings" : "rolebindings";
	struct kc_action get = { "get", resource, cluster_wide ? NULL : ns, NULL };
	char bname[KC_ERR_MAX / 4], base[400], path[700];
	json_t *resp = NULL, *req;
	const char *have_kind = NULL, *have_role = NULL;
	long status;

	kc_binding_name(ns, name, cluster_wide, bname, sizeof(bname));
	get.name = bname;
	if (cluster_wide)
		snprintf(base, sizeof(base), "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
	else
		snprintf(base, sizeof(base), "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings", ns);
	snprintf(path, sizeof(path), "%s/%s", base, bname);
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	if (status < 0)
		return -1;
	if (status == 200) {
		/* roleRef is immutable: a binding to another role is deleted and made anew. */
		json_unpack(resp, "{s:{s?s, s?s}}", "roleRef", "kind", &have_kind, "name", &have_role);
		if (have_kind && have_role && strcmp(have_kind, "ClusterRole") == 0 && strcmp(have_role, role) == 0) {
			json_decref(resp);
			return 0;
		}
		json_decref(resp);
		resp = NULL;
		get.verb = "delete";
		status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
		if (status < 0)
			return -1;
		if (status != 200 && status != 202 && status != 404) {
			kc_kube_status_error(k, status, resp, &get, err);
			json_decref(resp);
			return -1;
		}
	} else if (status != 404) {
		kc_kube_status_error(k, status, resp, &get, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	resp = NULL;
	req = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
			"rbac.authorization.k8s.io/v1", "kind", cluster_wide ? "ClusterRoleBinding" : "RoleBinding",
			"metadata", "name", bname, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig",
			"roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", role,
			"subjects", "kind", "ServiceAccount", "name", name, "namespace", ns);
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	if (!cluster_wide)
		json_object_set_new(json_object_get(req, "metadata"), "namespace", json_string(ns));
	status = kc_kube_call(k, "POST", base, req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 409) {
		get.verb = "create";
		if (status == 403)
			kc_seterr(
				err,
				"cluster %s: the helper's identity may not create %s %s binding ClusterRole %s (403); "
				"run pam-kubeconfig rbac (it must be allowed to bind that role)",
				k->cl->name, resource, bname, role);
		else
			kc_kube_status_error(k, status, resp, &get, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

int kc_kube_reconcile(struct kc_kube *k, const char *ns, const char *name, const char *clusterrole, bool cluster_wide,
		      struct kc_err *err)
{
	if (ensure_service_account(k, ns, name, err) < 0)
		return -1;
	if (clusterrole && ensure_binding(k, ns, name, clusterrole, cluster_wide, err) < 0)
		return -1;
	return 0;
}

int kc_kube_can_i(struct kc_kube *k, const char *verb, const char *group, const char *resource, const char *subresource,
		  const char *ns, const char *name, bool *allowed, struct kc_err *err)
{
	struct kc_action what = { "create", "selfsubjectaccessreviews", NULL, NULL };
	json_t *req, *attrs, *resp = NULL;
	int ok = 0;
	long status;

	attrs = json_pack("{s:s, s:s, s:s}", "verb", verb, "group", group ? group : "", "resource", resource);
	if (!attrs) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	if (subresource)
		json_object_set_new(attrs, "subresource", json_string(subresource));
	if (ns)
		json_object_set_new(attrs, "namespace", json_string(ns));
	if (name)
		json_object_set_new(attrs, "name", json_string(name));
	req = json_pack("{s:s, s:s, s:{s:o}}", "apiVersion", "authorization.k8s.io/v1", "kind",
			"SelfSubjectAccessReview", "spec", "resourceAttributes", attrs);
	status = kc_kube_call(k, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 200) {
		kc_kube_status_error(k, status, resp, &what, err);
		json_decref(resp);
		return -1;
	}
	if (json_unpack(resp, "{s:{s?b}}", "status", "allowed", &ok) < 0) {
		kc_seterr(err, "cluster %s: an access review answer without status", k->cl->name);
		json_decref(resp);
		return -1;
	}
	*allowed = ok;
	json_decref(resp);
	return 0;
}

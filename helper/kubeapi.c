/* HTTP + JSON for the Kubernetes API: TokenRequest, the revocation Secret,
 * ServiceAccounts and bindings, access reviews. */
#include "kc_kubeapi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "kc_json.h"

struct kc_kube {
	CURL *curl;
	char *name; /* the cluster's name in the config, for messages */
	char *server;
	struct curl_slist *headers; /* holds the bearer token: wiped before freeing */
	struct kc_buf key; /* client key PEM (libcurl reads it without a copy) */
	unsigned requests;
	long request_timeout_ms;
	long long deadline_ms; /* 0: none */
	bool unreachable;
	char primary_ip[64]; /* the address of the last connection, "ip port" */
};

static void wipe_headers(struct curl_slist *h)
{
	for (; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
}

static int set_credential(struct kc_kube *k, const struct kc_cluster_credential *cred)
{
	if (cred->bearer.len) {
		kc_autobuf struct kc_buf hdr = { .secret = true };
		struct curl_slist *more;

		if (kc_buf_printf(&hdr, "Authorization: Bearer %s", cred->bearer.data) < 0)
			return -1;
		more = curl_slist_append(k->headers, hdr.data);
		if (!more)
			return -1;
		k->headers = more;
		return 0;
	}
	if (cred->cert.len && cred->key.len) {
		struct curl_blob cert = { cred->cert.data, cred->cert.len, CURL_BLOB_COPY }, key;

		k->key.secret = true;
		if (kc_buf_append(&k->key, cred->key.data, cred->key.len) < 0)
			return -1;
		key = (struct curl_blob){ k->key.data, k->key.len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(k->curl, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(k->curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(k->curl, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(k->curl, CURLOPT_SSLKEYTYPE, "PEM");
		return 0;
	}
	return -1;
}

struct kc_kube *kc_kube_open(const struct kc_cluster_endpoint *ep, const struct kc_cluster_credential *cred,
			     long connect_timeout_ms, long request_timeout_ms, struct kc_err *err)
{
	struct kc_kube *k = calloc(1, sizeof(*k));
	const struct kc_cluster *cl = ep->cl;

	if (!k || !(k->name = strdup(cl->name)) || !(k->server = strdup(ep->server)))
		goto oom;
	k->request_timeout_ms = request_timeout_ms;
	k->curl = curl_easy_init();
	if (!k->curl) {
		kc_seterr(err, "cluster %s: cannot initialise libcurl", cl->name);
		goto fail;
	}
	k->headers = curl_slist_append(k->headers, "Accept: application/json");
	k->headers = curl_slist_append(k->headers, "Content-Type: application/json");
	k->headers = curl_slist_append(k->headers, "User-Agent: pam-kubeconfig");
	if (!k->headers || set_credential(k, cred) < 0)
		goto oom;

	/* HTTPS only, no redirects, no proxy from the environment, only our CA. */
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k->curl, CURLOPT_PROXY, cl->proxy ? cl->proxy : "");
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, request_timeout_ms);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, k->headers);
	curl_easy_setopt(k->curl, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(k->curl, CURLOPT_CAPATH, NULL);
	if (ep->insecure) {
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		struct curl_blob ca = { ep->ca_pem, ep->ca_pem_len, CURL_BLOB_COPY };

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
	kc_buf_free(&k->key);
	free(k->name);
	free(k->server);
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
	size_t base_len = strlen(k->server);

	*resp = NULL;
	while (base_len > 0 && k->server[base_len - 1] == '/')
		base_len--;
	if (kc_buf_append(&url, k->server, base_len) < 0 || kc_buf_puts(&url, path) < 0) {
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
				kc_seterr(err, "cluster %s: out of time before the request", k->name);
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
	{
		char *ip = NULL;
		long port = 0;

		if (curl_easy_getinfo(k->curl, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && *ip &&
		    curl_easy_getinfo(k->curl, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK)
			snprintf(k->primary_ip, sizeof(k->primary_ip), "%s %ld", ip, port);
	}
	if (rc != CURLE_OK) {
		k->unreachable = true;
		if (rc == CURLE_WRITE_ERROR)
			kc_seterr(err, "cluster %s: the API server's answer is larger than %u bytes", k->name,
				  KC_RESPONSE_MAX);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			kc_seterr(err, "cluster %s: no answer from %s within the timeout (%s)", k->name, k->server,
				  curl_easy_strerror(rc));
		else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
			 rc == CURLE_SSL_CONNECT_ERROR)
			kc_seterr(err,
				  "cluster %s: TLS with %s failed (%s): the server's certificate is not signed by "
				  "the configured certificate_authority or does not name the host",
				  k->name, k->server, curl_easy_strerror(rc));
		else
			kc_seterr(err, "cluster %s: cannot reach %s: %s", k->name, k->server, curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 500)
		k->unreachable = true;
	if (in.len > 0) {
		*resp = json_loadb(in.data, in.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!*resp && status >= 200 && status < 300) {
			kc_seterr(err, "cluster %s: the API server answered %ld with a body that is not JSON (%s)",
				  k->name, status, jerr.text);
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
	kc_status_error(k->name, status, resp, w, err);
}

void kc_minted_clear(struct kc_minted *m)
{
	kc_free_secret(m->token);
	memset(m, 0, sizeof(*m));
}

/* jti and the bound Secret's uid from the JWT payload. The token is the API
 * server's; nothing here is trusted for more than reporting and the uid the
 * server itself bound it to. */
static void read_jwt_claims(const char *token, struct kc_minted *out)
{
	const char *p1 = strchr(token, '.'), *p2;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_t *claims;
	const char *jti = NULL, *uid = NULL;

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
	if (json_unpack(claims, "{s:{s:{s:s}}}", "kubernetes.io", "secret", "uid", &uid) == 0 && uid)
		snprintf(out->secret_uid, sizeof(out->secret_uid), "%s", uid);
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
	/* What the server granted: spec.expirationSeconds of its answer. Expiry on
	 * our clock is then the time we asked plus that, whatever its clock says. */
	{
		json_int_t granted = 0;

		if (json_unpack(resp, "{s:{s:I}}", "spec", "expirationSeconds", &granted) == 0 && granted > 0)
			out->lifetime = (long)granted;
		else
			out->lifetime = (long)(out->expiry - asked);
	}
	out->expiry = asked + out->lifetime;
	/* The server may cap the lifetime (EKS and --service-account-max-token-expiration). */
	out->shortened = out->lifetime < ttl - 60;
	read_jwt_claims(out->token, out);
	return 0;
}

/* A 404's details.kind: which object was missing. */
static bool missing_kind(json_t *resp, const char *kind)
{
	const char *k = NULL;

	return json_unpack(resp, "{s:{s:s}}", "details", "kind", &k) == 0 && k && strcmp(k, kind) == 0;
}

int kc_kube_token_request(struct kc_kube *k, const struct kc_token_spec *t, struct kc_minted *out, struct kc_err *err)
{
	struct kc_action what = { "create", "serviceaccounts/token", t->sa_namespace, t->sa_name };
	char path[512];
	json_t *req, *spec, *auds, *resp = NULL;
	time_t asked = time(NULL);
	long status;
	int rc = KC_MINT_FAILED;

	memset(out, 0, sizeof(*out));
	auds = json_array();
	for (size_t i = 0; i < t->n_audiences; i++)
		json_array_append_new(auds, json_string(t->audiences[i]));
	spec = json_pack("{s:I, s:o}", "expirationSeconds", (json_int_t)t->ttl, "audiences", auds);
	if (spec && t->secret && *t->secret) {
		json_t *ref = json_pack("{s:s, s:s, s:s}", "kind", "Secret", "apiVersion", "v1", "name", t->secret);

		/* Bound to this incarnation: a Secret made anew underneath fails loudly (409). */
		if (ref && t->secret_uid && *t->secret_uid)
			json_object_set_new(ref, "uid", json_string(t->secret_uid));
		json_object_set_new(spec, "boundObjectRef", ref);
	}
	req = json_pack("{s:s, s:s, s:o}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenRequest", "spec",
			spec);
	if (!req) {
		kc_seterr(err, "out of memory");
		return KC_MINT_FAILED;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", t->sa_namespace, t->sa_name);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		goto out;
	if (status == 200 || status == 201) {
		if (kc_token_response_parse(k->name, t->sa_namespace, t->sa_name, resp, t->ttl, asked, out, err) == 0)
			rc = KC_MINT_OK;
		goto out;
	}
	kc_kube_status_error(k, status, resp, &what, err);
	if (status == 404 && missing_kind(resp, "serviceaccounts"))
		rc = KC_MINT_SA_MISSING;
	else if ((status == 404 && missing_kind(resp, "secrets")) || status == 409)
		rc = KC_MINT_SECRET_MISSING;
out:
	json_decref(resp);
	if (rc != KC_MINT_OK)
		kc_minted_clear(out);
	return rc;
}

void kc_revocation_secret_name(const char *host_id, const char *user, const char *cluster, char *out, size_t len)
{
	kc_autobuf struct kc_buf in = { 0 };
	char hex[65];

	/* NULs between the parts: no two tuples collide. The cluster is in it so
	 * that two config entries reaching one API server never share a Secret. */
	kc_buf_puts(&in, host_id);
	kc_buf_append(&in, "", 1);
	kc_buf_puts(&in, user);
	kc_buf_append(&in, "", 1);
	kc_buf_puts(&in, cluster);
	kc_sha256_hex(in.data, in.len, hex);
	snprintf(out, len, "pam-kubeconfig-%.20s", hex);
}

static void secret_path(const char *ns, const char *name, const char *query, char *out, size_t len)
{
	snprintf(out, len, "/api/v1/namespaces/%s/secrets%s%s%s", ns, name ? "/" : "", name ? name : "", query);
}

static void copy_uid(json_t *resp, char uid[64])
{
	const char *u = NULL;

	uid[0] = '\0';
	/* The object itself, or (a DELETE's answer) a Status naming it in details. */
	if ((json_unpack(resp, "{s:{s:s}}", "metadata", "uid", &u) == 0 ||
	     json_unpack(resp, "{s:{s:s}}", "details", "uid", &u) == 0) &&
	    u)
		snprintf(uid, 64, "%s", u);
}

int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const char *user, const char *host,
			  char uid[64], struct kc_err *err)
{
	struct kc_action what = { "create", "secrets", ns, name };
	char path[300];
	json_t *req, *resp = NULL;
	long status;
	int rc = -1;

	uid[0] = '\0';
	req = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s}, s:{s:s, s:s}}}", "apiVersion", "v1", "kind", "Secret", "type",
			"Opaque", "metadata", "name", name, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig",
			"annotations", "pam-kubeconfig/user", user, "pam-kubeconfig/host", host);
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	secret_path(ns, NULL, "", path, sizeof(path));
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status == 201 || status == 200) {
		copy_uid(resp, uid);
		rc = uid[0] ? 0
			    : (kc_seterr(err, "cluster %s: the Secret %s/%s was made without a uid", k->name, ns, name),
			       -1);
	} else if (status == 409) {
		rc = 1;
	} else if (status > 0) {
		kc_kube_status_error(k, status, resp, &what, err);
	}
	json_decref(resp);
	return rc;
}

int kc_kube_secret_uid(struct kc_kube *k, const char *ns, const char *name, char uid[64], struct kc_err *err)
{
	struct kc_action what = { "delete", "secrets", ns, name };
	char path[300];
	json_t *resp = NULL;
	long status;
	int rc = -1;

	uid[0] = '\0';
	/* A dry run answers with the object it would delete, and deletes nothing. */
	secret_path(ns, name, "?dryRun=All", path, sizeof(path));
	status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
	if (status == 200 || status == 202) {
		copy_uid(resp, uid);
		rc = uid[0] ? 0
			    : (kc_seterr(err, "cluster %s: no uid in the dry run for %s/%s", k->name, ns, name), -1);
	} else if (status == 404) {
		rc = 1;
	} else if (status > 0) {
		kc_kube_status_error(k, status, resp, &what, err);
	}
	json_decref(resp);
	return rc;
}

int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, const char *uid, struct kc_err *err)
{
	struct kc_action what = { "delete", "secrets", ns, name };
	char path[300];
	json_t *body, *resp = NULL;
	long status;
	int rc = -1;

	/* Only this incarnation: a Secret made anew since is not ours to delete. */
	body = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions", "preconditions", "uid",
			 uid);
	if (!body)
		return kc_seterr(err, "out of memory"), -1;
	secret_path(ns, name, "", path, sizeof(path));
	status = kc_kube_call(k, "DELETE", path, body, &resp, err);
	json_decref(body);
	if (status == 200 || status == 202)
		rc = 0;
	else if (status == 404 || status == 409)
		rc = 1; /* gone, or another incarnation: the one we meant is revoked */
	else if (status > 0)
		kc_kube_status_error(k, status, resp, &what, err);
	json_decref(resp);
	return rc;
}

const char *kc_kube_peer(const struct kc_kube *k)
{
	return k->primary_ip;
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
				k->name, resource, bname, role);
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
		kc_seterr(err, "cluster %s: an access review answer without status", k->name);
		json_decref(resp);
		return -1;
	}
	*allowed = ok;
	json_decref(resp);
	return 0;
}

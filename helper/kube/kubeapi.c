/* The Kubernetes API client: one HTTPS connection per server, only the
 * configured CA trusted, every request bounded by the caller's deadline, and
 * errors phrased for a sysadmin. The calls themselves are in tokens.c and
 * objects.c. */

#include "kube/kubeapi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "common/json_alloc.h"

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
	bool out_of_time; /* kc_kube_out_of_time() */
	char primary_ip[64]; /* the address of the last connection, "ip port" */
	int (*gate)(void *arg); /* kc_kube_gate() */
	void *gate_arg;
};

/* A request body sent through the gate (kc_kube_gate()). */
struct gated_body {
	struct kc_kube *k;
	const char *data;
	size_t len, sent;
	bool refused; /* the gate failed: the body never went */
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
	k->headers = curl_slist_append(k->headers, "Expect:"); /* the body goes with the head, never asked for */
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
	/* A job sends two or three requests, one after another, on one connection:
	 * HTTP/2's per-connection setup (settings, window updates, the server's
	 * stream machinery) costs both sides more than it could save. */
	curl_easy_setopt(k->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
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

void kc_kube_gate(struct kc_kube *k, int (*wait)(void *arg), void *arg)
{
	k->gate = wait;
	k->gate_arg = arg;
}

/* 0 when the gate is open (or was never set); -1 when it failed. */
static int pass_gate(struct kc_kube *k)
{
	int (*wait)(void *arg) = k->gate;

	k->gate = NULL;
	return wait ? wait(k->gate_arg) : 0;
}

/* libcurl asks for the body once the head is on its way. */
static size_t send_body(char *buf, size_t size, size_t nmemb, void *userp)
{
	struct gated_body *b = userp;
	size_t n = size * nmemb;

	if (pass_gate(b->k) < 0) {
		b->refused = true;
		return CURL_READFUNC_ABORT;
	}
	if (n > b->len - b->sent)
		n = b->len - b->sent;
	memcpy(buf, b->data + b->sent, n);
	b->sent += n;
	return n;
}

bool kc_kube_unreachable(const struct kc_kube *k)
{
	return k->unreachable;
}

bool kc_kube_out_of_time(const struct kc_kube *k)
{
	return k->out_of_time;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct kc_buf *b = userp;
	size_t n = size * nmemb;

	if (b->len + n > KC_RESPONSE_MAX || kc_buf_append(b, data, n) < 0)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	return n;
}

/* The request's own timeout: the configured one, cut to what is left of the deadline. */
static long timeout_for(struct kc_kube *k, struct kc_err *err)
{
	long long left;

	if (!k->deadline_ms)
		return k->request_timeout_ms;
	left = k->deadline_ms - kc_now_ms();
	if (left < 1) {
		kc_seterr(err, "cluster %s: out of time before the request", k->name);
		k->unreachable = true;
		k->out_of_time = true;
		return -1;
	}
	return left < k->request_timeout_ms ? (long)left : k->request_timeout_ms;
}

static void transport_error(struct kc_kube *k, CURLcode rc, struct kc_err *err)
{
	k->unreachable = true;
	/* The timeout that fired was the deadline's remainder (timeout_for()). */
	k->out_of_time |= rc == CURLE_OPERATION_TIMEDOUT && k->deadline_ms && kc_now_ms() >= k->deadline_ms - 5;
	if (rc == CURLE_WRITE_ERROR)
		kc_seterr(err, "cluster %s: the API server's answer is larger than %u bytes", k->name, KC_RESPONSE_MAX);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		kc_seterr(err, "cluster %s: no answer from %s within the timeout (%s)", k->name, k->server,
			  curl_easy_strerror(rc));
	else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		 rc == CURLE_SSL_CONNECT_ERROR)
		kc_seterr(err,
			  "cluster %s: TLS with %s failed (%s): the server's certificate is not signed by the "
			  "configured certificate_authority or does not name the host",
			  k->name, k->server, curl_easy_strerror(rc));
	else
		kc_seterr(err, "cluster %s: cannot reach %s: %s", k->name, k->server, curl_easy_strerror(rc));
}

/* The address the last connection went to, for cutting the user's later. */
static void remember_peer(struct kc_kube *k)
{
	char *ip = NULL;
	long port = 0;

	if (curl_easy_getinfo(k->curl, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && *ip &&
	    curl_easy_getinfo(k->curl, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK)
		snprintf(k->primary_ip, sizeof(k->primary_ip), "%s %ld", ip, port);
}

/* libcurl rewinds a body it must send again (a fresh connection). */
static int rewind_body(void *userp, curl_off_t offset, int origin)
{
	struct gated_body *b = userp;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > b->len)
		return CURL_SEEKFUNC_CANTSEEK;
	b->sent = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int set_request(struct kc_kube *k, const char *method, const char *path, const char *body,
		       struct gated_body *gated, struct kc_buf *in, struct kc_err *err)
{
	kc_autobuf struct kc_buf url = { 0 };
	size_t base_len = strlen(k->server);
	long timeout = timeout_for(k, err);

	if (timeout < 0)
		return -1;
	while (base_len > 0 && k->server[base_len - 1] == '/')
		base_len--;
	if (kc_buf_append(&url, k->server, base_len) < 0 || kc_buf_puts(&url, path) < 0)
		return kc_seterr(err, "out of memory"), -1;
	curl_easy_setopt(k->curl, CURLOPT_URL, url.data); /* libcurl copies it */
	if (body && k->gate) {
		*gated = (struct gated_body){ .k = k, .data = body, .len = strlen(body) };
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(k->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)gated->len);
		curl_easy_setopt(k->curl, CURLOPT_READFUNCTION, send_body);
		curl_easy_setopt(k->curl, CURLOPT_READDATA, gated);
		curl_easy_setopt(k->curl, CURLOPT_SEEKFUNCTION, rewind_body);
		curl_easy_setopt(k->curl, CURLOPT_SEEKDATA, gated);
	} else if (body) {
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(k->curl, CURLOPT_HTTPGET, 1L); /* no body left from the call before */
	}
	curl_easy_setopt(k->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, in);
	return 0;
}

long kc_kube_call(struct kc_kube *k, const char *method, const char *path, json_t *body, json_t **resp,
		  struct kc_err *err)
{
	kc_autobuf struct kc_buf in = { .secret = true };
	struct gated_body gated = { 0 };
	char *out = NULL;
	json_error_t jerr;
	long status = 0;
	CURLcode rc;

	*resp = NULL;
	if (!body && pass_gate(k) < 0)
		return kc_seterr(err, "cluster %s: %s %s not sent: what it needs on disk first could not be written",
				 k->name, method, path),
		       -1;
	if (body && !(out = json_dumps(body, JSON_COMPACT)))
		return kc_seterr(err, "out of memory"), -1;
	if (set_request(k, method, path, out, &gated, &in, err) < 0) {
		kc_json_free(out);
		return -1;
	}
	k->requests++;
	rc = curl_easy_perform(k->curl);
	kc_json_free(out);
	remember_peer(k);
	if (gated.refused) {
		k->requests--;
		return kc_seterr(err, "cluster %s: %s %s not sent: what it needs on disk first could not be written",
				 k->name, method, path),
		       -1;
	}
	if (rc != CURLE_OK) {
		transport_error(k, rc, err);
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

void kc_kube_status_error_for(const char *cluster, long status, json_t *resp, const struct kc_action *w,
			      struct kc_err *err)
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
	kc_kube_status_error_for(k->name, status, resp, w, err);
}

const char *kc_kube_peer(const struct kc_kube *k)
{
	return k->primary_ip;
}

const char *kc_kube_name(const struct kc_kube *k)
{
	return k->name;
}

struct kc_kube *kc_kube_connect(const struct kc_config *cfg, const struct kc_cluster *cl, long long deadline_ms,
				struct kc_cluster_endpoint *ep, struct kc_err *err)
{
	struct kc_cluster_endpoint local;
	struct kc_cluster_credential cred;
	struct kc_kube *k = NULL;

	if (!ep)
		ep = &local;
	if (kc_cluster_resolve(cfg, cl, deadline_ms, ep, err) < 0)
		return NULL;
	if (kc_cluster_credential(cfg, cl, deadline_ms, &cred, err) == 0) {
		k = kc_kube_open(ep, &cred, cfg->connect_timeout_ms, cfg->request_timeout_ms, err);
		kc_cluster_credential_free(&cred);
	}
	if (k)
		kc_kube_set_deadline(k, deadline_ms);
	if (!k || ep == &local)
		kc_cluster_endpoint_free(ep);
	return k;
}

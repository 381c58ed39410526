/* A single bounded HTTP call for AWS endpoints. */
#include "aws/http.h"

#include <limits.h>
#include <string.h>

#include <curl/curl.h>

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct kc_buf *b = userp;
	size_t n = size * nmemb;

	if (b->len + n > KC_HTTP_MAX || kc_buf_append(b, data, n) < 0)
		return 0;
	return n;
}

long kc_http_budget(long limit_ms, long long deadline_ms)
{
	long long left;

	if (!deadline_ms)
		return limit_ms;
	left = deadline_ms - kc_now_ms();
	if (left < 1)
		return 0;
	if (left > LONG_MAX)
		left = LONG_MAX;
	return limit_ms > 0 && limit_ms < left ? limit_ms : (long)left;
}

static void set_options(CURL *curl, const struct kc_http_call *c, struct curl_slist *hdrs, long connect_ms,
			long total_ms, struct kc_buf *resp)
{
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "pam-kubeconfig");
	if (c->body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
	} else if (strcmp(c->method, "PUT") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (c->ca_file) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
}

long kc_http(const struct kc_http_call *c, struct kc_buf *resp, struct kc_err *err)
{
	long total_ms = kc_http_budget(c->timeout_ms, c->deadline_ms);
	long connect_ms = kc_http_budget(c->connect_timeout_ms, c->deadline_ms);
	struct curl_slist *hdrs = NULL;
	long status = -1;
	CURL *curl;
	CURLcode rc;

	resp->secret = true;
	if (c->deadline_ms && (total_ms < 1 || connect_ms < 1))
		return kc_seterr(err, "out of time before asking %s", c->url), -1;
	curl = curl_easy_init();
	if (!curl)
		return kc_seterr(err, "cannot initialise libcurl"), -1;
	for (size_t i = 0; c->headers && c->headers[i]; i++)
		hdrs = curl_slist_append(hdrs, c->headers[i]);
	/* libcurl adds "Expect: 100-continue" to POSTs; AWS does not need the round trip. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	set_options(curl, c, hdrs, connect_ms, total_ms, resp);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		kc_seterr(err, "no answer from %s within %ld ms", c->url, total_ms);
	else if (rc == CURLE_WRITE_ERROR)
		kc_seterr(err, "the answer from %s is larger than %u bytes", c->url, KC_HTTP_MAX);
	else
		kc_seterr(err, "cannot reach %s: %s", c->url, curl_easy_strerror(rc));
	for (struct curl_slist *h = hdrs; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return status;
}

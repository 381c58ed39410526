/* AWS SigV4 signing with OpenSSL's HMAC-SHA256 and SHA-256. */
#include "aws/aws_sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

void kc_aws_credentials_clear(struct kc_aws_credentials *c)
{
	kc_free_secret(c->access_key_id);
	kc_free_secret(c->secret_access_key);
	kc_free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

int kc_aws_credentials_set(struct kc_aws_credentials *out, const char *akid, const char *secret, const char *token,
			   struct kc_err *err)
{
	out->access_key_id = strdup(akid);
	out->secret_access_key = strdup(secret);
	out->session_token = token && *token ? strdup(token) : NULL;
	if (!out->access_key_id || !out->secret_access_key || (token && *token && !out->session_token)) {
		kc_aws_credentials_clear(out);
		return kc_seterr(err, "out of memory"), -1;
	}
	return 0;
}

int kc_aws_uri_encode(struct kc_buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
			if (kc_buf_append(out, &s[i], 1) < 0)
				return -1;
		} else {
			char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

			if (kc_buf_append(out, enc, 3) < 0)
				return -1;
		}
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out. */
static int uri_decode(struct kc_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (kc_buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

static void hex_of(const unsigned char *md, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hmac(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
}

/* ---- canonical pieces ----------------------------------------------------- */

static int canonical_path(struct kc_buf *out, const char *path, bool normalize)
{
	kc_autobuf struct kc_buf norm = { 0 };
	const char **seg = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;

	if (!normalize || !*path)
		return kc_aws_uri_encode(out, *path ? path : "/", *path ? strlen(path) : 1, true);
	for (const char *p = path; *p;) {
		size_t len;

		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if (len == 0)
			break;
		if (len == 1 && p[0] == '.') {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				n--;
		} else {
			if (n == cap) {
				const char **s = realloc(seg, (cap = cap ? cap * 2 : 8) * sizeof(*s));

				if (!s)
					goto out;
				seg = s;
			}
			seg[n++] = p;
		}
		p += len;
	}
	kc_buf_puts(&norm, "/");
	for (size_t i = 0; i < n; i++) {
		kc_buf_append(&norm, seg[i], strcspn(seg[i], "/"));
		if (i + 1 < n)
			kc_buf_puts(&norm, "/");
	}
	if (n > 0 && path[strlen(path) - 1] == '/')
		kc_buf_puts(&norm, "/");
	rc = kc_aws_uri_encode(out, norm.data, norm.len, true);
out:
	free(seg);
	return rc;
}

struct pair {
	char *key; /* encoded */
	char *value;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

static int add_pair(struct pair **v, size_t *n, const char *key, const char *value)
{
	struct pair *p = realloc(*v, (*n + 1) * sizeof(**v));

	if (!p)
		return -1;
	*v = p;
	p[*n].key = strdup(key);
	p[*n].value = strdup(value ? value : "");
	if (!p[*n].key || !p[*n].value) {
		free(p[*n].key);
		free(p[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

/* Splits the raw query into encoded key/value pairs. */
static int parse_query(const char *query, struct pair **v, size_t *n)
{
	if (!query)
		return 0;
	for (const char *p = query; *p;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		kc_autobuf struct kc_buf k = { 0 }, val = { 0 }, ek = { 0 }, ev = { 0 };

		if (len > 0) {
			if (uri_decode(&k, p, eq ? (size_t)(eq - p) : len) < 0 ||
			    (eq && uri_decode(&val, eq + 1, len - (size_t)(eq - p) - 1) < 0) ||
			    kc_aws_uri_encode(&ek, k.data ? k.data : "", k.len, false) < 0 ||
			    kc_aws_uri_encode(&ev, val.data ? val.data : "", val.len, false) < 0 ||
			    add_pair(v, n, ek.data ? ek.data : "", ev.data ? ev.data : "") < 0)
				return -1;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

struct header {
	char *name; /* lowercase */
	struct kc_buf value;
};

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct header *)a)->name, ((const struct header *)b)->name);
}

/* Trims and folds runs of whitespace (including line folds) into one space. */
static int fold_value(struct kc_buf *out, const char *v)
{
	bool space = false, any = false;

	for (; *v; v++) {
		if (isspace((unsigned char)*v)) {
			space = any;
			continue;
		}
		if (space && kc_buf_append(out, " ", 1) < 0)
			return -1;
		space = false;
		any = true;
		if (kc_buf_append(out, v, 1) < 0)
			return -1;
	}
	return kc_buf_append(out, "", 0);
}

static int add_header(struct header **hs, size_t *n, const char *name, const char *value)
{
	char lower[256];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[i] = '\0';
	for (size_t j = 0; j < *n; j++) {
		if (strcmp((*hs)[j].name, lower) == 0) {
			/* Repeated header: values joined with ',' in the order given. */
			return (kc_buf_puts(&(*hs)[j].value, ",") < 0 || fold_value(&(*hs)[j].value, value) < 0) ? -1
														 : 0;
		}
	}
	{
		struct header *p = realloc(*hs, (*n + 1) * sizeof(**hs));

		if (!p)
			return -1;
		*hs = p;
		memset(&p[*n], 0, sizeof(p[*n]));
		p[*n].value.secret = true; /* x-amz-security-token */
		if (!(p[*n].name = strdup(lower)) || fold_value(&p[*n].value, value) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int set_param(struct kc_sigv4_param *p, const char *key, const char *value)
{
	p->key = key;
	p->value = strdup(value ? value : "");
	return p->value ? 0 : -1;
}

/* The signed headers: the request's, then (header signing) X-Amz-Date, the
 * session token and the body hash; sorted, and their names joined with ';'. */
static int signed_headers(const struct kc_sigv4_request *req, const struct kc_aws_credentials *cred,
			  const struct kc_sigv4_options *opt, const char *body_hash, struct kc_sigv4_result *out,
			  struct header **hs, size_t *n_h)
{
	bool with_token = cred->session_token && *cred->session_token;

	for (size_t i = 0; i < req->n_headers; i++)
		if (add_header(hs, n_h, req->headers[i].name, req->headers[i].value) < 0)
			return -1;
	if (!opt->presign) {
		if (add_header(hs, n_h, "X-Amz-Date", out->amz_date) < 0)
			return -1;
		if (with_token && !opt->omit_session_token &&
		    add_header(hs, n_h, "X-Amz-Security-Token", cred->session_token) < 0)
			return -1;
		if (opt->sign_body) {
			snprintf(out->content_sha256, sizeof(out->content_sha256), "%s", body_hash);
			if (add_header(hs, n_h, "x-amz-content-sha256", body_hash) < 0)
				return -1;
		}
	}
	if (*n_h)
		qsort(*hs, *n_h, sizeof(**hs), cmp_header);
	for (size_t i = 0; i < *n_h; i++)
		if (kc_buf_printf(&out->signed_headers, "%s%s", i ? ";" : "", (*hs)[i].name) < 0)
			return -1;
	return 0;
}

/* Presigning: the X-Amz-* query parameters, kept for the caller and added to the query. */
static int presign_params(const struct kc_aws_credentials *cred, const struct kc_sigv4_options *opt, const char *scope,
			  struct kc_sigv4_result *out, struct pair **qs, size_t *n_q)
{
	kc_autobuf struct kc_buf credential = { 0 }, sh = { 0 }, token = { .secret = true };
	bool with_token = cred->session_token && *cred->session_token;
	char expires[32], raw[512];

	snprintf(raw, sizeof(raw), "%s/%s", cred->access_key_id, scope);
	snprintf(expires, sizeof(expires), "%ld", opt->expires);
	if (kc_aws_uri_encode(&credential, raw, strlen(raw), false) < 0 ||
	    kc_aws_uri_encode(&sh, out->signed_headers.data, out->signed_headers.len, false) < 0 ||
	    (with_token && kc_aws_uri_encode(&token, cred->session_token, strlen(cred->session_token), false) < 0))
		return -1;
	if (set_param(&out->algorithm, "X-Amz-Algorithm", "AWS4-HMAC-SHA256") < 0 ||
	    set_param(&out->credential, "X-Amz-Credential", credential.data) < 0 ||
	    set_param(&out->date, "X-Amz-Date", out->amz_date) < 0 ||
	    set_param(&out->expires, "X-Amz-Expires", expires) < 0 ||
	    set_param(&out->signed_headers_param, "X-Amz-SignedHeaders", sh.data) < 0 ||
	    (with_token && set_param(&out->security_token, "X-Amz-Security-Token", token.data) < 0))
		return -1;
	if (add_pair(qs, n_q, "X-Amz-Algorithm", out->algorithm.value) < 0 ||
	    add_pair(qs, n_q, "X-Amz-Credential", out->credential.value) < 0 ||
	    add_pair(qs, n_q, "X-Amz-Date", out->amz_date) < 0 || add_pair(qs, n_q, "X-Amz-Expires", expires) < 0 ||
	    add_pair(qs, n_q, "X-Amz-SignedHeaders", sh.data) < 0 ||
	    (with_token && !opt->omit_session_token && add_pair(qs, n_q, "X-Amz-Security-Token", token.data) < 0))
		return -1;
	return 0;
}

static int canonical_request(const struct kc_sigv4_request *req, const struct kc_sigv4_options *opt,
			     const struct header *hs, size_t n_h, const struct pair *qs, size_t n_q,
			     const char *body_hash, struct kc_sigv4_result *out)
{
	struct kc_buf *cr = &out->canonical_request;

	kc_buf_printf(cr, "%s\n", req->method);
	if (canonical_path(cr, req->path, opt->normalize_path) < 0)
		return -1;
	kc_buf_puts(cr, "\n");
	for (size_t i = 0; i < n_q; i++)
		kc_buf_printf(cr, "%s%s=%s", i ? "&" : "", qs[i].key, qs[i].value);
	kc_buf_puts(cr, "\n");
	for (size_t i = 0; i < n_h; i++)
		kc_buf_printf(cr, "%s:%s\n", hs[i].name, hs[i].value.data);
	kc_buf_printf(cr, "\n%s\n%s", out->signed_headers.data, body_hash);
	return cr->data ? 0 : -1;
}

/* String to sign, the derived key, the signature. */
static void signature(const struct kc_aws_credentials *cred, const struct kc_sigv4_options *opt, const char *date,
		      const char *scope, struct kc_sigv4_result *out)
{
	kc_autobuf struct kc_buf key = { .secret = true };
	unsigned char md[32], k1[32], k2[32], k3[32], k4[32];
	unsigned int mdlen = 32;
	char cr_hash[65];

	EVP_Digest(out->canonical_request.data, out->canonical_request.len, md, &mdlen, EVP_sha256(), NULL);
	hex_of(md, 32, cr_hash);
	kc_buf_printf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", out->amz_date, scope, cr_hash);
	kc_buf_printf(&key, "AWS4%s", cred->secret_access_key);
	hmac(key.data, key.len, date, strlen(date), k1);
	hmac(k1, 32, opt->region, strlen(opt->region), k2);
	hmac(k2, 32, opt->service, strlen(opt->service), k3);
	hmac(k3, 32, "aws4_request", 12, k4);
	hmac(k4, 32, out->string_to_sign.data, out->string_to_sign.len, md);
	hex_of(md, 32, out->signature);
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	explicit_bzero(k3, sizeof(k3));
	explicit_bzero(k4, sizeof(k4));
}

int kc_sigv4_sign(const struct kc_sigv4_request *req, const struct kc_aws_credentials *cred,
		  const struct kc_sigv4_options *opt, struct kc_sigv4_result *out, struct kc_err *err)
{
	struct header *hs = NULL;
	struct pair *qs = NULL;
	size_t n_h = 0, n_q = 0;
	char date[9], scope[256], body_hash[65];
	unsigned char md[32];
	unsigned int mdlen = 32;
	struct tm tm;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->canonical_request.secret = out->string_to_sign.secret = true;
	gmtime_r(&opt->when, &tm);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, opt->region, opt->service);
	EVP_Digest(req->body ? req->body : "", req->body_len, md, &mdlen, EVP_sha256(), NULL);
	hex_of(md, 32, body_hash);

	if (signed_headers(req, cred, opt, body_hash, out, &hs, &n_h) < 0 || parse_query(req->query, &qs, &n_q) < 0 ||
	    (opt->presign && presign_params(cred, opt, scope, out, &qs, &n_q) < 0))
		goto oom;
	if (n_q)
		qsort(qs, n_q, sizeof(*qs), cmp_pair);
	if (canonical_request(req, opt, hs, n_h, qs, n_q, body_hash, out) < 0)
		goto oom;
	signature(cred, opt, date, scope, out);
	if (opt->presign) {
		if (set_param(&out->signature_param, "X-Amz-Signature", out->signature) < 0)
			goto oom;
	} else {
		kc_buf_printf(&out->authorization, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			      cred->access_key_id, scope, out->signed_headers.data, out->signature);
	}
	rc = 0;
	goto out;
oom:
	kc_seterr(err, "out of memory while signing");
out:
	for (size_t i = 0; i < n_h; i++) {
		free(hs[i].name);
		kc_buf_free(&hs[i].value);
	}
	free(hs);
	for (size_t i = 0; i < n_q; i++) {
		kc_free_secret(qs[i].key);
		kc_free_secret(qs[i].value);
	}
	free(qs);
	if (rc < 0)
		kc_sigv4_result_free(out);
	return rc;
}

void kc_sigv4_result_free(struct kc_sigv4_result *r)
{
	struct kc_sigv4_param *params[] = { &r->algorithm,	&r->credential,		  &r->date,
					    &r->expires,	&r->signed_headers_param, &r->security_token,
					    &r->signature_param };

	kc_buf_free(&r->canonical_request);
	kc_buf_free(&r->string_to_sign);
	kc_buf_free(&r->signed_headers);
	kc_buf_free(&r->authorization);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		kc_free_secret(params[i]->value);
		params[i]->value = NULL;
	}
	explicit_bzero(r->signature, sizeof(r->signature));
}

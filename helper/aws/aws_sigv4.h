/* AWS Signature Version 4: header signing and query presigning. Every
 * intermediate (canonical request, string to sign, signature) is exposed so the
 * public test suite can check each byte. */
#ifndef KC_SIGV4_H
#define KC_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/util.h"

/* AWS credentials: all three strings are secrets (kc_aws_credentials_clear wipes). */
struct kc_aws_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL without one */
	time_t expiration; /* 0: does not expire */
};
void kc_aws_credentials_clear(struct kc_aws_credentials *c);
/* Copies the three strings into out (token NULL or "": none); its expiration
 * is left as it is. 0, or -1 ("out of memory", out cleared). */
int kc_aws_credentials_set(struct kc_aws_credentials *out, const char *akid, const char *secret, const char *token,
			   struct kc_err *err);

struct kc_sigv4_header {
	const char *name;
	const char *value; /* as sent; may hold folded lines */
};

struct kc_sigv4_request {
	const char *method;
	const char *path; /* raw, not encoded */
	const char *query; /* raw query string without '?', or NULL */
	const struct kc_sigv4_header *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
};

struct kc_sigv4_options {
	const char *region;
	const char *service;
	time_t when;
	bool presign; /* query string instead of Authorization header */
	long expires; /* presign: X-Amz-Expires */
	bool normalize_path; /* remove dot segments and repeated slashes */
	bool sign_body; /* header signing: add x-amz-content-sha256 */
	bool omit_session_token; /* add the token after signing (not signed) */
};

/* One query parameter the signer adds, already percent-encoded. */
struct kc_sigv4_param {
	const char *key;
	char *value;
};

struct kc_sigv4_result {
	struct kc_buf canonical_request;
	struct kc_buf string_to_sign;
	char signature[65];
	char amz_date[17]; /* 20150830T123600Z */
	char content_sha256[65]; /* set when sign_body */
	struct kc_buf signed_headers;
	struct kc_buf authorization; /* header signing: the Authorization value */
	/* presign: the X-Amz-* parameters, Algorithm, Credential, Date, Expires,
	 * SignedHeaders, Security-Token (if any), Signature; callers order them */
	struct kc_sigv4_param algorithm, credential, date, expires, signed_headers_param, security_token,
		signature_param;
};

int kc_sigv4_sign(const struct kc_sigv4_request *req, const struct kc_aws_credentials *cred,
		  const struct kc_sigv4_options *opt, struct kc_sigv4_result *out, struct kc_err *err);
void kc_sigv4_result_free(struct kc_sigv4_result *r);

/* AWS's percent-encoding: unreserved characters stay, all else %XX. */
int kc_aws_uri_encode(struct kc_buf *out, const char *s, size_t len, bool keep_slash);

#endif

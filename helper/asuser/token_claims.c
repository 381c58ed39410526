/* A JWT's claims without the token (see asuser/token_claims.h): the payload,
 * base64url, parsed by the common YAML reader (JSON is YAML's flow style). */
#include "asuser/token_claims.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/ytree.h"

static long long claim_number(const struct kc_ynode *payload, const char *key)
{
	const struct kc_ynode *v = kc_ytree_get(payload, key);

	return v && v->kind == KC_YSCALAR && v->style == KC_YPLAIN ? strtoll(v->value, NULL, 10) : 0;
}

static void claim_text(const struct kc_ynode *payload, const char *key, char *out, size_t len)
{
	const struct kc_ynode *v = kc_ytree_get(payload, key);

	out[0] = '\0';
	if (v && v->kind == KC_YSCALAR && v->len < len)
		memcpy(out, v->value, v->len + 1);
}

int kc_token_claims_parse(const char *data, size_t len, struct kc_token_claims *out, struct kc_err *err)
{
	static const struct kc_ytree_limits lim = {
		.max_bytes = KC_TOKEN_FILE_MAX,
		.max_nodes = 2000,
		.max_depth = 8,
		.max_collection_depth = 7,
		.flags = KC_YTREE_STRING_KEYS | KC_YTREE_NO_NUL,
	};
	kc_autobuf struct kc_buf b64 = { .secret = false };
	const char *dot1 = memchr(data, '.', len), *dot2;
	unsigned char *json = NULL;
	size_t n = 0;
	struct kc_ynode *root = NULL;
	struct kc_ytree_error ye;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - data)) : NULL;
	if (!dot2)
		return kc_seterr(err, "the token is not a JWT"), -1;
	/* base64url without padding -> standard base64 (the payload holds no secret). */
	for (const char *p = dot1 + 1; p < dot2; p++)
		kc_buf_append(&b64, *p == '-' ? "+" : *p == '_' ? "/" : p, 1);
	while (b64.len % 4)
		kc_buf_puts(&b64, "=");
	if (!b64.data || kc_base64_decode(b64.data, b64.len, &json, &n) != 0)
		return kc_seterr(err, "the token's payload is not base64url"), -1;
	if (kc_ytree_read((const char *)json, n, &lim, &root, &ye) < 0 || !root || root->kind != KC_YMAP) {
		kc_seterr(err, "the token's payload is not a JSON object");
		goto out;
	}
	claim_text(root, "sub", out->subject, sizeof(out->subject));
	claim_text(root, "jti", out->jti, sizeof(out->jti));
	out->exp = (time_t)claim_number(root, "exp");
	out->iat = (time_t)claim_number(root, "iat");
	out->nbf = (time_t)claim_number(root, "nbf");
	out->read = true;
	rc = 0;
out:
	kc_ytree_free(root);
	free(json);
	return rc;
}

/* The token file's claims; the token itself is wiped at once. */
void kc_token_claims_read(const char *path, struct kc_token_claims *c)
{
	kc_autobuf struct kc_buf tok = { .secret = true };
	struct kc_err e;
	kc_autoclose int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	memset(c, 0, sizeof(*c));
	if (fd < 0 || kc_read_fd(fd, KC_TOKEN_FILE_MAX, &tok, &e) < 0 || !tok.data)
		return;
	while (tok.len && (tok.data[tok.len - 1] == '\n' || tok.data[tok.len - 1] == '\r'))
		tok.data[--tok.len] = '\0';
	kc_token_claims_parse(tok.data, tok.len, c, &e);
}

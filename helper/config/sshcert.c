/* The OpenSSH certificate wire format (see config/sshcert.h), read as
 * OpenSSH's sshkey.c cert_parse() reads it, with a limit on every length: the
 * blob comes from a user until its signature says otherwise. */
#include "config/sshcert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cert_type {
	const char *name;
	enum kc_sshkey_alg alg; /* KC_SSHKEY_NONE: a real type we never accept */
} cert_types[] = {
	{ "ssh-ed25519-cert-v01@openssh.com", KC_SSHKEY_ED25519 },
	{ "ecdsa-sha2-nistp256-cert-v01@openssh.com", KC_SSHKEY_P256 },
	{ "ecdsa-sha2-nistp384-cert-v01@openssh.com", KC_SSHKEY_P384 },
	{ "ecdsa-sha2-nistp521-cert-v01@openssh.com", KC_SSHKEY_P521 },
	{ "ssh-rsa-cert-v01@openssh.com", KC_SSHKEY_RSA },
	{ "ssh-dss-cert-v01@openssh.com", KC_SSHKEY_NONE },
	{ "sk-ssh-ed25519-cert-v01@openssh.com", KC_SSHKEY_NONE },
	{ "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", KC_SSHKEY_NONE },
};

#define CERT_SUFFIX "-cert-v01@openssh.com"

bool kc_sshcert_type_name(const char *name, size_t len)
{
	size_t sl = strlen(CERT_SUFFIX);

	return len > sl && memcmp(name + len - sl, CERT_SUFFIX, sl) == 0;
}

static const struct cert_type *cert_type_of(const char *name)
{
	for (size_t i = 0; i < sizeof(cert_types) / sizeof(cert_types[0]); i++)
		if (strcmp(cert_types[i].name, name) == 0)
			return &cert_types[i];
	return NULL;
}

void kc_sshcert_free(struct kc_sshcert *cert)
{
	if (!cert)
		return;
	for (size_t i = 0; i < cert->n_principals; i++)
		free(cert->principals[i]);
	for (size_t i = 0; i < cert->n_critical; i++)
		free(cert->critical[i].name);
	for (size_t i = 0; i < cert->n_extensions; i++)
		free(cert->extensions[i].name);
	free(cert->principals);
	free(cert->critical);
	free(cert->extensions);
	free(cert->key_id);
	free(cert->blob);
	free(cert);
}

/* ---- the parts ------------------------------------------------------------- */

static int bad(struct kc_err *err, const char *what)
{
	kc_seterr(err, "the certificate is malformed or over a limit at %s", what);
	return -1;
}

/* Type name, nonce (skipped: it only makes the signed bytes unpredictable), certified key. */
static int read_head(struct kc_sshbuf *b, struct kc_sshcert *c, struct kc_err *err)
{
	const struct cert_type *t;
	const unsigned char *nonce;
	size_t nonce_len;
	char name[64];
	struct kc_err e;

	if (kc_sshbuf_name(b, name, sizeof(name)) < 0)
		return bad(err, "its type name");
	t = cert_type_of(name);
	if (!t) {
		if (kc_sshcert_type_name(name, strlen(name)))
			return kc_seterr(err, "%s certificates are not supported", name), KC_SSHCERT_UNSUPPORTED;
		return kc_seterr(err, "'%.64s' is not an OpenSSH certificate type", name), -1;
	}
	c->type = t->name;
	if (t->alg == KC_SSHKEY_NONE)
		return kc_seterr(err, "%s certificates are not supported (DSA and FIDO keys are never accepted here)",
				 name),
		       KC_SSHCERT_UNSUPPORTED;
	if (kc_sshbuf_string(b, &nonce, &nonce_len) < 0)
		return bad(err, "its nonce");
	c->key_fields = b->p;
	if (kc_sshkey_read_fields(b, t->alg, &c->key, &e) < 0)
		return kc_seterr(err, "the certified key: %s", e.msg), -1;
	c->key_fields_len = (size_t)(b->p - c->key_fields);
	return 0;
}

static int read_principals(struct kc_sshbuf *b, struct kc_sshcert *c, struct kc_err *err)
{
	const unsigned char *p;
	size_t len;
	struct kc_sshbuf in;

	if (kc_sshbuf_string(b, &p, &len) < 0)
		return bad(err, "its principals");
	kc_sshbuf_init(&in, p, len);
	if (len > 0 && !(c->principals = calloc(KC_SSHCERT_MAX_PRINCIPALS, sizeof(char *))))
		return kc_seterr(err, "out of memory"), -1;
	while (in.len > 0) {
		if (c->n_principals == KC_SSHCERT_MAX_PRINCIPALS)
			return kc_seterr(err, "the certificate lists more than %d principals",
					 KC_SSHCERT_MAX_PRINCIPALS),
			       -1;
		if (kc_sshbuf_cstring(&in, KC_SSHCERT_MAX_PRINCIPAL, &c->principals[c->n_principals]) < 0)
			return bad(err, "a principal");
		c->n_principals++;
	}
	return 0;
}

/* Critical options or extensions: a string holding (name, data) pairs. */
static int read_options(struct kc_sshbuf *b, struct kc_sshcert_option **opts, size_t *n, const char *what,
			struct kc_err *err)
{
	const unsigned char *p;
	size_t len;
	struct kc_sshbuf in;

	if (kc_sshbuf_string(b, &p, &len) < 0)
		return bad(err, what);
	kc_sshbuf_init(&in, p, len);
	while (in.len > 0) {
		struct kc_sshcert_option *o;

		if (*n == KC_SSHCERT_MAX_OPTIONS)
			return kc_seterr(err, "the certificate has more than %d %s", KC_SSHCERT_MAX_OPTIONS, what), -1;
		o = realloc(*opts, (*n + 1) * sizeof(**opts));
		if (!o)
			return kc_seterr(err, "out of memory"), -1;
		*opts = o;
		o = &o[*n];
		memset(o, 0, sizeof(*o));
		if (kc_sshbuf_cstring(&in, KC_SSHCERT_MAX_OPTION_NAME, &o->name) < 0)
			return bad(err, what);
		(*n)++;
		if (kc_sshbuf_string(&in, &o->data, &o->len) < 0)
			return bad(err, what);
	}
	return 0;
}

/* sshd refuses a certificate naming a critical option twice (auth-options.c). */
static int unique_names(const struct kc_sshcert_option *o, size_t n, struct kc_err *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(o[i].name, o[j].name) == 0)
				return kc_seterr(err, "the certificate names critical option %.64s twice", o[i].name),
				       -1;
	return 0;
}

/* The signature key and the signature: what was signed ends where the signature begins. */
static int read_signature(struct kc_sshbuf *b, struct kc_sshcert *c, struct kc_err *err)
{
	struct kc_err e;
	int rc;

	if (kc_sshbuf_string(b, &c->ca_key, &c->ca_key_len) < 0)
		return bad(err, "its signature key");
	c->signed_len = c->blob_len - b->len;
	if (kc_sshbuf_string(b, &c->signature, &c->signature_len) < 0)
		return bad(err, "its signature");
	if (b->len != 0)
		return kc_seterr(err, "the certificate has %zu bytes after its signature", b->len), -1;
	rc = kc_sshkey_parse(c->ca_key, c->ca_key_len, &c->ca, &e);
	if (rc != 0)
		kc_seterr(err, "its CA key: %s", e.msg);
	return rc;
}

static int read_body(struct kc_sshbuf *b, struct kc_sshcert *c, struct kc_err *err)
{
	const unsigned char *reserved;
	size_t reserved_len;

	if (kc_sshbuf_u64(b, &c->serial) < 0 || kc_sshbuf_u32(b, &c->cert_type) < 0)
		return bad(err, "its serial or type");
	if (c->cert_type != KC_SSHCERT_TYPE_USER && c->cert_type != KC_SSHCERT_TYPE_HOST)
		return kc_seterr(err, "the certificate's type %u is neither user (1) nor host (2)", c->cert_type), -1;
	if (kc_sshbuf_cstring(b, KC_SSHCERT_MAX_KEY_ID, &c->key_id) < 0)
		return bad(err, "its key id");
	if (read_principals(b, c, err) < 0)
		return -1;
	if (kc_sshbuf_u64(b, &c->valid_after) < 0 || kc_sshbuf_u64(b, &c->valid_before) < 0)
		return bad(err, "its validity");
	if (read_options(b, &c->critical, &c->n_critical, "critical options", err) < 0 ||
	    unique_names(c->critical, c->n_critical, err) < 0 ||
	    read_options(b, &c->extensions, &c->n_extensions, "extensions", err) < 0)
		return -1;
	if (kc_sshbuf_string(b, &reserved, &reserved_len) < 0)
		return bad(err, "its reserved field");
	return read_signature(b, c, err);
}

int kc_sshcert_parse(const unsigned char *blob, size_t len, struct kc_sshcert **out, struct kc_err *err)
{
	struct kc_sshcert *c;
	struct kc_sshbuf b;
	int rc;

	*out = NULL;
	if (len > KC_SSHCERT_MAX)
		return kc_seterr(err, "the certificate is %zu bytes, more than the %u allowed", len, KC_SSHCERT_MAX),
		       -1;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->blob = malloc(len ? len : 1))) {
		free(c);
		return kc_seterr(err, "out of memory"), -1;
	}
	/* Our own copy: every pointer of the result points into it. */
	memcpy(c->blob, blob, len);
	c->blob_len = len;
	kc_sshbuf_init(&b, c->blob, len);
	rc = read_head(&b, c, err);
	if (rc == 0)
		rc = read_body(&b, c, err);
	if (rc != 0) {
		kc_sshcert_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int kc_sshcert_verify_signature(const struct kc_sshcert *cert, struct kc_err *why)
{
	return kc_sshkey_verify(&cert->ca, cert->signature, cert->signature_len, cert->blob, cert->signed_len, why);
}

void kc_sshcert_ca_fingerprint(const struct kc_sshcert *cert, char out[KC_SSHKEY_FP_LEN])
{
	kc_sshkey_fingerprint(cert->ca_key, cert->ca_key_len, out);
}

/* The certified key as a plain key blob: its plain type name, then its fields. */
void kc_sshcert_key_fingerprint(const struct kc_sshcert *cert, char out[KC_SSHKEY_FP_LEN])
{
	const char *name = kc_sshkey_alg_name(cert->key.alg);
	size_t nl = strlen(name);
	unsigned char len[4] = { (unsigned char)(nl >> 24), (unsigned char)(nl >> 16), (unsigned char)(nl >> 8),
				 (unsigned char)nl };
	struct kc_buf blob = { 0 };

	if (kc_buf_append(&blob, len, 4) < 0 || kc_buf_append(&blob, name, nl) < 0 ||
	    kc_buf_append(&blob, cert->key_fields, cert->key_fields_len) < 0)
		snprintf(out, KC_SSHKEY_FP_LEN, "SHA256:?");
	else
		kc_sshkey_fingerprint((const unsigned char *)blob.data, blob.len, out);
	kc_buf_free(&blob);
}

/* ---- SSH_AUTH_INFO_0 ------------------------------------------------------- */

void kc_sshcert_blobs_free(struct kc_sshcert_blob *blobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(blobs[i].data);
	free(blobs);
}

/* The word of line that starts at *pos (words are separated by one space, as
 * sshd writes them); *pos moves past it and its space. */
static const char *word(const char *line, size_t len, size_t *pos, size_t *wlen)
{
	const char *w = line + *pos;
	const char *sp = memchr(w, ' ', len - *pos);

	*wlen = sp ? (size_t)(sp - w) : len - *pos;
	*pos += *wlen + (sp ? 1 : 0);
	return w;
}

static int authinfo_cert(const char *type, size_t tlen, const char *b64, size_t blen, unsigned lineno,
			 struct kc_sshcert_blob *out, struct kc_err *err)
{
	struct kc_sshbuf b;
	const unsigned char *name;
	size_t nlen;

	if (blen > (KC_SSHCERT_MAX + 2) / 3 * 4)
		return kc_seterr(err, "SSH_AUTH_INFO_0 line %u: the certificate is larger than the %u bytes allowed",
				 lineno, KC_SSHCERT_MAX),
		       -1;
	if (kc_ssh_base64_decode(b64, blen, &out->data, &out->len) < 0)
		return kc_seterr(err, "SSH_AUTH_INFO_0 line %u: the certificate is not valid base64", lineno), -1;
	kc_sshbuf_init(&b, out->data, out->len);
	if (kc_sshbuf_string(&b, &name, &nlen) < 0 || nlen != tlen || memcmp(name, type, tlen) != 0) {
		free(out->data);
		out->data = NULL;
		return kc_seterr(err, "SSH_AUTH_INFO_0 line %u: the certificate is not of the type the line names",
				 lineno),
		       -1;
	}
	return 0;
}

static int authinfo_line(const char *line, size_t len, unsigned lineno, struct kc_sshcert_blob *blobs, size_t *n,
			 struct kc_err *err)
{
	size_t pos = 0, mlen, tlen, blen;
	const char *method = word(line, len, &pos, &mlen);
	const char *type, *b64;

	if (mlen != 9 || memcmp(method, "publickey", 9) != 0 || pos >= len)
		return 0;
	type = word(line, len, &pos, &tlen);
	if (!kc_sshcert_type_name(type, tlen))
		return 0; /* a plain key */
	b64 = word(line, len, &pos, &blen); /* what follows it is sshd's note, e.g. "signature count = 4" */
	if (*n == KC_SSHCERT_AUTHINFO_CERTS)
		return kc_seterr(err, "SSH_AUTH_INFO_0 names more than %d certificates", KC_SSHCERT_AUTHINFO_CERTS), -1;
	if (authinfo_cert(type, tlen, b64, blen, lineno, &blobs[*n], err) < 0)
		return -1;
	(*n)++;
	return 0;
}

int kc_sshcert_authinfo(const char *text, size_t len, struct kc_sshcert_blob **blobs, size_t *n, struct kc_err *err)
{
	struct kc_sshcert_blob *found;
	unsigned lineno = 0;

	*blobs = NULL;
	*n = 0;
	if (len > KC_SSHCERT_AUTHINFO_MAX)
		return kc_seterr(err, "SSH_AUTH_INFO_0 is %zu bytes, more than the %u allowed", len,
				 KC_SSHCERT_AUTHINFO_MAX),
		       -1;
	if (memchr(text, '\0', len))
		return kc_seterr(err, "SSH_AUTH_INFO_0 holds a NUL byte; sshd never writes one"), -1;
	found = calloc(KC_SSHCERT_AUTHINFO_CERTS, sizeof(*found));
	if (!found)
		return kc_seterr(err, "out of memory"), -1;
	for (size_t pos = 0; pos < len;) {
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t ll = eol ? (size_t)(eol - (text + pos)) : len - pos;

		if (authinfo_line(text + pos, ll, ++lineno, found, n, err) < 0) {
			kc_sshcert_blobs_free(found, *n);
			*n = 0;
			return -1;
		}
		pos += ll + 1;
	}
	if (*n == 0) {
		free(found);
		found = NULL;
	}
	*blobs = found;
	return 0;
}

/* OpenSSH public keys (see config/sshkey.h): the reader, key blobs after
 * OpenSSH's sshkey.c and sshbuf-getput-*.c, signatures after ssh-ed25519.c,
 * ssh-ecdsa.c and ssh-rsa.c, checked with OpenSSL 3's EVP interface. */
#include "config/sshkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#define ED25519_PK_LEN 32
#define ED25519_SIG_LEN 64
/* OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE (RequiredRSASize's default) and OpenSSL's maximum. */
#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 16384

static const struct alg_info {
	enum kc_sshkey_alg alg;
	const char *name, *label;
	const char *curve; /* ECDSA: the curve field, OpenSSL's group, the point's size */
	const char *group;
	size_t point_len;
} algs[] = {
	{ KC_SSHKEY_ED25519, "ssh-ed25519", "ED25519", NULL, NULL, ED25519_PK_LEN },
	{ KC_SSHKEY_P256, "ecdsa-sha2-nistp256", "ECDSA", "nistp256", "P-256", 65 },
	{ KC_SSHKEY_P384, "ecdsa-sha2-nistp384", "ECDSA", "nistp384", "P-384", 97 },
	{ KC_SSHKEY_P521, "ecdsa-sha2-nistp521", "ECDSA", "nistp521", "P-521", 133 },
	{ KC_SSHKEY_RSA, "ssh-rsa", "RSA", NULL, NULL, 0 },
};

static const struct alg_info *alg_info(enum kc_sshkey_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return &algs[i];
	return NULL;
}

const char *kc_sshkey_alg_name(enum kc_sshkey_alg alg)
{
	const struct alg_info *a = alg_info(alg);

	return a ? a->name : "unknown";
}

const char *kc_sshkey_alg_label(enum kc_sshkey_alg alg)
{
	const struct alg_info *a = alg_info(alg);

	return a ? a->label : "UNKNOWN";
}

enum kc_sshkey_alg kc_sshkey_alg_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].alg;
	return KC_SSHKEY_NONE;
}

bool kc_sshkey_name_unsupported(const char *name)
{
	return strcmp(name, "ssh-dss") == 0 || strcmp(name, "sk-ssh-ed25519@openssh.com") == 0 ||
	       strcmp(name, "sk-ecdsa-sha2-nistp256@openssh.com") == 0;
}

/* ---- the reader ------------------------------------------------------------ */

static void take(struct kc_sshbuf *b, size_t n)
{
	b->p += n;
	b->len -= n;
}

int kc_sshbuf_u32(struct kc_sshbuf *b, uint32_t *v)
{
	if (b->len < 4)
		return -1;
	*v = (uint32_t)b->p[0] << 24 | (uint32_t)b->p[1] << 16 | (uint32_t)b->p[2] << 8 | b->p[3];
	take(b, 4);
	return 0;
}

int kc_sshbuf_u64(struct kc_sshbuf *b, uint64_t *v)
{
	uint32_t hi, lo;

	if (b->len < 8)
		return -1;
	kc_sshbuf_u32(b, &hi);
	kc_sshbuf_u32(b, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

int kc_sshbuf_string(struct kc_sshbuf *b, const unsigned char **p, size_t *len)
{
	struct kc_sshbuf r = *b;
	uint32_t n;

	if (kc_sshbuf_u32(&r, &n) < 0 || n > r.len)
		return -1;
	*p = r.p;
	*len = n;
	take(&r, n);
	*b = r;
	return 0;
}

int kc_sshbuf_cstring(struct kc_sshbuf *b, size_t max, char **out)
{
	struct kc_sshbuf r = *b;
	const unsigned char *p;
	size_t n;

	if (kc_sshbuf_string(&r, &p, &n) < 0 || n > max || memchr(p, '\0', n))
		return -1;
	*out = malloc(n + 1);
	if (!*out)
		return -1;
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	*b = r;
	return 0;
}

int kc_sshbuf_name(struct kc_sshbuf *b, char *out, size_t size)
{
	struct kc_sshbuf r = *b;
	const unsigned char *p;
	size_t n;

	if (kc_sshbuf_string(&r, &p, &n) < 0 || n >= size || memchr(p, '\0', n))
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	*b = r;
	return 0;
}

int kc_sshbuf_mpint(struct kc_sshbuf *b, const unsigned char **p, size_t *len)
{
	struct kc_sshbuf r = *b;
	const unsigned char *d;
	size_t n;

	if (kc_sshbuf_string(&r, &d, &n) < 0)
		return -1;
	if (n > 0 && (d[0] & 0x80))
		return -1; /* negative */
	if (n > KC_SSHKEY_MAX_BIGNUM + 1 || (n == KC_SSHKEY_MAX_BIGNUM + 1 && d[0] != 0))
		return -1;
	while (n > 0 && d[0] == 0) {
		d++;
		n--;
	}
	*p = d;
	*len = n;
	*b = r;
	return 0;
}

/* ---- key blobs ------------------------------------------------------------- */

/* The bit length of a big-endian number whose first byte is not zero (an mpint as read). */
static size_t bits_of(const unsigned char *p, size_t len)
{
	size_t bits = len * 8;

	if (len == 0)
		return 0;
	for (unsigned top = p[0]; top && !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

static int read_ecdsa(struct kc_sshbuf *b, const struct alg_info *a, struct kc_sshkey *key, struct kc_err *err)
{
	char curve[16];

	if (kc_sshbuf_name(b, curve, sizeof(curve)) < 0 || strcmp(curve, a->curve) != 0)
		return kc_seterr(err, "the %s key's curve field is not %s", a->name, a->curve), -1;
	/* OpenSSH reads only uncompressed points (0x04 || x || y). */
	if (kc_sshbuf_string(b, &key->pk, &key->pk_len) < 0 || key->pk_len != a->point_len || key->pk[0] != 0x04)
		return kc_seterr(err, "the %s key's point is not an uncompressed point of %s", a->name, a->curve), -1;
	return 0;
}

static int read_rsa(struct kc_sshbuf *b, struct kc_sshkey *key, struct kc_err *err)
{
	size_t bits;

	if (kc_sshbuf_mpint(b, &key->e, &key->e_len) < 0 || kc_sshbuf_mpint(b, &key->n, &key->n_len) < 0)
		return kc_seterr(err, "the ssh-rsa key's exponent or modulus is malformed"), -1;
	bits = bits_of(key->n, key->n_len);
	if (key->e_len == 0 || bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
		return kc_seterr(err, "the ssh-rsa key has %zu bits; OpenSSH accepts %d to %d", bits, RSA_MIN_BITS,
				 RSA_MAX_BITS),
		       -1;
	return 0;
}

int kc_sshkey_read_fields(struct kc_sshbuf *b, enum kc_sshkey_alg alg, struct kc_sshkey *key, struct kc_err *err)
{
	const struct alg_info *a = alg_info(alg);

	memset(key, 0, sizeof(*key));
	key->alg = alg;
	if (!a)
		return kc_seterr(err, "not a key type we read"), -1;
	if (alg == KC_SSHKEY_RSA)
		return read_rsa(b, key, err);
	if (alg != KC_SSHKEY_ED25519)
		return read_ecdsa(b, a, key, err);
	if (kc_sshbuf_string(b, &key->pk, &key->pk_len) < 0 || key->pk_len != ED25519_PK_LEN)
		return kc_seterr(err, "the ssh-ed25519 key is not %d bytes", ED25519_PK_LEN), -1;
	return 0;
}

int kc_sshkey_parse(const unsigned char *blob, size_t len, struct kc_sshkey *key, struct kc_err *err)
{
	struct kc_sshbuf b;
	char name[64];
	enum kc_sshkey_alg alg;

	kc_sshbuf_init(&b, blob, len);
	if (kc_sshbuf_name(&b, name, sizeof(name)) < 0)
		return kc_seterr(err, "the key blob does not begin with a key type"), -1;
	alg = kc_sshkey_alg_from_name(name);
	if (alg == KC_SSHKEY_NONE) {
		if (kc_sshkey_name_unsupported(name))
			return kc_seterr(err, "%s keys are not supported", name), 1;
		return kc_seterr(err, "'%.64s' is not a plain OpenSSH public key type", name), -1;
	}
	if (kc_sshkey_read_fields(&b, alg, key, err) < 0)
		return -1;
	if (b.len != 0)
		return kc_seterr(err, "the %s key blob has %zu bytes after its end", name, b.len), -1;
	return 0;
}

/* ---- signatures ------------------------------------------------------------ */

static EVP_PKEY *ecdsa_pkey(const struct kc_sshkey *key, const struct alg_info *a)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)a->group, 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)key->pk, key->pk_len),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	if (pkey) {
		/* The point decoded; is it on the curve and of the group's order, as OpenSSH checks? */
		EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

		if (!check || EVP_PKEY_public_check(check) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		EVP_PKEY_CTX_free(check);
	}
	return pkey;
}

static EVP_PKEY *rsa_pkey(const struct kc_sshkey *key)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_bin2bn(key->n, (int)key->n_len, NULL);
	BIGNUM *e = BN_bin2bn(key->e, (int)key->e_len, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (!bld || !n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) || !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *key_pkey(const struct kc_sshkey *key)
{
	const struct alg_info *a = alg_info(key->alg);

	if (!a)
		return NULL;
	if (key->alg == KC_SSHKEY_ED25519)
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->pk, key->pk_len);
	if (key->alg == KC_SSHKEY_RSA)
		return rsa_pkey(key);
	return ecdsa_pkey(key, a);
}

int kc_sshkey_usable(const struct kc_sshkey *key, struct kc_err *err)
{
	EVP_PKEY *pkey = key_pkey(key);

	ERR_clear_error();
	if (!pkey)
		return kc_seterr(err, "OpenSSL refuses the %s key (not a valid point or modulus)",
				 kc_sshkey_alg_name(key->alg)),
		       -1;
	EVP_PKEY_free(pkey);
	return 0;
}

/* 1 when sig verifies over data; md NULL for Ed25519, which hashes itself. */
static int digest_verify(EVP_PKEY *pkey, const EVP_MD *md, const unsigned char *sig, size_t sig_len,
			 const unsigned char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
		 EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;

	EVP_MD_CTX_free(ctx);
	return ok;
}

/* OpenSSH's ECDSA signature is two mpints; OpenSSL wants them as DER. */
static unsigned char *ecdsa_der(const unsigned char *blob, size_t blob_len, size_t *der_len)
{
	struct kc_sshbuf b;
	const unsigned char *r, *s;
	size_t rl, sl;
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL, *p;
	int n;

	kc_sshbuf_init(&b, blob, blob_len);
	if (kc_sshbuf_mpint(&b, &r, &rl) < 0 || kc_sshbuf_mpint(&b, &s, &sl) < 0 || b.len != 0)
		return NULL;
	sig = ECDSA_SIG_new();
	br = BN_bin2bn(r, (int)rl, NULL);
	bs = BN_bin2bn(s, (int)sl, NULL);
	if (!sig || !br || !bs || !ECDSA_SIG_set0(sig, br, bs))
		goto out;
	br = bs = NULL; /* the signature owns them */
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || !(der = malloc((size_t)n)))
		goto out;
	p = der;
	if (i2d_ECDSA_SIG(sig, &p) != n) {
		free(der);
		der = NULL;
		goto out;
	}
	*der_len = (size_t)n;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return der;
}

/* RSA: OpenSSH allows a signature shorter than the modulus (leading zeros dropped). */
static int verify_rsa(EVP_PKEY *pkey, const char *sig_name, const unsigned char *s, size_t sl,
		      const unsigned char *data, size_t len, struct kc_err *why)
{
	const EVP_MD *md;
	size_t mod = (size_t)EVP_PKEY_get_size(pkey);
	unsigned char *padded;
	int ok;

	if (strcmp(sig_name, "rsa-sha2-256") == 0)
		md = EVP_sha256();
	else if (strcmp(sig_name, "rsa-sha2-512") == 0)
		md = EVP_sha512();
	else if (strcmp(sig_name, "ssh-rsa") == 0)
		return kc_seterr(why, "it is signed with SHA-1 (ssh-rsa), which OpenSSH no longer accepts from a "
				      "CA; sign with -t rsa-sha2-512"),
		       1;
	else
		return kc_seterr(why, "its signature is %.64s, not one an RSA CA makes", sig_name), 1;
	if (sl == 0 || sl > mod)
		return kc_seterr(why, "its RSA signature is not the size of the CA's modulus"), 1;
	padded = calloc(1, mod);
	if (!padded)
		return kc_seterr(why, "out of memory"), -1;
	memcpy(padded + (mod - sl), s, sl);
	ok = digest_verify(pkey, md, padded, mod, data, len);
	free(padded);
	return ok ? 0 : (kc_seterr(why, "its %s signature does not verify", sig_name), 1);
}

/* RFC 5656 6.2.1: the curve's size picks the hash. */
static const EVP_MD *ecdsa_md(enum kc_sshkey_alg alg)
{
	switch (alg) {
	case KC_SSHKEY_P256: return EVP_sha256();
	case KC_SSHKEY_P384: return EVP_sha384();
	default: return EVP_sha512();
	}
}

static int verify_with(EVP_PKEY *pkey, const struct kc_sshkey *key, const char *sig_name, const unsigned char *s,
		       size_t sl, const unsigned char *data, size_t len, struct kc_err *why)
{
	unsigned char *der;
	size_t der_len = 0;
	int ok;

	if (key->alg == KC_SSHKEY_RSA)
		return verify_rsa(pkey, sig_name, s, sl, data, len, why);
	if (strcmp(sig_name, kc_sshkey_alg_name(key->alg)) != 0)
		return kc_seterr(why, "its signature is %.64s but the CA key is %s", sig_name,
				 kc_sshkey_alg_name(key->alg)),
		       1;
	if (key->alg == KC_SSHKEY_ED25519) {
		if (sl != ED25519_SIG_LEN)
			return kc_seterr(why, "its ssh-ed25519 signature is not %d bytes", ED25519_SIG_LEN), 1;
		ok = digest_verify(pkey, NULL, s, sl, data, len);
	} else {
		if (!(der = ecdsa_der(s, sl, &der_len)))
			return kc_seterr(why, "its ECDSA signature is malformed"), 1;
		ok = digest_verify(pkey, ecdsa_md(key->alg), der, der_len, data, len);
		free(der);
	}
	return ok ? 0 : (kc_seterr(why, "its %s signature does not verify", sig_name), 1);
}

int kc_sshkey_verify(const struct kc_sshkey *key, const unsigned char *sig, size_t sig_len, const unsigned char *data,
		     size_t len, struct kc_err *why)
{
	struct kc_sshbuf b;
	char name[64];
	const unsigned char *s;
	size_t sl;
	EVP_PKEY *pkey;
	int rc;

	kc_sshbuf_init(&b, sig, sig_len);
	if (kc_sshbuf_name(&b, name, sizeof(name)) < 0 || kc_sshbuf_string(&b, &s, &sl) < 0 || b.len != 0)
		return kc_seterr(why, "its signature is malformed"), 1;
	pkey = key_pkey(key);
	if (!pkey) {
		ERR_clear_error();
		/* Keys come through kc_sshkey_parse: what OpenSSL refuses here is an invalid point. */
		return kc_seterr(why, "OpenSSL refuses the %s CA key", kc_sshkey_alg_name(key->alg)), 1;
	}
	rc = verify_with(pkey, key, name, s, sl, data, len, why);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc;
}

/* ---- fingerprints and base64 ----------------------------------------------- */

void kc_sshkey_fingerprint(const unsigned char *blob, size_t len, char out[KC_SSHKEY_FP_LEN])
{
	unsigned char md[32];
	char *b64 = NULL;

	snprintf(out, KC_SSHKEY_FP_LEN, "SHA256:?");
	if (EVP_Digest(blob, len, md, NULL, EVP_sha256(), NULL) != 1 ||
	    !(b64 = kc_base64_encode(md, sizeof(md), false)))
		return;
	b64[strcspn(b64, "=")] = '\0'; /* ssh-keygen prints it unpadded */
	snprintf(out, KC_SSHKEY_FP_LEN, "SHA256:%s", b64);
	free(b64);
}

int kc_ssh_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *o;
	size_t n = 0;

	if (len == 0 || len % 4 != 0)
		return -1;
	o = malloc(len / 4 * 3);
	if (!o)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = last ? (in[i + 3] == '=') + (in[i + 3] == '=' && in[i + 2] == '=') : 0;
		int v[4] = { 0, 0, 0, 0 };

		for (int k = 0; k < 4 - pad; k++)
			if ((v[k] = kc_base64_digit((unsigned char)in[i + k])) < 0)
				goto fail;
		/* Padding only at the end, and no bits beyond the last byte (RFC 4648 3.5). */
		if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
			goto fail;
		o[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			o[n++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			o[n++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	*out = o;
	*outlen = n;
	return 0;
fail:
	free(o);
	return -1;
}

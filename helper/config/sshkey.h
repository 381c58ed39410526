/* OpenSSH public keys as sshd writes them (RFC 4251 wire format): a bounded
 * reader, CA key blobs, their SHA256 fingerprints and signatures checked with
 * OpenSSL. What a certificate is made of; sshcert.h builds on it. */
#ifndef KC_CONFIG_SSHKEY_H
#define KC_CONFIG_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* A bignum of at most 16384 bits, as OpenSSH's SSHBUF_MAX_BIGNUM. */
#define KC_SSHKEY_MAX_BIGNUM (16384 / 8)
/* "SHA256:" + 43 characters of unpadded base64, and the NUL. */
#define KC_SSHKEY_FP_LEN 64

/* The key algorithms we verify; KC_SSHKEY_NONE also stands for the ones we do
 * not (ssh-dss, the FIDO sk-* types). */
enum kc_sshkey_alg {
	KC_SSHKEY_NONE,
	KC_SSHKEY_ED25519,
	KC_SSHKEY_P256,
	KC_SSHKEY_P384,
	KC_SSHKEY_P521,
	KC_SSHKEY_RSA,
};

/* A reader over bytes someone else sent: every read checks what is left, a
 * failed read leaves the reader where it was. */
struct kc_sshbuf {
	const unsigned char *p;
	size_t len; /* bytes left */
};

static inline void kc_sshbuf_init(struct kc_sshbuf *b, const void *p, size_t len)
{
	b->p = p;
	b->len = len;
}

/* Each returns 0, or -1 when the bytes are too few or the value breaks its rule. */
int kc_sshbuf_u32(struct kc_sshbuf *b, uint32_t *v);
int kc_sshbuf_u64(struct kc_sshbuf *b, uint64_t *v);
/* A string: *p points into the buffer. */
int kc_sshbuf_string(struct kc_sshbuf *b, const unsigned char **p, size_t *len);
/* A string that must hold no NUL and at most max bytes, copied into *out
 * (malloc'd, NUL-terminated; the caller frees it). */
int kc_sshbuf_cstring(struct kc_sshbuf *b, size_t max, char **out);
/* The same into a caller's buffer of size bytes (a type name). */
int kc_sshbuf_name(struct kc_sshbuf *b, char *out, size_t size);
/* An mpint as OpenSSH reads one: not negative, at most KC_SSHKEY_MAX_BIGNUM
 * bytes (one more for a leading zero), leading zeros dropped. */
int kc_sshbuf_mpint(struct kc_sshbuf *b, const unsigned char **p, size_t *len);

/* A public key; the pointers point into the blob it was read from. */
struct kc_sshkey {
	enum kc_sshkey_alg alg;
	const unsigned char *pk; /* Ed25519: 32 bytes; ECDSA: the uncompressed point */
	size_t pk_len;
	const unsigned char *e, *n; /* RSA */
	size_t e_len, n_len;
};

/* The plain type name ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"). */
const char *kc_sshkey_alg_name(enum kc_sshkey_alg alg);
/* "ED25519", "ECDSA", "RSA", as ssh-keygen -l prints them. */
const char *kc_sshkey_alg_label(enum kc_sshkey_alg alg);
/* The algorithm a plain type name names, KC_SSHKEY_NONE for any other. */
enum kc_sshkey_alg kc_sshkey_alg_from_name(const char *name);
/* ssh-dss and the FIDO types: real OpenSSH keys we never verify. */
bool kc_sshkey_name_unsupported(const char *name);

/* Reads the fields of an alg key that follow its type name (and, in a
 * certificate, its nonce). 0, or -1 with err naming the field. */
int kc_sshkey_read_fields(struct kc_sshbuf *b, enum kc_sshkey_alg alg, struct kc_sshkey *key, struct kc_err *err);
/* A whole plain public key blob (a CA key): 0; 1 for a real type we do not
 * support (err says which); -1 for anything malformed (err says what). */
int kc_sshkey_parse(const unsigned char *blob, size_t len, struct kc_sshkey *key, struct kc_err *err);

/* Whether OpenSSL takes the key (an ECDSA point on its curve, an RSA modulus
 * it can use): 0, or -1 with err saying so. For a CA key file, at load. */
int kc_sshkey_usable(const struct kc_sshkey *key, struct kc_err *err);

/* Checks sig (an SSH signature blob: algorithm name and signature) over data
 * with key. RSA keys count only rsa-sha2-256 and rsa-sha2-512 signatures, as
 * OpenSSH's default CASignatureAlgorithms; the signature's algorithm must be
 * the key's. Returns 0 when it verifies, 1 when it does not or OpenSSL
 * refuses the key (why says how), -1 when memory ran out. */
int kc_sshkey_verify(const struct kc_sshkey *key, const unsigned char *sig, size_t sig_len, const unsigned char *data,
		     size_t len, struct kc_err *why);

/* "SHA256:..." of a key blob, as ssh-keygen -l prints it. */
void kc_sshkey_fingerprint(const unsigned char *blob, size_t len, char out[KC_SSHKEY_FP_LEN]);

/* Standard base64 read strictly: padded to a multiple of four, no whitespace,
 * no bits left over. 0, or -1 for anything else. The caller frees *out. */
int kc_ssh_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif

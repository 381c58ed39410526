/* OpenSSH certificates (PROTOCOL.certkeys) read by a small parser of ours, and
 * the certificates sshd names in SSH_AUTH_INFO_0. A parsed certificate is a
 * claim until kc_sshcert_check() (config/sshcert_check.h) has judged it. */
#ifndef KC_CONFIG_SSHCERT_H
#define KC_CONFIG_SSHCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "config/sshkey.h"

/* Limits on what a certificate may hold; a certificate past one is refused. */
#define KC_SSHCERT_MAX (64u << 10) /* the whole blob */
#define KC_SSHCERT_MAX_PRINCIPALS 256 /* OpenSSH's SSHKEY_CERT_MAX_PRINCIPALS */
#define KC_SSHCERT_MAX_PRINCIPAL 1024 /* bytes in one principal */
#define KC_SSHCERT_MAX_KEY_ID 4096
#define KC_SSHCERT_MAX_OPTIONS 64 /* critical options, and extensions, each */
#define KC_SSHCERT_MAX_OPTION_NAME 256
/* SSH_AUTH_INFO_0: its size, and the certificates it may name. */
#define KC_SSHCERT_AUTHINFO_MAX (256u << 10)
#define KC_SSHCERT_AUTHINFO_CERTS 8

/* What kc_sshcert_parse() returns besides 0 and -1: a real certificate type
 * we never accept (ssh-dss, the FIDO sk-* types, or a CA key of those). */
#define KC_SSHCERT_UNSUPPORTED 1

#define KC_SSHCERT_TYPE_USER 1
#define KC_SSHCERT_TYPE_HOST 2

struct kc_sshcert_option {
	char *name;
	const unsigned char *data; /* into the certificate's blob */
	size_t len;
};

/* A certificate's fields but its nonce. Byte ranges point into blob, which the
 * certificate owns; free it with kc_sshcert_free(). */
struct kc_sshcert {
	unsigned char *blob;
	size_t blob_len;
	const char *type; /* "ssh-ed25519-cert-v01@openssh.com" (static) */
	struct kc_sshkey key; /* the certified key */
	const unsigned char *key_fields; /* its fields after the nonce, for its fingerprint */
	size_t key_fields_len;
	uint64_t serial;
	uint32_t cert_type; /* KC_SSHCERT_TYPE_USER or _HOST */
	char *key_id;
	char **principals;
	size_t n_principals;
	uint64_t valid_after, valid_before; /* valid_after <= now < valid_before; UINT64_MAX: forever */
	struct kc_sshcert_option *critical;
	size_t n_critical;
	struct kc_sshcert_option *extensions;
	size_t n_extensions;
	const unsigned char *ca_key; /* the signature key: a plain public key blob */
	size_t ca_key_len;
	struct kc_sshkey ca; /* the same, read */
	const unsigned char *signature;
	size_t signature_len;
	size_t signed_len; /* the CA signed blob[0, signed_len): everything before the signature */
};

/* Reads a certificate blob (the binary one, not base64). 0 and *out set
 * (caller frees with kc_sshcert_free()); KC_SSHCERT_UNSUPPORTED or -1 with err
 * saying why, *out NULL. Checks the format and the limits above, not the
 * signature nor anything the certificate says. */
int kc_sshcert_parse(const unsigned char *blob, size_t len, struct kc_sshcert **out, struct kc_err *err);
void kc_sshcert_free(struct kc_sshcert *cert);

/* Checks the signature with the certificate's own CA key: whether that key is
 * a trusted one is kc_sshcert_check()'s question. 0 verifies, 1 does not, -1
 * failed (why set in both). */
int kc_sshcert_verify_signature(const struct kc_sshcert *cert, struct kc_err *why);

/* The fingerprints ssh-keygen -L prints: of the certified key, of the CA. */
void kc_sshcert_key_fingerprint(const struct kc_sshcert *cert, char out[KC_SSHKEY_FP_LEN]);
void kc_sshcert_ca_fingerprint(const struct kc_sshcert *cert, char out[KC_SSHKEY_FP_LEN]);

/* Is name an OpenSSH certificate type ("...-cert-v01@openssh.com")? */
bool kc_sshcert_type_name(const char *name, size_t len);

/* One certificate blob as SSH_AUTH_INFO_0 carries it, decoded. */
struct kc_sshcert_blob {
	unsigned char *data;
	size_t len;
};

/* The certificates of SSH_AUTH_INFO_0 (sshd's expose_authinfo: one accepted
 * method a line, "publickey TYPE BASE64[ INFO]" for a key), in order: every
 * "publickey" line whose TYPE is a certificate type. Other methods and plain
 * keys are skipped. A certificate line that is not what sshd writes (bad
 * base64, a blob of another type, too large, too many) makes the whole value
 * suspect: -1, err naming the line. 0 with *blobs (NULL when *n is 0); the
 * caller frees them with kc_sshcert_blobs_free(). */
int kc_sshcert_authinfo(const char *text, size_t len, struct kc_sshcert_blob **blobs, size_t *n, struct kc_err *err);
void kc_sshcert_blobs_free(struct kc_sshcert_blob *blobs, size_t n);

#endif

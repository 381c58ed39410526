/* Whether an OpenSSH certificate vouches for a Unix user here: signed by a CA
 * of trusted_ca_keys, in its validity window, a user certificate with no
 * critical option sshd would refuse, and a principal the user may act as
 * (their own name, or one their authorized principals file lists). The file
 * of CA keys and the principals files are root-owned files, read here. */
#ifndef KC_CONFIG_SSHCERT_CHECK_H
#define KC_CONFIG_SSHCERT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/util.h"
#include "config/sshcert.h"

#define KC_SSHCERT_CA_FILE_MAX (1u << 20) /* trusted_ca_keys, and a principals file */
#define KC_SSHCERT_MAX_CAS 1024

/* One trusted CA public key: a plain key blob, and where the file named it. */
struct kc_sshcert_ca {
	unsigned char *blob;
	size_t len;
	unsigned line;
};

struct kc_sshcert_cas {
	struct kc_sshcert_ca *keys;
	size_t n;
};

/* Reads text in sshd's TrustedUserCAKeys format: one "TYPE BASE64 [COMMENT]"
 * a line, blank lines and '#' comments, a leading "cert-authority " tolerated
 * (as in authorized_keys). A key of a type we never verify (ssh-dss, sk-*) is
 * skipped with a "PATH:LINE: warning: ..." line appended to warnings (may be
 * NULL); anything else unreadable is an error "PATH:LINE: what; what to do".
 * path names the text in messages. 0 and cas filled (free with
 * kc_sshcert_cas_free()), or -1 with err set and cas empty. */
int kc_sshcert_cas_parse(const char *path, const char *text, size_t len, struct kc_sshcert_cas *cas,
			 struct kc_buf *warnings, struct kc_err *err);
/* The same from the file: root-owned, not group/world-writable, no symlink. */
int kc_sshcert_cas_load(const char *path, struct kc_sshcert_cas *cas, struct kc_buf *warnings, struct kc_err *err);
void kc_sshcert_cas_free(struct kc_sshcert_cas *cas);
/* Is blob one of the trusted keys (byte for byte)? The entry, or NULL. */
const struct kc_sshcert_ca *kc_sshcert_cas_find(const struct kc_sshcert_cas *cas, const unsigned char *blob,
						size_t len);

/* authorized_principals_file: an absolute path in which "%u" is the user and
 * "%%" a '%'; no other '%' sequence (sshd's %h, %U, ... are not supported).
 * 0, or -1 with err saying what to write. */
int kc_sshcert_principals_template_check(const char *tmpl, struct kc_err *err);
/* The template expanded for user into out. -1 (err set) when it does not fit
 * or user could leave the directory ('/' in it, "." or ".."). */
int kc_sshcert_principals_path(const char *tmpl, const char *user, char *out, size_t len, struct kc_err *err);

/* What the check needs besides the certificate. */
struct kc_sshcert_policy {
	const struct kc_sshcert_cas *cas; /* trusted_ca_keys */
	const char *principals_file; /* authorized_principals_file template, or NULL */
	const char *cas_path; /* for messages: the file cas came from, or NULL */
};

/* An accepted certificate's principals that the user may act as: without a
 * principals file all of them (the user's own name among them), with one
 * those the file lists. Free with kc_sshcert_verdict_free(). */
struct kc_sshcert_verdict {
	char **principals;
	size_t n_principals;
};

/* Judges cert for Unix user at now. 0: accepted, verdict filled. 1: refused,
 * why says why in a sentence fit for `explain` ("certificate "ID" (serial N):
 * expired at ..."). -1: the check itself failed (memory, OpenSSL), why says
 * what; treat it as no certificate too. verdict is empty unless 0. */
int kc_sshcert_check(const struct kc_sshcert *cert, const struct kc_sshcert_policy *policy, time_t now,
		     const char *user, struct kc_sshcert_verdict *verdict, struct kc_err *why);
/* May the user act as principal through this certificate? A mapping rule's
 * `ssh_certificate: {principal: NAME}` matches only then. */
bool kc_sshcert_authorized(const struct kc_sshcert_verdict *verdict, const char *principal);
void kc_sshcert_verdict_free(struct kc_sshcert_verdict *verdict);

#endif

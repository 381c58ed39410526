/* OpenSSH certificates: real ones from ssh-keygen (tests/data/sshcert/, made by
 * its make.sh) of every key and CA type, every refusal with its reason, the
 * principals files, SSH_AUTH_INFO_0, trusted_ca_keys with its line numbers,
 * and hostile blobs: truncated, oversized, spliced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "config/sshcert.h"
#include "config/sshcert_check.h"
#include "config/sshkey.h"

#define DATA "tests/data/sshcert/"
#define T_IN 1577880000 /* 2020-01-01T12:00:00Z: inside the fixtures' window */
#define T_BEFORE 1546300800 /* 2019-01-01 */
#define T_AFTER 1609459200 /* 2021-01-01 */
#define WINDOW_START 1577836800ULL /* 2020-01-01T00:00:00Z */
#define WINDOW_END 1577923200ULL /* 2020-01-02T00:00:00Z */

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *data;
	long n;

	snprintf(path, sizeof(path), "%s%s", DATA, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the repository's top; tests/data/sshcert/make.sh makes it)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return data;
}

/* The binary blob of a "TYPE BASE64 COMMENT" file. */
static unsigned char *blob_of(const char *name, size_t *len)
{
	char *text = slurp(name, NULL), *b64 = strchr(text, ' ') + 1;
	unsigned char *blob;

	b64[strcspn(b64, " \n")] = '\0';
	assert_int_equal(kc_ssh_base64_decode(b64, strlen(b64), &blob, len), 0);
	free(text);
	return blob;
}

/* "TYPE BASE64" of a file, as sshd writes a key into SSH_AUTH_INFO_0. */
static char *key_text(const char *name)
{
	char *text = slurp(name, NULL), *sp = strchr(strchr(text, ' ') + 1, ' ');

	if (sp)
		*sp = '\0';
	text[strcspn(text, "\n")] = '\0';
	return text;
}

static struct kc_sshcert *cert_of(const char *name)
{
	size_t len;
	unsigned char *blob = blob_of(name, &len);
	struct kc_sshcert *c = NULL;
	struct kc_err err;

	if (kc_sshcert_parse(blob, len, &c, &err) != 0)
		fail_msg("%s: %s", name, err.msg);
	free(blob);
	return c;
}

static void trusted(struct kc_sshcert_cas *cas)
{
	size_t len;
	char *text = slurp("trusted_ca_keys", &len);
	struct kc_err err;

	if (kc_sshcert_cas_parse("trusted_ca_keys", text, len, cas, NULL, &err) != 0)
		fail_msg("%s", err.msg);
	free(text);
}

/* kc_sshcert_check() of a fixture for user at now; the reason into why. */
static int judge(const char *name, const char *principals_file, time_t now, const char *user,
		 struct kc_sshcert_verdict *v, struct kc_err *why)
{
	struct kc_sshcert_cas cas;
	struct kc_sshcert *c = cert_of(name);
	struct kc_sshcert_policy policy = { &cas, principals_file, "/etc/ssh/trusted_ca_keys" };
	int rc;

	trusted(&cas);
	rc = kc_sshcert_check(c, &policy, now, user, v, why);
	kc_sshcert_cas_free(&cas);
	kc_sshcert_free(c);
	return rc;
}

static void assert_refused(const char *name, time_t now, const char *user, const char *reason)
{
	struct kc_sshcert_verdict v;
	struct kc_err why;

	if (judge(name, NULL, now, user, &v, &why) != 1)
		fail_msg("%s was not refused", name);
	if (!strstr(why.msg, reason))
		fail_msg("%s: '%s' does not say '%s'", name, why.msg, reason);
	assert_int_equal(v.n_principals, 0);
}

static void assert_fp(const char *fp, const char *file)
{
	char *want = slurp(file, NULL);

	want[strcspn(want, "\n")] = '\0';
	assert_string_equal(fp, want);
	free(want);
}

static void fields_as_ssh_keygen_made_them(void **state)
{
	struct kc_sshcert *c = cert_of("ed25519_by_ed25519-cert.pub");
	char fp[KC_SSHKEY_FP_LEN];

	(void)state;
	assert_string_equal(c->type, "ssh-ed25519-cert-v01@openssh.com");
	assert_int_equal(c->key.alg, KC_SSHKEY_ED25519);
	assert_int_equal(c->ca.alg, KC_SSHKEY_ED25519);
	assert_int_equal(c->serial, 7);
	assert_int_equal(c->cert_type, KC_SSHCERT_TYPE_USER);
	assert_string_equal(c->key_id, "alice@example");
	assert_int_equal(c->n_principals, 2);
	assert_string_equal(c->principals[0], "alice");
	assert_string_equal(c->principals[1], "k8s-admin");
	assert_true(c->valid_after == WINDOW_START && c->valid_before == WINDOW_END);
	assert_int_equal(c->n_critical, 0);
	assert_int_equal(c->n_extensions, 5);
	assert_string_equal(c->extensions[3].name, "permit-pty");
	/* What was signed is everything before the signature string. */
	assert_int_equal(c->signed_len + 4 + c->signature_len, c->blob_len);
	assert_ptr_equal(c->signature, c->blob + c->signed_len + 4);
	kc_sshcert_ca_fingerprint(c, fp);
	assert_fp(fp, "ca_ed25519.fp");
	kc_sshcert_key_fingerprint(c, fp);
	assert_fp(fp, "user_ed25519.fp");
	kc_sshcert_free(c);

	c = cert_of("forever-cert.pub");
	assert_true(c->valid_after == 0 && c->valid_before == UINT64_MAX);
	kc_sshcert_free(c);

	c = cert_of("crit_known-cert.pub");
	assert_int_equal(c->n_critical, 3);
	assert_string_equal(c->critical[0].name, "force-command");
	assert_int_equal(c->critical[0].len, 4 + 9);
	assert_memory_equal(c->critical[0].data, "\0\0\0\x09/bin/true", 13);
	assert_string_equal(c->critical[2].name, "verify-required");
	assert_int_equal(c->critical[2].len, 0);
	kc_sshcert_free(c);

	c = cert_of("roles-cert.pub");
	kc_sshcert_key_fingerprint(c, fp);
	assert_fp(fp, "user_p256.fp");
	kc_sshcert_free(c);
	c = cert_of("rsa_by_ed25519-cert.pub");
	kc_sshcert_key_fingerprint(c, fp);
	assert_fp(fp, "user_rsa.fp");
	kc_sshcert_free(c);
}

static void every_key_and_ca_type_verifies(void **state)
{
	static const struct {
		const char *cert, *ca_fp;
		enum kc_sshkey_alg key, ca;
	} cases[] = {
		{ "ed25519_by_ed25519-cert.pub", "ca_ed25519.fp", KC_SSHKEY_ED25519, KC_SSHKEY_ED25519 },
		{ "p256_by_p256-cert.pub", "ca_p256.fp", KC_SSHKEY_P256, KC_SSHKEY_P256 },
		{ "p384_by_p384-cert.pub", "ca_p384.fp", KC_SSHKEY_P384, KC_SSHKEY_P384 },
		{ "p521_by_p521-cert.pub", "ca_p521.fp", KC_SSHKEY_P521, KC_SSHKEY_P521 },
		{ "rsa_by_rsa512-cert.pub", "ca_rsa.fp", KC_SSHKEY_RSA, KC_SSHKEY_RSA },
		{ "ed25519_by_rsa256-cert.pub", "ca_rsa.fp", KC_SSHKEY_ED25519, KC_SSHKEY_RSA },
		{ "rsa_by_ed25519-cert.pub", "ca_ed25519.fp", KC_SSHKEY_RSA, KC_SSHKEY_ED25519 },
		{ "p256_by_p521-cert.pub", "ca_p521.fp", KC_SSHKEY_P256, KC_SSHKEY_P521 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_sshcert *c = cert_of(cases[i].cert);
		struct kc_sshcert_verdict v;
		struct kc_err why;
		char fp[KC_SSHKEY_FP_LEN];

		assert_int_equal(c->key.alg, cases[i].key);
		assert_int_equal(c->ca.alg, cases[i].ca);
		kc_sshcert_ca_fingerprint(c, fp);
		assert_fp(fp, cases[i].ca_fp);
		if (kc_sshcert_verify_signature(c, &why) != 0)
			fail_msg("%s: %s", cases[i].cert, why.msg);
		kc_sshcert_free(c);
		if (judge(cases[i].cert, NULL, T_IN, "alice", &v, &why) != 0)
			fail_msg("%s: %s", cases[i].cert, why.msg);
		assert_true(kc_sshcert_authorized(&v, "alice"));
		assert_true(kc_sshcert_authorized(&v, "k8s-admin"));
		assert_false(kc_sshcert_authorized(&v, "root"));
		kc_sshcert_verdict_free(&v);
	}
}

static void each_refusal_says_why(void **state)
{
	struct kc_sshcert_verdict v;
	struct kc_err why;
	char *other = slurp("ca_other.fp", NULL);

	(void)state;
	other[strcspn(other, "\n")] = '\0';
	assert_refused("other_ca-cert.pub", T_IN, "alice", "which /etc/ssh/trusted_ca_keys does not list");
	assert_refused("other_ca-cert.pub", T_IN, "alice", other);
	free(other);
	assert_refused("ed25519_by_ed25519-cert.pub", T_AFTER, "alice", "expired at 2020-01-02T00:00:00Z");
	assert_refused("ed25519_by_ed25519-cert.pub", T_BEFORE, "alice", "not valid before 2020-01-01T00:00:00Z");
	assert_refused("ed25519_by_ed25519-cert.pub", -1, "alice", "not valid before");
	assert_refused("ed25519_by_ed25519-cert.pub", T_IN, "bob",
		       "bob is not among its principals (alice, k8s-admin)");
	assert_refused("ed25519_by_ed25519-cert.pub", T_IN, "bob", "certificate \"alice@example\" (serial 7)");
	assert_refused("host-cert.pub", T_IN, "alice", "a host certificate");
	assert_refused("tampered-cert.pub", T_IN, "alice", "its ssh-ed25519 signature does not verify");
	assert_refused("crit_unknown-cert.pub", T_IN, "alice", "critical option \"foo@example.com\"");
	assert_refused("no_principals-cert.pub", T_IN, "alice", "lists no principals");
	assert_refused("ed25519_by_rsasha1-cert.pub", T_IN, "alice", "SHA-1 (ssh-rsa)");
	assert_refused("forever-cert.pub", T_IN, "alice", "alice is not among its principals (bob)");
	/* An unverified certificate's words are never quoted. */
	assert_int_equal(judge("tampered-cert.pub", NULL, T_IN, "alice", &v, &why), 1);
	assert_null(strstr(why.msg, "tamper-m"));

	/* The window's edges: valid_after <= now < valid_before. */
	assert_int_equal(judge("ed25519_by_ed25519-cert.pub", NULL, (time_t)WINDOW_START, "alice", &v, &why), 0);
	kc_sshcert_verdict_free(&v);
	assert_int_equal(judge("ed25519_by_ed25519-cert.pub", NULL, (time_t)WINDOW_END - 1, "alice", &v, &why), 0);
	kc_sshcert_verdict_free(&v);
	assert_refused("ed25519_by_ed25519-cert.pub", (time_t)WINDOW_END, "alice", "expired");
	assert_refused("ed25519_by_ed25519-cert.pub", (time_t)WINDOW_START - 1, "alice", "not valid before");

	/* The critical options sshd enforced do not stand in the way. */
	assert_int_equal(judge("crit_known-cert.pub", NULL, T_IN, "alice", &v, &why), 0);
	kc_sshcert_verdict_free(&v);
	assert_int_equal(judge("forever-cert.pub", NULL, T_AFTER * 40LL, "bob", &v, &why), 0);
	kc_sshcert_verdict_free(&v);
}

static void security_key_types_are_unsupported(void **state)
{
	static const char *const names[] = { "sk_ed25519-cert.pub", "sk_p256-cert.pub" };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		unsigned char *blob = blob_of(names[i], &len);
		struct kc_sshcert *c = (struct kc_sshcert *)1;
		struct kc_err err;

		assert_int_equal(kc_sshcert_parse(blob, len, &c, &err), KC_SSHCERT_UNSUPPORTED);
		assert_null(c);
		assert_non_null(strstr(err.msg, "certificates are not supported"));
		free(blob);
	}
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/kc-sshcert-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void principals_files(void **state)
{
	char *dir = temp_dir(), tmpl[512], path[512], want[600];
	struct kc_sshcert_verdict v;
	struct kc_err why;

	(void)state;
	snprintf(tmpl, sizeof(tmpl), "%s/%%u", dir);
	/* As sshd reads it: comments, blanks, options before the principal. */
	write_file(dir, "alice", "# roles of alice\n\n  sre\t# on call\nfrom=\"10.0.0.0/8\" k8s-admin  \n", 0644);
	write_file(dir, "carol", "ops\nbob x\n", 0644);
	if (getuid() != 0) {
		assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "alice", &v, &why), 1);
		assert_non_null(strstr(why.msg, "must be owned by root"));
		goto out;
	}
	/* bob's certificate "bob,sre,k8s-admin" acts for alice through sre and k8s-admin, never as bob. */
	if (judge("roles-cert.pub", tmpl, T_IN, "alice", &v, &why) != 0)
		fail_msg("%s", why.msg);
	assert_true(kc_sshcert_authorized(&v, "sre"));
	assert_true(kc_sshcert_authorized(&v, "k8s-admin"));
	assert_false(kc_sshcert_authorized(&v, "bob"));
	assert_int_equal(v.n_principals, 2);
	kc_sshcert_verdict_free(&v);
	/* "bob x": x is the principal, bob an option. */
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "carol", &v, &why), 1);
	snprintf(want, sizeof(want), "none of its principals (bob, sre, k8s-admin) is listed for carol in %s/carol",
		 dir);
	assert_non_null(strstr(why.msg, want));
	write_file(dir, "erin", "", 0644);
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "erin", &v, &why), 1);
	assert_non_null(strstr(why.msg, "none of its principals"));
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "dave", &v, &why), 1);
	assert_non_null(strstr(why.msg, "no authorized principals for dave"));
	assert_non_null(strstr(why.msg, "does not exist"));
	/* Without a file the user's own name must be a principal, and then all of them count. */
	assert_int_equal(judge("roles-cert.pub", NULL, T_IN, "bob", &v, &why), 0);
	assert_true(kc_sshcert_authorized(&v, "k8s-admin"));
	kc_sshcert_verdict_free(&v);

	snprintf(path, sizeof(path), "%s/alice", dir);
	assert_int_equal(chmod(path, 0664), 0);
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "alice", &v, &why), 1);
	assert_non_null(strstr(why.msg, "has mode 0664; it must not be writable by group or others"));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(chown(path, 1000, 1000), 0);
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "alice", &v, &why), 1);
	assert_non_null(strstr(why.msg, "is owned by uid 1000; it must be owned by root"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("carol", path), 0);
	assert_int_equal(judge("roles-cert.pub", tmpl, T_IN, "alice", &v, &why), 1);
	assert_non_null(strstr(why.msg, "symbolic link"));
out:
	for (size_t i = 0; i < 3; i++) {
		static const char *const made[] = { "alice", "carol", "erin" };

		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

static void principals_templates(void **state)
{
	char out[64];
	struct kc_err err;

	(void)state;
	assert_int_equal(kc_sshcert_principals_template_check("/etc/ssh/auth_principals/%u", &err), 0);
	assert_int_equal(kc_sshcert_principals_template_check("auth_principals/%u", &err), -1);
	assert_non_null(strstr(err.msg, "absolute path"));
	assert_int_equal(kc_sshcert_principals_template_check("/etc/%h/p", &err), -1);
	assert_non_null(strstr(err.msg, "'%h' is not supported"));
	assert_int_equal(kc_sshcert_principals_template_check("/etc/p%", &err), -1);
	assert_int_equal(kc_sshcert_principals_path("/p/%%u-%u", "alice", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/p/%u-alice");
	assert_int_equal(kc_sshcert_principals_path("/p/%u", "../etc", out, sizeof(out), &err), -1);
	assert_int_equal(kc_sshcert_principals_path("/p/%u", "..", out, sizeof(out), &err), -1);
	assert_int_equal(kc_sshcert_principals_path("/p/%u", "", out, sizeof(out), &err), -1);
	assert_int_equal(kc_sshcert_principals_path("/p/%u%u%u%u%u%u%u%u%u%u", "abcdefgh", out, sizeof(out), &err), -1);
	assert_non_null(strstr(err.msg, "too long"));
}

static void authinfo_lines(void **state)
{
	char *plain = key_text("user_ed25519.pub"), *c1 = key_text("ed25519_by_ed25519-cert.pub");
	char *c2 = key_text("rsa_by_rsa512-cert.pub"), *c3 = key_text("sk_p256-cert.pub");
	size_t l1, l2, n;
	unsigned char *b1 = blob_of("ed25519_by_ed25519-cert.pub", &l1), *b2 = blob_of("rsa_by_rsa512-cert.pub", &l2);
	struct kc_sshcert_blob *blobs;
	struct kc_buf text = { 0 };
	struct kc_err err;

	(void)state;
	/* Two accepted methods with certificates (AuthenticationMethods publickey,publickey), others between. */
	kc_buf_printf(&text, "publickey %s\nkeyboard-interactive/pam\npublickey %s\npassword\npublickey %s\n", plain,
		      c1, c2);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(blobs[0].len == l1 && memcmp(blobs[0].data, b1, l1) == 0);
	assert_true(blobs[1].len == l2 && memcmp(blobs[1].data, b2, l2) == 0);
	kc_sshcert_blobs_free(blobs, n);
	/* A FIDO certificate is extracted (its parse refuses it), sshd's note after it ignored. */
	text.len = 0;
	kc_buf_printf(&text, "publickey %s signature count = 4", c3);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), 0);
	assert_int_equal(n, 1);
	kc_sshcert_blobs_free(blobs, n);

	assert_int_equal(kc_sshcert_authinfo("", 0, &blobs, &n, &err), 0);
	assert_true(n == 0 && blobs == NULL);
	text.len = 0;
	kc_buf_printf(&text, "publickey %s\nkeyboard-interactive/pam\n", plain);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), 0);
	assert_true(n == 0 && blobs == NULL);

	/* What sshd never writes makes the whole value suspect. */
	text.len = 0;
	kc_buf_printf(&text, "password\npublickey %s!\n", c1);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), -1);
	assert_string_equal(err.msg, "SSH_AUTH_INFO_0 line 2: the certificate is not valid base64");
	text.len = 0;
	kc_buf_printf(&text, "publickey ecdsa-sha2-nistp256-cert-v01@openssh.com %s\n", strchr(c1, ' ') + 1);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), -1);
	assert_non_null(strstr(err.msg, "not of the type the line names"));
	text.len = 0;
	for (int i = 0; i <= KC_SSHCERT_AUTHINFO_CERTS; i++)
		kc_buf_printf(&text, "publickey %s\n", c1);
	assert_int_equal(kc_sshcert_authinfo(text.data, text.len, &blobs, &n, &err), -1);
	assert_non_null(strstr(err.msg, "more than 8 certificates"));
	assert_int_equal(kc_sshcert_authinfo("publickey x\0y", 13, &blobs, &n, &err), -1);
	assert_int_equal(kc_sshcert_authinfo(text.data, KC_SSHCERT_AUTHINFO_MAX + 1, &blobs, &n, &err), -1);
	assert_non_null(strstr(err.msg, "more than the 262144 allowed"));
	kc_buf_free(&text);
	free(plain);
	free(c1);
	free(c2);
	free(c3);
	free(b1);
	free(b2);
}

static void assert_ca_error(const char *text, const char *reason)
{
	struct kc_sshcert_cas cas;
	struct kc_err err;

	if (kc_sshcert_cas_parse("/etc/ca.pub", text, strlen(text), &cas, NULL, &err) != -1)
		fail_msg("accepted: %s", text);
	if (!strstr(err.msg, reason))
		fail_msg("'%s' does not say '%s'", err.msg, reason);
	assert_true(cas.n == 0 && cas.keys == NULL);
}

static void trusted_ca_keys_file(void **state)
{
	struct kc_sshcert_cas cas;
	struct kc_buf text = { 0 }, warnings = { 0 };
	struct kc_err err;
	char *ed = key_text("ca_ed25519.pub"), *p256 = key_text("ca_p256.pub"), *cert = key_text("forever-cert.pub");
	char *dir = temp_dir(), path[512], *fixture = slurp("trusted_ca_keys", NULL);
	static const unsigned lines[] = { 3, 4, 5, 6, 7 };

	(void)state;
	trusted(&cas);
	assert_int_equal(cas.n, 5);
	for (size_t i = 0; i < cas.n; i++)
		assert_int_equal(cas.keys[i].line, lines[i]);
	kc_sshcert_cas_free(&cas);

	assert_ca_error("\n\nfoo AAAA\n", "/etc/ca.pub:3: 'foo' is not an OpenSSH public key type");
	assert_ca_error("ssh-ed25519 AAAA!!!!\n",
			"/etc/ca.pub:1: the ssh-ed25519 key's base64 is missing or malformed");
	assert_ca_error("ssh-ed25519\n", "/etc/ca.pub:1: the ssh-ed25519 key's base64 is missing");
	assert_ca_error("cert-authority\n", "/etc/ca.pub:1: cert-authority names no key");
	assert_ca_error("", "/etc/ca.pub holds no CA key");
	assert_ca_error("# nothing\n\n", "holds no CA key");
	kc_buf_printf(&text, "# ok\n%s\n%s\n", ed, cert);
	assert_ca_error(text.data, "/etc/ca.pub:3: this is a certificate, not a CA key");
	text.len = 0;
	kc_buf_printf(&text, "cert-authority,principals=\"ops\" %s\n", ed);
	assert_ca_error(text.data, "/etc/ca.pub:1: key options are not supported");
	text.len = 0;
	kc_buf_printf(&text, "ecdsa-sha2-nistp256 %s\n", strchr(ed, ' ') + 1);
	assert_ca_error(text.data,
			"/etc/ca.pub:1: not a valid ecdsa-sha2-nistp256 key (the blob is a ssh-ed25519 key)");
	text.len = 0;
	kc_buf_printf(&text, "ssh-ed25519 %s\n", strchr(p256, ' ') + 1);
	assert_ca_error(text.data, "/etc/ca.pub:1: not a valid ssh-ed25519 key");

	/* A point off its curve: the line is refused at load, not at the first login. */
	{
		size_t len;
		unsigned char *blob = blob_of("ca_p256.pub", &len);
		char *b64;

		blob[len - 1] ^= 1;
		b64 = kc_base64_encode(blob, len, false);
		text.len = 0;
		kc_buf_printf(&text, "ecdsa-sha2-nistp256 %s\n", b64);
		assert_ca_error(text.data, "/etc/ca.pub:1: not a valid ecdsa-sha2-nistp256 key (OpenSSL refuses");
		free(b64);
		free(blob);
	}

	/* A FIDO CA key is skipped with a warning: sshd may trust it, we cannot check its signatures. */
	text.len = 0;
	kc_buf_printf(&text, "sk-ssh-ed25519@openssh.com AAAA x\n%s comment here\r\n", ed);
	assert_int_equal(kc_sshcert_cas_parse("/etc/ca.pub", text.data, text.len, &cas, &warnings, &err), 0);
	assert_int_equal(cas.n, 1);
	assert_int_equal(cas.keys[0].line, 2);
	assert_string_equal(warnings.data, "/etc/ca.pub:1: warning: sk-ssh-ed25519@openssh.com CA keys are not "
					   "supported here; the certificates it signs are not accepted\n");
	kc_sshcert_cas_free(&cas);

	/* From the file, root's alone. */
	write_file(dir, "cas", fixture, 0644);
	snprintf(path, sizeof(path), "%s/cas", dir);
	if (getuid() == 0) {
		assert_int_equal(kc_sshcert_cas_load(path, &cas, NULL, &err), 0);
		assert_int_equal(cas.n, 5);
		kc_sshcert_cas_free(&cas);
		assert_int_equal(chmod(path, 0666), 0);
		assert_int_equal(kc_sshcert_cas_load(path, &cas, NULL, &err), -1);
		assert_non_null(strstr(err.msg, "has mode 0666"));
	} else {
		assert_int_equal(kc_sshcert_cas_load(path, &cas, NULL, &err), -1);
		assert_non_null(strstr(err.msg, "must be owned by root"));
	}
	unlink(path);
	rmdir(dir);
	free(dir);
	free(fixture);
	kc_buf_free(&text);
	kc_buf_free(&warnings);
	free(ed);
	free(p256);
	free(cert);
}

/* ---- hostile blobs --------------------------------------------------------- */

static void put_u32(struct kc_buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };

	kc_buf_append(b, x, 4);
}

static void put_string(struct kc_buf *b, const void *p, size_t len)
{
	put_u32(b, (uint32_t)len);
	kc_buf_append(b, p, len);
}

/* A certificate built field by field; principals is a packed list (or NULL for n_principals of "p"). */
static void build(struct kc_buf *b, const char *type, uint32_t cert_type, size_t n_principals, const char *crit,
		  size_t crit_len, const void *ca, size_t ca_len)
{
	unsigned char pk[32] = { 1 }, zero8[8] = { 0 }, ones8[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct kc_buf princ = { 0 };

	b->len = 0;
	put_string(b, type, strlen(type));
	put_string(b, "nonce", 5);
	put_string(b, pk, 32);
	kc_buf_append(b, zero8, 8);
	put_u32(b, cert_type);
	put_string(b, "id", 2);
	for (size_t i = 0; i < n_principals; i++)
		put_string(&princ, "p", 1);
	put_string(b, princ.data ? princ.data : "", princ.len);
	kc_buf_append(b, zero8, 8);
	kc_buf_append(b, ones8, 8);
	put_string(b, crit, crit_len);
	put_string(b, "", 0);
	put_string(b, "", 0);
	put_string(b, ca, ca_len);
	put_string(b, "\0\0\0\x0bssh-ed25519\0\0\0\x40", 19); /* a signature (cut short: never verified here) */
	kc_buf_free(&princ);
}

static int parse_buf(const struct kc_buf *b, struct kc_err *err)
{
	struct kc_sshcert *c;
	int rc = kc_sshcert_parse((const unsigned char *)b->data, b->len, &c, err);

	kc_sshcert_free(c);
	return rc;
}

static void truncated_oversized_and_spliced(void **state)
{
	size_t len, ca_len;
	unsigned char *blob = blob_of("p521_by_p521-cert.pub", &len), *ca = blob_of("ca_ed25519.pub", &ca_len);
	unsigned char *big = calloc(1, KC_SSHCERT_MAX + 1);
	struct kc_sshcert *c;
	struct kc_buf b = { 0 };
	struct kc_err err;
	const char *ed_type = "ssh-ed25519-cert-v01@openssh.com";

	(void)state;
	/* Every prefix is refused, and so is one byte more. */
	for (size_t n = 0; n < len; n++) {
		if (kc_sshcert_parse(blob, n, &c, &err) != -1)
			fail_msg("a certificate cut at %zu bytes was read", n);
		assert_null(c);
	}
	memcpy(big, blob, len);
	assert_int_equal(kc_sshcert_parse(big, len + 1, &c, &err), -1);
	assert_non_null(strstr(err.msg, "1 bytes after its signature"));
	assert_int_equal(kc_sshcert_parse(big, KC_SSHCERT_MAX + 1, &c, &err), -1);
	assert_non_null(strstr(err.msg, "more than the 65536 allowed"));
	/* A length that points past the end. */
	memcpy(big, "\xff\xff\xff\xf0", 4);
	assert_int_equal(kc_sshcert_parse(big, len, &c, &err), -1);
	assert_non_null(strstr(err.msg, "at its type name"));

	build(&b, ed_type, 1, 2, "", 0, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), 0);
	build(&b, ed_type, 1, KC_SSHCERT_MAX_PRINCIPALS + 1, "", 0, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "more than 256 principals"));
	build(&b, ed_type, 3, 1, "", 0, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "neither user (1) nor host (2)"));
	build(&b, ed_type, 1, 1, "\0\0\0\x01x\0\0\0\0\0\0\0\x01x\0\0\0\0", 18, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "names critical option x twice"));
	build(&b, ed_type, 1, 1, "\0\0\0\x05x", 5, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "at critical options"));
	build(&b, "foo-cert-v01@openssh.com", 1, 1, "", 0, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), KC_SSHCERT_UNSUPPORTED);
	build(&b, "ssh-ed25519", 1, 1, "", 0, ca, ca_len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "is not an OpenSSH certificate type"));
	/* A CA key that is itself a certificate (OpenSSH chains none), or of a type we do not verify. */
	build(&b, ed_type, 1, 1, "", 0, blob, len);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "its CA key:"));
	build(&b, ed_type, 1, 1, "", 0, "\0\0\0\x07ssh-dss", 11);
	assert_int_equal(parse_buf(&b, &err), KC_SSHCERT_UNSUPPORTED);
	assert_non_null(strstr(err.msg, "ssh-dss keys are not supported"));
	/* A principal with a NUL in it. */
	build(&b, ed_type, 1, 1, "", 0, ca, ca_len);
	b.data[4 + strlen(ed_type) + 9 + 36 + 8 + 4 + 6 + 4 + 4] = '\0';
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "at a principal"));
	kc_buf_free(&b);
	free(big);
	free(blob);
	free(ca);
}

/* The certificate c with its signature key replaced (the signature kept). */
static struct kc_sshcert *with_ca(const struct kc_sshcert *c, const char *ca_file)
{
	size_t ca_len;
	unsigned char *ca = blob_of(ca_file, &ca_len);
	struct kc_buf b = { 0 };
	struct kc_sshcert *out;
	struct kc_err err;

	kc_buf_append(&b, c->blob, (size_t)(c->ca_key - c->blob) - 4);
	put_string(&b, ca, ca_len);
	put_string(&b, c->signature, c->signature_len);
	if (kc_sshcert_parse((unsigned char *)b.data, b.len, &out, &err) != 0)
		fail_msg("%s", err.msg);
	kc_buf_free(&b);
	free(ca);
	return out;
}

static void signature_must_match_its_ca(void **state)
{
	struct kc_sshcert *ed = cert_of("ed25519_by_ed25519-cert.pub"), *c;
	struct kc_err why;

	(void)state;
	c = with_ca(ed, "ca_p256.pub");
	assert_int_equal(kc_sshcert_verify_signature(c, &why), 1);
	assert_string_equal(why.msg, "its signature is ssh-ed25519 but the CA key is ecdsa-sha2-nistp256");
	kc_sshcert_free(c);
	c = with_ca(ed, "ca_rsa.pub");
	assert_int_equal(kc_sshcert_verify_signature(c, &why), 1);
	assert_string_equal(why.msg, "its signature is ssh-ed25519, not one an RSA CA makes");
	kc_sshcert_free(c);
	c = with_ca(ed, "ca_other.pub");
	assert_int_equal(kc_sshcert_verify_signature(c, &why), 1);
	assert_string_equal(why.msg, "its ssh-ed25519 signature does not verify");
	kc_sshcert_free(c);
	kc_sshcert_free(ed);

	/* An RSA signature over another CA's key and a P-521 one over P-256. */
	ed = cert_of("rsa_by_rsa512-cert.pub");
	c = with_ca(ed, "ca_p521.pub");
	assert_int_equal(kc_sshcert_verify_signature(c, &why), 1);
	kc_sshcert_free(c);
	kc_sshcert_free(ed);
	ed = cert_of("p521_by_p521-cert.pub");
	c = with_ca(ed, "ca_p256.pub");
	assert_int_equal(kc_sshcert_verify_signature(c, &why), 1);
	assert_non_null(strstr(why.msg, "ecdsa-sha2-nistp521 but the CA key is ecdsa-sha2-nistp256"));
	kc_sshcert_free(c);
	kc_sshcert_free(ed);
}

static void strict_base64(void **state)
{
	unsigned char *out;
	size_t n;

	(void)state;
	assert_int_equal(kc_ssh_base64_decode("AA==", 4, &out, &n), 0);
	assert_int_equal(n, 1);
	free(out);
	assert_int_equal(kc_ssh_base64_decode("AAA=", 4, &out, &n), 0);
	assert_int_equal(n, 2);
	free(out);
	assert_int_equal(kc_ssh_base64_decode("aGk/Pg==", 8, &out, &n), 0);
	assert_memory_equal(out, "hi?>", 4);
	free(out);
	assert_int_equal(kc_ssh_base64_decode("", 0, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AAA", 3, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AB==", 4, &out, &n), -1); /* bits left over */
	assert_int_equal(kc_ssh_base64_decode("AAB=", 4, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("A===", 4, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AA=A", 4, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AA==AAAA", 8, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AA AA", 5, &out, &n), -1);
	assert_int_equal(kc_ssh_base64_decode("AA\nA", 4, &out, &n), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fields_as_ssh_keygen_made_them),
		cmocka_unit_test(every_key_and_ca_type_verifies),
		cmocka_unit_test(each_refusal_says_why),
		cmocka_unit_test(security_key_types_are_unsupported),
		cmocka_unit_test(principals_files),
		cmocka_unit_test(principals_templates),
		cmocka_unit_test(authinfo_lines),
		cmocka_unit_test(trusted_ca_keys_file),
		cmocka_unit_test(truncated_oversized_and_spliced),
		cmocka_unit_test(signature_must_match_its_ca),
		cmocka_unit_test(strict_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

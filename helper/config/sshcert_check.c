/* The judgement of a certificate (see config/sshcert_check.h): the trusted CA
 * keys, the authorized principals files and the decision, as sshd's
 * user_cert_trusted_ca() takes it (auth2-pubkey.c), with a reason for every
 * refusal. Reasons quote what a certificate says only once its CA is known
 * and its signature holds, and then made printable. */
#include "config/sshcert_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"

/* ---- trusted_ca_keys ------------------------------------------------------- */

void kc_sshcert_cas_free(struct kc_sshcert_cas *cas)
{
	for (size_t i = 0; i < cas->n; i++)
		free(cas->keys[i].blob);
	free(cas->keys);
	cas->keys = NULL;
	cas->n = 0;
}

const struct kc_sshcert_ca *kc_sshcert_cas_find(const struct kc_sshcert_cas *cas, const unsigned char *blob, size_t len)
{
	for (size_t i = 0; cas && i < cas->n; i++)
		if (cas->keys[i].len == len && memcmp(cas->keys[i].blob, blob, len) == 0)
			return &cas->keys[i];
	return NULL;
}

static const char *skip_blank(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

static const char *word_end(const char *p, const char *end)
{
	while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
		p++;
	return p;
}

/* Why a word that should be a key type is not one we read: an error, or 1 for a warning. */
static int not_a_ca_type(const char *path, unsigned line, const char *name, struct kc_buf *warnings, struct kc_err *err)
{
	if (kc_sshkey_name_unsupported(name)) {
		if (warnings)
			kc_buf_printf(warnings,
				      "%s:%u: warning: %s CA keys are not supported here; the certificates it signs "
				      "are not accepted\n",
				      path, line, name);
		return 1;
	}
	if (kc_sshcert_type_name(name, strlen(name)))
		kc_seterr(err, "%s:%u: this is a certificate, not a CA key; give the CA's public key (its .pub line)",
			  path, line);
	else if (strpbrk(name, "=,\""))
		kc_seterr(err, "%s:%u: key options are not supported here (only a bare cert-authority); remove them",
			  path, line);
	else
		kc_seterr(err,
			  "%s:%u: '%.64s' is not an OpenSSH public key type; write TYPE BASE64 [COMMENT] as in the "
			  "CA's .pub file",
			  path, line, name);
	return -1;
}

static int add_ca(struct kc_sshcert_cas *cas, unsigned char *blob, size_t len, unsigned line)
{
	struct kc_sshcert_ca *k = realloc(cas->keys, (cas->n + 1) * sizeof(*k));

	if (!k)
		return -1;
	cas->keys = k;
	k[cas->n++] = (struct kc_sshcert_ca){ blob, len, line };
	return 0;
}

/* The key of one line: -1 error, 0 added or nothing to add, 1 skipped with a warning. */
static int ca_line(const char *path, unsigned line, const char *p, const char *end, struct kc_sshcert_cas *cas,
		   struct kc_buf *warnings, struct kc_err *err)
{
	const char *w = skip_blank(p, end), *we = word_end(w, end), *b64, *be;
	char name[64];
	unsigned char *blob;
	size_t len;
	struct kc_sshkey key;
	struct kc_err e;
	int rc;

	if (w == end || *w == '#')
		return 0;
	if (we - w == 14 && memcmp(w, "cert-authority", 14) == 0) {
		w = skip_blank(we, end);
		we = word_end(w, end);
	}
	if (w == we)
		return kc_seterr(err, "%s:%u: cert-authority names no key", path, line), -1;
	snprintf(name, sizeof(name), "%.*s", (int)(we - w), w);
	if (kc_sshkey_alg_from_name(name) == KC_SSHKEY_NONE)
		return not_a_ca_type(path, line, name, warnings, err);
	b64 = skip_blank(we, end);
	be = word_end(b64, end);
	if (kc_ssh_base64_decode(b64, (size_t)(be - b64), &blob, &len) < 0)
		return kc_seterr(err, "%s:%u: the %s key's base64 is missing or malformed; copy the CA's .pub line",
				 path, line, name),
		       -1;
	rc = kc_sshkey_parse(blob, len, &key, &e);
	if (rc == 0 && key.alg != kc_sshkey_alg_from_name(name)) {
		kc_seterr(&e, "the blob is a %s key", kc_sshkey_alg_name(key.alg));
		rc = -1;
	}
	if (rc == 0)
		rc = kc_sshkey_usable(&key, &e);
	if (rc != 0) {
		kc_seterr(err, "%s:%u: not a valid %s key (%s); copy the CA's .pub line", path, line, name, e.msg);
		free(blob);
		return -1;
	}
	if (cas->n == KC_SSHCERT_MAX_CAS || add_ca(cas, blob, len, line) < 0) {
		free(blob);
		return kc_seterr(err, "%s:%u: more than %d CA keys, or out of memory", path, line, KC_SSHCERT_MAX_CAS),
		       -1;
	}
	return 0;
}

int kc_sshcert_cas_parse(const char *path, const char *text, size_t len, struct kc_sshcert_cas *cas,
			 struct kc_buf *warnings, struct kc_err *err)
{
	const char *end = text + len;
	unsigned line = 0;

	cas->keys = NULL;
	cas->n = 0;
	if (memchr(text, '\0', len))
		return kc_seterr(err, "%s holds a NUL byte; it must be text, one public key a line", path), -1;
	for (const char *p = text; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;

		if (ca_line(path, ++line, p, le, cas, warnings, err) < 0) {
			kc_sshcert_cas_free(cas);
			return -1;
		}
		p = le + 1;
	}
	if (cas->n == 0)
		return kc_seterr(err,
				 "%s holds no CA key we can use; add the CA's public key (the line of its .pub file)",
				 path),
		       -1;
	return 0;
}

int kc_sshcert_cas_load(const char *path, struct kc_sshcert_cas *cas, struct kc_buf *warnings, struct kc_err *err)
{
	kc_autobuf struct kc_buf text = { 0 };

	cas->keys = NULL;
	cas->n = 0;
	if (kc_read_root_file(path, KC_SSHCERT_CA_FILE_MAX, 022, false, &text, err) < 0)
		return -1;
	return kc_sshcert_cas_parse(path, text.data ? text.data : "", text.len, cas, warnings, err);
}

/* ---- authorized principals files ------------------------------------------- */

int kc_sshcert_principals_template_check(const char *tmpl, struct kc_err *err)
{
	if (tmpl[0] != '/')
		return kc_seterr(err, "authorized_principals_file must be an absolute path, e.g. "
				      "/etc/ssh/auth_principals/%%u"),
		       -1;
	for (const char *p = strchr(tmpl, '%'); p; p = strchr(p + 2, '%')) {
		if (p[1] != 'u' && p[1] != '%')
			return kc_seterr(err,
					 "authorized_principals_file: '%%%.1s' is not supported; write %%u for the "
					 "user and %%%% for a %%",
					 p + 1),
			       -1;
	}
	return 0;
}

int kc_sshcert_principals_path(const char *tmpl, const char *user, char *out, size_t len, struct kc_err *err)
{
	struct kc_buf b = { 0 };
	bool failed = false;
	int rc = -1;

	if (!*user || strchr(user, '/') || strcmp(user, ".") == 0 || strcmp(user, "..") == 0)
		return kc_seterr(err, "the user name cannot name a principals file"), -1;
	if (kc_sshcert_principals_template_check(tmpl, err) < 0)
		return -1;
	for (const char *p = tmpl; *p; p++) {
		if (*p == '%')
			failed |= kc_buf_puts(&b, *++p == 'u' ? user : "%") < 0;
		else
			failed |= kc_buf_append(&b, p, 1) < 0;
	}
	if (failed || !b.data || b.len >= len) {
		kc_seterr(err, "the principals file's path for this user is too long, or out of memory");
	} else {
		memcpy(out, b.data, b.len + 1);
		rc = 0;
	}
	kc_buf_free(&b);
	return rc;
}

/* The principal a line of an authorized principals file names, as sshd's
 * auth_check_principals_line() reads it: comment cut, blanks trimmed, and
 * after the last blank when options come first (sshd applied them at login). */
static const char *principal_of_line(char *line)
{
	char *p = line + strspn(line, " \t"), *e;

	p[strcspn(p, "#")] = '\0';
	if (!*p || *p == '\n')
		return NULL;
	e = p + strlen(p) - 1;
	while (e > p && (*e == '\n' || *e == ' ' || *e == '\t'))
		*e-- = '\0';
	if ((e = strrchr(p, ' ')) || (e = strrchr(p, '\t'))) {
		while (*e == ' ' || *e == '\t')
			e++;
		p = e;
	}
	return p;
}

/* Marks listed[i] for each of the certificate's principals a line of the file names. -1: out of memory. */
static int file_lists(const struct kc_buf *text, const struct kc_sshcert *cert, bool *listed)
{
	const char *end = text->data ? text->data + text->len : NULL;

	for (const char *p = text->data; p && p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
		char *line = strndup(p, ll); /* cut at a NUL, as sshd's C strings are */
		const char *name = line ? principal_of_line(line) : NULL;

		if (!line)
			return -1;
		for (size_t i = 0; name && i < cert->n_principals; i++)
			listed[i] |= strcmp(name, cert->principals[i]) == 0;
		free(line);
		p += ll + 1;
	}
	return 0;
}

/* ---- the decision ---------------------------------------------------------- */

/* s made printable for a message: '?' for anything but printable ASCII, cut with "...". */
static void printable(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; s[i] && i + 4 < len; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	snprintf(out + i, len - i, "%s", s[i] ? "..." : "");
}

static void principal_list(const struct kc_sshcert *cert, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cert->n_principals && used + 1 < len; i++) {
		char one[64];

		printable(cert->principals[i], one, sizeof(one));
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", one);
	}
	if (used >= len && len > 4)
		memcpy(out + len - 4, "...", 4);
}

static void format_when(uint64_t t, char *buf, size_t len)
{
	if (t == UINT64_MAX)
		snprintf(buf, len, "forever");
	else if (t > 253402300799ULL) /* past the year 9999 */
		snprintf(buf, len, "%llu (seconds since 1970)", (unsigned long long)t);
	else
		kc_format_time((time_t)t, buf, len);
}

static int check_signer(const struct kc_sshcert *cert, const struct kc_sshcert_policy *policy, struct kc_err *e)
{
	char fp[KC_SSHKEY_FP_LEN];
	struct kc_err sig;
	int rc;

	kc_sshcert_ca_fingerprint(cert, fp);
	if (!kc_sshcert_cas_find(policy->cas, cert->ca_key, cert->ca_key_len))
		return kc_seterr(e, "signed by %s CA %s, which %s does not list", kc_sshkey_alg_label(cert->ca.alg), fp,
				 policy->cas_path ? policy->cas_path : "trusted_ca_keys"),
		       1;
	rc = kc_sshcert_verify_signature(cert, &sig);
	if (rc != 0)
		kc_seterr(e, "%s (CA %s)", sig.msg, fp);
	return rc;
}

/* sshd knows these and enforced them before the session began (auth-options.c). */
static bool known_critical(const char *name)
{
	return strcmp(name, "force-command") == 0 || strcmp(name, "source-address") == 0 ||
	       strcmp(name, "verify-required") == 0;
}

static int check_claims(const struct kc_sshcert *cert, time_t now, struct kc_err *e)
{
	char when[64], name[64];

	if (cert->cert_type != KC_SSHCERT_TYPE_USER)
		return kc_seterr(e, "a host certificate; only a user certificate stands for a user"), 1;
	if (now < 0 || (uint64_t)now < cert->valid_after) {
		format_when(cert->valid_after, when, sizeof(when));
		return kc_seterr(e, "not valid before %s", when), 1;
	}
	if ((uint64_t)now >= cert->valid_before) {
		format_when(cert->valid_before, when, sizeof(when));
		return kc_seterr(e, "expired at %s", when), 1;
	}
	for (size_t i = 0; i < cert->n_critical; i++) {
		if (known_critical(cert->critical[i].name))
			continue;
		printable(cert->critical[i].name, name, sizeof(name));
		return kc_seterr(e, "it carries critical option \"%s\", which sshd does not know and refuses", name), 1;
	}
	if (cert->n_principals == 0)
		return kc_seterr(e, "it lists no principals; OpenSSH refuses such a certificate"), 1;
	return 0;
}

static int grant(struct kc_sshcert_verdict *v, const char *principal)
{
	char **p = realloc(v->principals, (v->n_principals + 1) * sizeof(*p));

	if (!p)
		return -1;
	v->principals = p;
	if (!(p[v->n_principals] = strdup(principal)))
		return -1;
	v->n_principals++;
	return 0;
}

static int check_principals(const struct kc_sshcert *cert, const struct kc_sshcert_policy *policy, const char *user,
			    struct kc_sshcert_verdict *v, struct kc_err *e)
{
	kc_autobuf struct kc_buf text = { 0 };
	char path[4096], list[320], who[64];
	bool listed[KC_SSHCERT_MAX_PRINCIPALS] = { false }, own_name = false;

	printable(user, who, sizeof(who));
	for (size_t i = 0; i < cert->n_principals; i++)
		own_name |= strcmp(cert->principals[i], user) == 0;
	if (policy->principals_file) {
		if (kc_sshcert_principals_path(policy->principals_file, user, path, sizeof(path), e) < 0 ||
		    kc_read_root_file(path, KC_SSHCERT_CA_FILE_MAX, 022, false, &text, e) < 0)
			return kc_seterr(e, "no authorized principals for %s: %s", who, e->msg), 1;
		if (file_lists(&text, cert, listed) < 0)
			return kc_seterr(e, "out of memory"), -1;
	}
	/* Without a file, sshd let the user in on their own name: then every principal is theirs. */
	for (size_t i = 0; i < cert->n_principals; i++)
		if ((policy->principals_file ? listed[i] : own_name) && grant(v, cert->principals[i]) < 0)
			return kc_seterr(e, "out of memory"), -1;
	if (v->n_principals > 0)
		return 0;
	principal_list(cert, list, sizeof(list));
	if (policy->principals_file)
		return kc_seterr(e, "none of its principals (%s) is listed for %s in %s", list, who, path), 1;
	return kc_seterr(e, "%s is not among its principals (%s)", who, list), 1;
}

void kc_sshcert_verdict_free(struct kc_sshcert_verdict *verdict)
{
	for (size_t i = 0; i < verdict->n_principals; i++)
		free(verdict->principals[i]);
	free(verdict->principals);
	verdict->principals = NULL;
	verdict->n_principals = 0;
}

bool kc_sshcert_authorized(const struct kc_sshcert_verdict *verdict, const char *principal)
{
	for (size_t i = 0; i < verdict->n_principals; i++)
		if (strcmp(verdict->principals[i], principal) == 0)
			return true;
	return false;
}

int kc_sshcert_check(const struct kc_sshcert *cert, const struct kc_sshcert_policy *policy, time_t now,
		     const char *user, struct kc_sshcert_verdict *verdict, struct kc_err *why)
{
	char id[96];
	struct kc_err e;
	int rc;

	memset(verdict, 0, sizeof(*verdict));
	rc = check_signer(cert, policy, &e);
	if (rc != 0)
		return kc_seterr(why, "certificate: %s", e.msg), rc;
	/* Signed by a trusted CA: what it says may now be quoted. */
	printable(cert->key_id, id, sizeof(id));
	rc = check_claims(cert, now, &e);
	if (rc == 0)
		rc = check_principals(cert, policy, user, verdict, &e);
	if (rc != 0) {
		kc_sshcert_verdict_free(verdict);
		kc_seterr(why, "certificate \"%s\" (serial %llu): %s", id, (unsigned long long)cert->serial, e.msg);
	}
	return rc;
}

/* The certificate a login came with (see logincert.h). */
#include "lifecycle/logincert.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/pamstack.h"

/* stdin to its end, at most KC_SSHCERT_AUTHINFO_MAX, never past the deadline. */
static int read_stdin(long long deadline_ms, struct kc_buf *out)
{
	char chunk[4096];

	for (;;) {
		long long left = deadline_ms - kc_now_ms();
		struct pollfd p = { 0, POLLIN, 0 };
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0) {
			if (left > 0 && errno == EINTR)
				continue;
			return -1;
		}
		if (!p.revents)
			continue;
		n = read(0, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		if (out->len + (size_t)n > KC_SSHCERT_AUTHINFO_MAX || kc_buf_append(out, chunk, (size_t)n) < 0)
			return -1;
	}
}

static void record(struct kc_login_cert *c, const struct kc_sshcert_verdict *v)
{
	struct kc_session_cert *r = &c->rec;

	r->present = true;
	snprintf(r->key_id, sizeof(r->key_id), "%s", c->cert->key_id);
	r->serial = c->cert->serial;
	r->valid_before = c->cert->valid_before > (uint64_t)INT64_MAX / 2 ? (time_t)(INT64_MAX / 2)
									  : (time_t)c->cert->valid_before;
	kc_sshcert_ca_fingerprint(c->cert, r->ca);
	for (size_t i = 0; i < v->n_principals && r->n_principals < KC_CERT_PRINCIPALS_MAX; i++)
		snprintf(r->principals[r->n_principals++], KC_CERT_PRINCIPAL_LEN, "%s", v->principals[i]);
}

/* The first certificate of the value that passes the check. */
static void judge(const struct kc_access *a, const char *user, const struct kc_buf *text, struct kc_login_cert *c)
{
	struct kc_sshcert_blob *blobs = NULL;
	size_t n = 0;
	struct kc_err e = { "" };

	if (kc_sshcert_authinfo(text->data, text->len, &blobs, &n, &e) < 0) {
		kc_warn("user %s: SSH_AUTH_INFO_0 is not what sshd writes (%s); no certificate counts", user, e.msg);
		return;
	}
	for (size_t i = 0; i < n && !c->cert; i++) {
		struct kc_sshcert *cert = NULL;
		struct kc_sshcert_verdict v;

		if (kc_sshcert_parse(blobs[i].data, blobs[i].len, &cert, &e) != 0) {
			kc_warn("user %s: a certificate of this login cannot be read: %s", user, e.msg);
			continue;
		}
		if (kc_access_check_cert(a, cert, user, &v, &e) == 0) {
			c->cert = cert;
			record(c, &v);
		} else {
			kc_warn("user %s: %s; it does not count", user, e.msg);
			kc_sshcert_free(cert);
		}
		kc_sshcert_verdict_free(&v);
	}
	kc_sshcert_blobs_free(blobs, n);
}

void kc_login_cert_read(const struct kc_access *a, const char *user, const char *service, long long deadline_ms,
			struct kc_login_cert *c)
{
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_err why = { "" };

	memset(c, 0, sizeof(*c));
	if (read_stdin(deadline_ms, &text) < 0) {
		kc_warn("user %s: SSH_AUTH_INFO_0 could not be read from the module; no certificate counts", user);
		return;
	}
	if (!text.len || !a->cfg->ssh_ca_keys)
		return;
	/* A value the user may have written: believed only when sshd's is what we read. */
	if (kc_pamstack_check("/", service && *service ? service : "sshd", &why) != 0) {
		kc_warn("user %s: SSH_AUTH_INFO_0 ignored: %s", user, why.msg);
		return;
	}
	judge(a, user, &text, c);
	if (c->cert)
		kc_debug("user %s: certificate \"%s\" (serial %llu) of %s accepted", user, c->rec.key_id, c->rec.serial,
			 c->rec.ca);
}

void kc_login_cert_free(struct kc_login_cert *c)
{
	kc_sshcert_free(c->cert);
	memset(c, 0, sizeof(*c));
}

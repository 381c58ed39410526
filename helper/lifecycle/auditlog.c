/* The audit lines (see lifecycle/auditlog.h). */

#include "lifecycle/auditlog.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

/* A value as one word: printable, no spaces or commas (lists use commas). */
static const char *word(const char *in, char *out, size_t len)
{
	size_t i;

	if (!in || !*in)
		return "-";
	for (i = 0; in[i] && i + 1 < len; i++)
		out[i] = isgraph((unsigned char)in[i]) && in[i] != ',' ? in[i] : '?';
	out[i] = '\0';
	return out;
}

static void now_str(char out[32])
{
	kc_format_time(time(NULL), out, 32);
}

void kc_audit_login(const char *user, uid_t uid, const struct kc_session_record *r)
{
	char t[32], a[300], b[100], c[100];

	now_str(t);
	kc_audit("login user=%s uid=%u session=%s rhost=%s service=%s tty=%s time=%s", user, (unsigned)uid, r->id,
		 word(r->rhost, a, sizeof(a)), word(r->service, b, sizeof(b)), word(r->tty, c, sizeof(c)), t);
}

void kc_audit_logout(const char *user, uid_t uid, const char *session)
{
	char t[32];

	now_str(t);
	kc_audit("logout user=%s uid=%u session=%s time=%s", user, (unsigned)uid, session, t);
}

static void list(const struct kc_session_record *s, size_t n, bool rhosts, struct kc_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char w[300];

		if (i)
			kc_buf_puts(out, ",");
		kc_buf_puts(out, rhosts ? word(s[i].rhost, w, sizeof(w)) : s[i].id);
	}
	if (!out->len)
		kc_buf_puts(out, "-");
}

void kc_audit_mint(const char *user, uid_t uid, const char *cluster, const char *ns, const char *sa,
		   const struct kc_minted *m, long asked, const char *reason, const struct kc_session_record *sessions,
		   size_t n_sessions)
{
	kc_autobuf struct kc_buf ids = { 0 }, hosts = { 0 };
	char t[32], when[32], life[32], want[32], jti[160], id[16] = "-";

	now_str(t);
	kc_format_time(m->expiry, when, sizeof(when));
	kc_format_duration(m->lifetime, life, sizeof(life));
	kc_format_duration(asked, want, sizeof(want));
	list(sessions, n_sessions, false, &ids);
	list(sessions, n_sessions, true, &hosts);
	if (user)
		snprintf(id, sizeof(id), "%u", (unsigned)uid);
	kc_audit("mint user=%s uid=%s cluster=%s serviceaccount=%s/%s jti=%s expires=%s lifetime=%s reason=%s "
		 "sessions=%s rhosts=%s time=%s%s%s",
		 user ? user : "-", id, cluster, ns, sa, word(m->jti, jti, sizeof(jti)), when, life, reason, ids.data,
		 hosts.data, t, m->shortened ? " shortened-from=" : "", m->shortened ? want : "");
}

void kc_audit_revoke(const char *user, uid_t uid, const char *cluster, const char *ns, const char *secret,
		     const char *reason)
{
	char t[32];

	now_str(t);
	kc_audit("revoke user=%s uid=%u cluster=%s secret=%s/%s reason=%s time=%s", user ? user : "-", (unsigned)uid,
		 cluster, ns, secret, reason, t);
}

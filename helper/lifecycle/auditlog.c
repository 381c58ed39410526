/* The audit lines (see lifecycle/auditlog.h). */

#include "lifecycle/auditlog.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "lifecycle/ledger.h"

/* A line written after what it records waits this long for the ledger's lock at most. */
#define AFTER_WAIT_MS 1000

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

/* A line after the fact: written, or said in the log as lost. */
static void note(const struct kc_ledger_entry *e)
{
	struct kc_err err = { "" };

	if (kc_ledger_append(e, kc_now_ms() + AFTER_WAIT_MS, &err) == 0)
		return;
	kc_warn("ledger: a %s line is lost (user=%s cluster=%s secret=%s jti=%s): %s", kc_ledger_event_name(e->event),
		e->user ? e->user : "-", e->cluster ? e->cluster : "-", e->secret ? e->secret : "-",
		e->jti ? e->jti : "-", err.msg);
}

void kc_audit_login(const char *user, uid_t uid, const struct kc_session_record *r)
{
	char t[32], a[300], b[100], c[100];
	struct kc_ledger_session s = { r->id, r->rhost[0] ? r->rhost : NULL };
	json_t *detail = json_object();
	struct kc_ledger_entry e = {
		.event = KC_LEDGER_LOGIN, .user = user, .uid = uid, .sessions = &s, .n_sessions = 1, .unsynced = true
	};

	now_str(t);
	kc_audit("login user=%s uid=%u session=%s rhost=%s service=%s tty=%s time=%s", user, (unsigned)uid, r->id,
		 word(r->rhost, a, sizeof(a)), word(r->service, b, sizeof(b)), word(r->tty, c, sizeof(c)), t);
	if (detail && r->service[0])
		json_object_set_new(detail, "service", json_string(word(r->service, b, sizeof(b))));
	if (detail && r->tty[0])
		json_object_set_new(detail, "tty", json_string(word(r->tty, c, sizeof(c))));
	e.detail = detail;
	note(&e);
	json_decref(detail);
}

void kc_audit_logout(const char *user, uid_t uid, const char *session)
{
	char t[32];
	struct kc_ledger_session s = { session, NULL };
	struct kc_ledger_entry e = {
		.event = KC_LEDGER_LOGOUT, .user = user, .uid = uid, .sessions = &s, .n_sessions = 1, .unsynced = true
	};

	now_str(t);
	kc_audit("logout user=%s uid=%u session=%s time=%s", user, (unsigned)uid, session, t);
	note(&e);
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

/* ---- the ledger's lines -------------------------------------------------------------- */

static enum kc_ledger_event mint_event(const char *reason)
{
	if (reason && strcmp(reason, "rotation") == 0)
		return KC_LEDGER_ROTATION;
	if (reason && strcmp(reason, "remap") == 0)
		return KC_LEDGER_REMAP;
	return KC_LEDGER_MINT;
}

int kc_audit_ledger_mint(const char *user, uid_t uid, const char *cluster, const char *ns, const char *sa,
			 const char *secret, const struct kc_minted *m, long asked, const char *reason,
			 const struct kc_session_record *sessions, size_t n_sessions, long long deadline_ms,
			 struct kc_err *err)
{
	struct kc_ledger_session *s = calloc(n_sessions + 1, sizeof(*s));
	char account[600], bound[200];
	json_t *detail = json_object();
	struct kc_ledger_entry e = { .event = mint_event(reason),
				     .user = user,
				     .uid = uid,
				     .cluster = cluster,
				     .jti = m->jti[0] ? m->jti : NULL,
				     .exp = m->expiry,
				     .reason = reason };
	int rc;

	if (!s || !detail) {
		free(s);
		json_decref(detail);
		return kc_seterr(err, "ledger: out of memory"), -1;
	}
	for (size_t i = 0; i < n_sessions; i++)
		s[i] = (struct kc_ledger_session){ sessions[i].id, sessions[i].rhost[0] ? sessions[i].rhost : NULL };
	e.sessions = s;
	e.n_sessions = n_sessions;
	snprintf(account, sizeof(account), "%s/%s", ns, sa);
	e.serviceaccount = account;
	if (secret && *secret) {
		snprintf(bound, sizeof(bound), "%s/%s", ns, secret);
		e.secret = bound;
	}
	json_object_set_new(detail, "lifetime", json_integer(m->lifetime));
	if (m->shortened)
		json_object_set_new(detail, "shortened_from", json_integer(asked));
	e.detail = detail;
	rc = kc_ledger_append(&e, deadline_ms, err);
	json_decref(detail);
	free(s);
	return rc;
}

static void grant_entry(struct kc_ledger_entry *e, const char *user, uid_t uid, const char *cluster,
			const struct kc_grant *g, char account[600], char bound[200])
{
	e->user = user;
	e->uid = uid;
	e->cluster = cluster;
	if (g->sa_name[0]) {
		snprintf(account, 600, "%s/%s", g->sa_namespace, g->sa_name);
		e->serviceaccount = account;
	}
	if (g->secret[0]) {
		snprintf(bound, 200, "%s/%s", g->sa_namespace, g->secret);
		e->secret = bound;
	}
	e->jti = g->jti[0] ? g->jti : NULL; /* the last token bound to it */
}

void kc_audit_revoked(const char *user, uid_t uid, const char *cluster, const struct kc_grant *g, bool expired,
		      const char *reason)
{
	char account[600], bound[200];
	struct kc_ledger_entry e = { .event = KC_LEDGER_REVOKE, .reason = reason };
	json_t *detail = expired ? json_pack("{s:b}", "expired", 1) : NULL;

	kc_audit_revoke(user, uid, cluster, g->sa_namespace, g->secret, reason);
	grant_entry(&e, user, uid, cluster, g, account, bound);
	e.detail = detail;
	note(&e);
	json_decref(detail);
}

void kc_audit_revoke_failed(const char *user, uid_t uid, const char *cluster, const struct kc_grant *g,
			    const char *error)
{
	char account[600], bound[200];
	struct kc_ledger_entry e = { .event = KC_LEDGER_REVOKE_FAILED, .reason = "pending" };
	json_t *detail = error && *error ? json_pack("{s:s}", "error", error) : NULL;

	grant_entry(&e, user, uid, cluster, g, account, bound);
	e.detail = detail;
	note(&e);
	json_decref(detail);
}

void kc_audit_cut(const char *user, uid_t uid, const char *cluster, unsigned connections)
{
	struct kc_ledger_entry e = { .event = KC_LEDGER_CUT, .user = user, .uid = uid, .cluster = cluster };
	json_t *detail = json_pack("{s:i}", "connections", (int)connections);

	kc_audit("cut uid=%u cluster=%s connections=%u", (unsigned)uid, cluster, connections);
	e.detail = detail;
	note(&e);
	json_decref(detail);
}

void kc_audit_lock(const char *user, uid_t uid, const char *cluster, bool locked, time_t until, const char *by)
{
	char t[32], u[32] = "-";
	struct kc_ledger_entry e = {
		.event = locked ? KC_LEDGER_LOCK : KC_LEDGER_UNLOCK, .user = user, .uid = uid, .cluster = cluster
	};
	json_t *detail = json_object();

	now_str(t);
	if (until)
		kc_format_time(until, u, sizeof(u));
	kc_audit("%s user=%s cluster=%s until=%s by=%s time=%s", locked ? "lock" : "unlock", user ? user : "-",
		 cluster ? cluster : "*", u, by ? by : "-", t);
	if (detail && until)
		json_object_set_new(detail, "until", json_string(u));
	if (detail && by)
		json_object_set_new(detail, "by", json_string(by));
	e.detail = detail;
	note(&e);
	json_decref(detail);
}

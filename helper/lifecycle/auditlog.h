/* The audit trail: one syslog line (LOG_AUTHPRIV) per login, logout, mint and
 * revocation, space-separated key=value with no spaces inside a value, "-" for
 * unknown, times in RFC 3339 UTC. `pam-kubeconfig audit` reads these lines
 * back and joins them with the API server's audit log on the token's jti:
 *   login user=U uid=N session=ID rhost=H service=S tty=T time=T
 *   logout user=U uid=N session=ID time=T
 *   mint user=U uid=N cluster=C serviceaccount=NS/SA jti=J expires=T lifetime=D
 *        reason=login|rotation|remap|check sessions=ID,ID rhosts=H,H time=T [shortened-from=D]
 *   revoke user=U uid=N cluster=C secret=NS/NAME reason=WORDS time=T
 * reason=check: `check --online` minted a short token to ask the API server
 * what a mapped ServiceAccount may do; no user (user=- uid=-), no session.
 * No line ever holds a token, key, signature or presigned URL.
 * The writer is lifecycle/auditlog.c; the reader, admin/audit.c. */
#ifndef KC_AUDITLOG_H
#define KC_AUDITLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kube/tokens.h"
#include "lifecycle/state.h"

#define KC_AUDIT_TAG "pam-kubeconfig" /* the syslog tag (kc_log_init) */

void kc_audit_login(const char *user, uid_t uid, const struct kc_session_record *r);
void kc_audit_logout(const char *user, uid_t uid, const char *session);
/* sessions: the live login sessions the token serves. user NULL: no user. */
void kc_audit_mint(const char *user, uid_t uid, const char *cluster, const char *ns, const char *sa,
		   const struct kc_minted *m, long asked, const char *reason, const struct kc_session_record *sessions,
		   size_t n_sessions);
void kc_audit_revoke(const char *user, uid_t uid, const char *cluster, const char *ns, const char *secret,
		     const char *reason);

/* The root ledger (lifecycle/ledger.h) beside those lines. A mint's line is
 * written before its token is handed out: -1 (err set; the ledger's errno
 * kept) means it must not be. user NULL: no user (a `check` mint). */
int kc_audit_ledger_mint(const char *user, uid_t uid, const char *cluster, const char *ns, const char *sa,
			 const char *secret, const struct kc_minted *m, long asked, const char *reason,
			 const struct kc_session_record *sessions, size_t n_sessions, long long deadline_ms,
			 struct kc_err *err);
/* What is written after the fact never waits on the ledger for long, and a
 * line that cannot be written is said in the log as lost (what it would have
 * said, never a secret): a full disk stops mints, never revocations or cuts.
 * kc_audit_login() and kc_audit_logout() write theirs too. */
void kc_audit_revoked(const char *user, uid_t uid, const char *cluster, const struct kc_grant *g, bool expired,
		      const char *reason);
void kc_audit_revoke_failed(const char *user, uid_t uid, const char *cluster, const struct kc_grant *g,
			    const char *error);
/* Connections cut (also the cut's syslog line). user NULL: not known. */
void kc_audit_cut(const char *user, uid_t uid, const char *cluster, unsigned connections);
/* An administrator's lock on a user (cluster NULL: every cluster), or its
 * lifting (locked false); until 0: until unlocked; by: who. */
void kc_audit_lock(const char *user, uid_t uid, const char *cluster, bool locked, time_t until, const char *by);

#endif

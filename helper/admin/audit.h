/* `pam-kubeconfig audit`: per Unix login, the API requests made with its
 * tokens, from the API server's audit log joined on the token's jti with the
 * records of who got which token. Those records come from what only root can
 * have written: the root ledger (lifecycle/ledger.h), by default; journal
 * entries (`journalctl -o export` or `-o json`) whose trusted fields say root
 * and this program (_UID=0, _EXE); and plain syslog text only when the
 * administrator says to trust it (--trust-syslog), since any local user can
 * write such lines with logger(1). One jti serving several sessions is one
 * record with a list of sessions; the same jti under two users or two hosts is
 * an error naming both, and its requests are attributed to neither. */
#ifndef KC_ADMIN_AUDIT_H
#define KC_ADMIN_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

struct kc_audit_args {
	const char *audit_log; /* the API server's (JSON lines, CloudWatch-wrapped too); required */
	const char *ledger; /* NULL: the ledger this host writes */
	const char *journal; /* NULL: none */
	const char *trust_syslog; /* NULL: none */
	const char *exe; /* the _EXE journal entries must name; NULL: this program's own path */
	bool json;
};

/* Exit status: 0 printed; 1 printed, but some jti is recorded for two users
 * or hosts (named on stderr and in the report); 2 usage or unreadable input. */
int kc_cmd_audit(const struct kc_audit_args *a);

/* The kind of a syslog audit line given its message (the text after the tag),
 * KC_AUDIT_NONE for any other line. */
enum kc_audit_kind { KC_AUDIT_NONE, KC_AUDIT_LOGIN, KC_AUDIT_LOGOUT, KC_AUDIT_MINT, KC_AUDIT_REVOKE };
enum kc_audit_kind kc_audit_line_kind(const char *msg);
/* The value of key= in msg, copied into out ("-" stays "-": unknown); false if
 * the key is absent or its value does not fit. */
bool kc_audit_line_value(const char *msg, const char *key, char *out, size_t len);

#endif

/* `pam-kubeconfig audit`: per Unix login, the API requests made with its
 * tokens. It reads back the audit lines lifecycle/auditlog.h writes. */
#ifndef KC_ADMIN_AUDIT_H
#define KC_ADMIN_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

/* The API server's audit log (JSON lines) joined with the mint log (syslog
 * lines or journal export) on the token's credential id. */
int kc_cmd_audit(const char *audit_log, const char *mint_log);

/* The kind of a line given its message (the text after the syslog tag),
 * KC_AUDIT_NONE for any other line. */
enum kc_audit_kind { KC_AUDIT_NONE, KC_AUDIT_LOGIN, KC_AUDIT_LOGOUT, KC_AUDIT_MINT, KC_AUDIT_REVOKE };
enum kc_audit_kind kc_audit_line_kind(const char *msg);
/* The value of key= in msg, copied into out ("-" stays "-": unknown); false if
 * the key is absent or its value does not fit. */
bool kc_audit_line_value(const char *msg, const char *key, char *out, size_t len);

#endif

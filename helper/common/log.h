/* Where the helper's words go: diagnostics to stderr (the module relays them to
 * pam_syslog), one audit line per mint to syslog authpriv. Never a secret. */
#ifndef KC_LOG_H
#define KC_LOG_H

#include <stdbool.h>

void kc_log_init(bool debug);
void kc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kc_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kc_audit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

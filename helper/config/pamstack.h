/* Whether SSH_AUTH_INFO_0 reaches pam_kubeconfig.so as sshd set it: sshd
 * writes it into the PAM environment just before pam_open_session(), and a
 * pam_env.so session line with user_readenv=1 that runs before ours lets the
 * user overwrite it from ~/.pam_environment. The service's session stack is
 * read as libpam (with Debian's @include) reads it. */
#ifndef KC_CONFIG_PAMSTACK_H
#define KC_CONFIG_PAMSTACK_H

#include "common/util.h"

#define KC_PAMSTACK_FILE_MAX (1u << 20) /* one PAM configuration file */
#define KC_PAMSTACK_MAX_FILES 64 /* files read for one service, includes counted */
#define KC_PAMSTACK_MAX_DEPTH 16 /* libpam's PAM_SUBSTACK_MAX_LEVEL */

/* Reads ROOT/etc/pam.d/SERVICE (else ROOT/usr/lib/pam.d/SERVICE, else the
 * "other" service, as libpam falls back), following @include, include and
 * substack, and checks the session stack: every pam_kubeconfig.so line must
 * come before every pam_env.so line with user_readenv on (pam_env's default
 * is off). root is "/" on a real system, a directory in tests; the files must
 * be root-owned and not group/world-writable (no symlinks), as the config is.
 * Returns 0 when the order is right; 1 when it is wrong or no pam_kubeconfig.so
 * session line is there (why names the file:line that runs pam_env first, and
 * what to do); -1 when it cannot tell (a file unreadable, includes too deep or
 * too many; why says which). Only 0 lets the helper believe SSH_AUTH_INFO_0. */
int kc_pamstack_check(const char *root, const char *service, struct kc_err *why);

#endif

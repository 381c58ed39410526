/* The SSH certificate of a session being opened: sshd's SSH_AUTH_INFO_0, which
 * the module read with pam_getenv and hands over on stdin, believed only when
 * no pam_env with user_readenv runs before the module in the service's
 * session stack (config/pamstack.h), and then only a certificate that passes
 * the check (lifecycle/access.h). Anything else is "no certificate". */
#ifndef KC_LIFECYCLE_LOGINCERT_H
#define KC_LIFECYCLE_LOGINCERT_H

#include "config/sshcert.h"
#include "lifecycle/access.h"
#include "lifecycle/state.h"

struct kc_login_cert {
	struct kc_sshcert *cert; /* NULL: none accepted */
	struct kc_session_cert rec; /* what the session record says of it */
};

/* Reads stdin (until EOF or deadline_ms) and judges what it names. */
void kc_login_cert_read(const struct kc_access *a, const char *user, const char *service, long long deadline_ms,
			struct kc_login_cert *c);
void kc_login_cert_free(struct kc_login_cert *c);

#endif

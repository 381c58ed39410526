/* open and close: what the module runs at a login and at its logout. Each
 * returns the process exit status (kc_protocol.h). */
#ifndef KC_LIFECYCLE_LOGIN_H
#define KC_LIFECYCLE_LOGIN_H

#include <stdbool.h>
#include <sys/types.h>

#include "kc_protocol.h"

struct kc_session_args {
	const char *user;
	const char *session;
	const char *config;
	const char *rhost;
	const char *tty;
	const char *service;
	pid_t pid; /* the session's process; 0: the helper's parent */
	uid_t uid; /* close: the uid the module resolved at open (--uid); 0: not given */
	long deadline_ms; /* what is left of the module's timeout; 0: not given */
	bool auth_info; /* open: stdin holds sshd's SSH_AUTH_INFO_0, as the module read it (--auth-info -) */
};

int kc_cmd_open(const struct kc_session_args *a);
int kc_cmd_close(const struct kc_session_args *a);

#endif

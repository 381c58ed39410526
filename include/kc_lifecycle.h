/* The helper's commands that change state: open and close (called by the
 * module), refresh and gc (timers). Each returns the process exit status. */
#ifndef KC_LIFECYCLE_H
#define KC_LIFECYCLE_H

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
};

int kc_cmd_open(const struct kc_session_args *a);
int kc_cmd_close(const struct kc_session_args *a);
int kc_cmd_refresh(const char *config);
int kc_cmd_gc(const char *config);

#endif

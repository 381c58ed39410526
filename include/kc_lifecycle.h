/* The helper's commands that change state: open and close (called by the
 * module), refresh and gc (timers). Each returns the process exit status
 * (kc_protocol.h). */
#ifndef KC_LIFECYCLE_H
#define KC_LIFECYCLE_H

#include <stdbool.h>
#include <sys/types.h>

#include "kc_protocol.h"

/* How long refresh and gc may take as a whole, and each user's share (the
 * systemd units' TimeoutStartSec= lies above the first). */
#define KC_REFRESH_DEADLINE_MS 45000
#define KC_GC_DEADLINE_MS 240000
#define KC_USER_DEADLINE_MS 15000

struct kc_session_args {
	const char *user;
	const char *session;
	const char *config;
	const char *rhost;
	const char *tty;
	const char *service;
	pid_t pid; /* the session's process; 0: the helper's parent */
	long deadline_ms; /* what is left of the module's timeout; 0: not given */
};

int kc_cmd_open(const struct kc_session_args *a);
int kc_cmd_close(const struct kc_session_args *a);
/* now_user: rotate that user's tokens at once (refresh --now USER). */
int kc_cmd_refresh(const char *config, const char *now_user, long deadline_ms);
int kc_cmd_gc(const char *config, long deadline_ms);

/* The root helper may not dump core nor be traced by the user: it holds the
 * minter's credentials. */
void kc_harden_process(void);

#endif

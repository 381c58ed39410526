/* Inside the module only: start the helper safely, bounded by a deadline. */
#ifndef KC_RUN_HELPER_H
#define KC_RUN_HELPER_H

#include <stdbool.h>
#include <stddef.h>

#define KC_HELPER_OUTPUT_MAX (64u << 10)

struct kc_helper_result {
	int exit_status; /* 0..255, or -1 when killed, timed out or not started */
	bool timed_out;
	char out[KC_HELPER_OUTPUT_MAX + 1]; /* stdout */
	char err[KC_HELPER_OUTPUT_MAX + 1]; /* stderr */
};

/* Runs path with argv (argv[0] included) in a new process group, a fixed
 * environment, fds 0-2 only (stdin: input, or /dev/null when NULL), SIGCHLD at
 * default while waiting. After timeout_ms the whole group is killed and
 * reaped. Returns 0 when it ran (see exit_status), -1 when it could not be
 * started (why in res->err). */
int kc_run_helper(const char *path, const char *const argv[], const char *input, int timeout_ms,
		  struct kc_helper_result *res);

/* OpenSSH's safe_path: absolute, and the file and every directory above it owned
 * by root and not writable by group or others. */
int kc_safe_helper_path(const char *path, char *why, size_t len);

#endif

/* Running another program with a deadline, the one way the project does it
 * (the module runs the helper; the helper runs credential_process): a fixed environment, stdin from the caller's bytes
 * or /dev/null, nothing else inherited (fds 3 and up closed, signals at their defaults, a process group of its own),
 * its output collected up to a cap, and at the deadline the whole group killed and reaped. libc only: the module links
 * this file too, and the module links nothing but libc and libpam. */
#ifndef KC_COMMON_SUBPROCESS_H
#define KC_COMMON_SUBPROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kc_subprocess {
	const char *path; /* the program, an absolute path (never searched) */
	char *const *argv; /* argv[0] included */
	char *const *envp; /* NULL: PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C */
	const void *input; /* written to its stdin, then closed (at most 64 KiB); NULL: /dev/null */
	size_t input_len;
	int timeout_ms; /* from the call; the group is killed at it */
};

/* What it printed, into the caller's buffers (each NUL-terminated; *_cap
 * counts that byte). Output beyond a buffer is dropped and flagged. */
struct kc_subprocess_output {
	char *out;
	size_t out_cap, out_len;
	bool out_overflow;
	char *err;
	size_t err_cap, err_len;
	bool err_overflow;
};

struct kc_subprocess_result {
	int exit_status; /* 0..255, or -1 when it was killed, timed out or not started */
	bool timed_out;
	int error; /* errno of what kept it from starting (pipe, fork), 0 if it ran */
};

/* Runs it and waits for its end, its output's end and its exit, but never past
 * the timeout. SIGCHLD is at its default meanwhile (the caller may ignore or
 * catch it). Returns 0 when it ran (see res), -1 when it could not be started
 * (res->error). The buffers chunks pass through are wiped: output may be a
 * secret. */
int kc_subprocess_run(const struct kc_subprocess *p, struct kc_subprocess_output *o, struct kc_subprocess_result *res);

/* Waits for a child of ours to end, until deadline_ms (CLOCK_MONOTONIC
 * milliseconds, as kc_now_ms()), and reaps it. Woken the moment it ends (a
 * pidfd), not at a polling tick. 0 ended (*status, when not NULL, as
 * waitpid() sets it), -1 still running at the deadline (or not our child). */
int kc_subprocess_wait(pid_t pid, long long deadline_ms, int *status);

#endif

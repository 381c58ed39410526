/* What every privileged command does to its own process before anything else:
 * no core dump and no tracing by the user (it holds the helper's
 * credentials), limits it can work within, and signals that cannot cut a
 * write short. */
#ifndef KC_COMMON_PROCESS_H
#define KC_COMMON_PROCESS_H

/* Not dumpable, no core; file size unlimited, at least 1,024 fds (root with
 * CAP_SYS_RESOURCE lifts hard limits too; without it, the soft limits go up to
 * the hard ones); SIGPIPE and SIGXFSZ ignored. */
void kc_process_harden(void);

#endif

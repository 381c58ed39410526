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

/* The memory of argv (argc strings from argv[0]), which ps reads as the
 * command line; kc_process_set_title() writes over it. */
void kc_process_title_area(int argc, char **argv);

/* What ps shows as the command line from now on: the words, as far as the
 * area holds them. Nothing in argv may be read after. */
void kc_process_set_title(const char *const *words);

#endif

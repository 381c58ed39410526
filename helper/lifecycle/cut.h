/* Cutting a user's TCP connections to a cluster's API server when their token
 * there is revoked (sock_diag SOCK_DESTROY, as `ss -K`): a revoked token stops
 * new requests, not streams already open. At the revocation, under the
 * user's lock for the cluster: (1) unless the user holds a token there still
 * (a remap), their new connections to those addresses are refused while the
 * API server may still accept the revoked token from its ~10 s
 * authentication cache (lifecycle/refuse.h); (2) what is open is cut; (3) a
 * child the process forks when its command is over (shown by ps as
 * `pam-kubeconfig cut UID`) cuts again KC_CUT_AGAIN_AFTER seconds later,
 * whatever happened meanwhile, unless the uid belongs to another account by
 * then (a run of refresh or gc: one such child for all its users' turns).
 * A fork, not an exec: nothing to load again, and nothing of this process's
 * memory is readable to anyone but root (not dumpable). Connections through
 * an HTTP proxy are not seen. */
#ifndef KC_CUT_H
#define KC_CUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define KC_CUT_AGAIN_AFTER 11 /* the API server's authentication cache, and a second */

struct kc_cut {
	uid_t uid;
	const char *user; /* the account's name; NULL: not known */
	const char *cluster;
	const char *server; /* its URL, resolved again by the second cut */
	char (*addrs)[64]; /* "ip port" of every address the endpoint had (recorded), has, and is also reachable at */
	size_t n;
	int state_dir; /* the user's, whose cluster lock the caller holds */
	bool refuse; /* the user holds no token there any more */
	bool resolve; /* also by what the server's name resolves to now */
};

/* (1) and (2) within deadline_ms; (3) is owed. Logs what fails; never fails the caller. */
void kc_cut_user(const struct kc_cut *c, long long deadline_ms);

/* What this process's cuts and refusals leave when its command is over, done
 * by one detached child: (3) for every cut it made, and the close of its
 * nf_tables socket (lifecycle/refuse.h), which would keep the process from
 * exiting for a grace period. Called when no thread but the caller's is left;
 * returns at once (in the parent). Every process that ran jobs calls it
 * before it exits; it also adds the process's counts to the metrics store
 * (lifecycle/tally.h) before the child is forked. */
void kc_cut_finish(void);

/* A run of refresh or gc: one process, forked here (before the turns'
 * children), makes the second cuts of every turn; kc_cut_finish() in a turn's
 * child hands its own over to it. end: the run has forked its last child. */
void kc_cut_collect_begin(long long run_deadline_ms);
void kc_cut_collect_end(void);

#endif

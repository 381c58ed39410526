/* Refusing a revoked uid's new connections to an API server while the server
 * may still accept the revoked token (it caches a good authentication for
 * ~10 s): our nftables table (inet pam_kubeconfig) answers the uid's SYN to an
 * element of its refused sets ((uid, address, port), with a timeout) with a
 * reset. An element is added before the cut and goes by its own timeout, or
 * when a job that may mint a token on that cluster for the uid starts (a new
 * login must work at once), beside its requests (kc_job_run). Elements change
 * over netlink, on one socket per process; nft is run only to make the table
 * where it is missing.
 * Our records say what may stand (refused-<cluster> in the uid's state
 * directory), so nothing runs on an ordinary login. Where the kernel's
 * nf_tables is missing, nothing is refused and the second cut
 * (lifecycle/cut.h) is what catches a reconnect. */
#ifndef KC_LIFECYCLE_REFUSE_H
#define KC_LIFECYCLE_REFUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

#define KC_NFT "/usr/sbin/nft"
#define KC_NFT_TABLE "pam_kubeconfig"
/* The API server's authentication cache, and how long a refusal stands. */
#define KC_AUTH_CACHE_S 10
#define KC_REFUSE_S (KC_AUTH_CACHE_S + 2)

/* Refuses uid's new TCP connections to addrs ("ip port" each) for
 * KC_REFUSE_S, and records it in dir. Within deadline_ms; 0, or -1 (err set). */
int kc_refuse_add(int dir, const char *cluster, uid_t uid, char (*addrs)[64], size_t n, long long deadline_ms,
		  struct kc_err *err);

/* Does a record of a refusal on this cluster stand (one fstatat)? */
bool kc_refuse_stands(int dir, const char *cluster);
/* Lifts what kc_refuse_add() recorded for this cluster, if anything still
 * stands: once it returns, the uid's SYNs pass. */
void kc_refuse_lift(int dir, const char *cluster, uid_t uid, long long deadline_ms);

/* The process's netlink socket for nf_tables, now the caller's (-1: none was
 * opened). Its close waits for the kernel's RCU grace period after the last
 * transaction (5-20 ms), so a process with somewhere else to close it (a child
 * that outlives it) does that: kc_cut_finish(). */
int kc_refuse_socket_take(void);

/* For `check`: can this host refuse? 0 yes; -1 no, why set. */
int kc_refuse_supported(struct kc_err *why);

#endif

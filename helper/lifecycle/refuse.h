/* Refusing a revoked uid's new connections to an API server while the server
 * may still accept the revoked token (it caches a good authentication for
 * ~10 s): an nftables set of (uid, address, port) elements with a timeout,
 * matched by a rule of our own table (inet pam_kubeconfig) that answers the
 * uid's SYN with a reset. An element is added before the cut and goes by its
 * own timeout, or when the uid is granted a token on that cluster again (a
 * new login must work at once). Our records say when a uid has elements
 * (refused-<cluster> in its state directory), so nft runs only when there is
 * something to add or remove, never on an ordinary login. Where nft or the
 * kernel's nf_tables is missing, nothing is refused and the second cut
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

/* Lifts what kc_refuse_add() recorded for this cluster, if anything still
 * stands. One fstatat when nothing does. */
void kc_refuse_lift(int dir, const char *cluster, uid_t uid, long long deadline_ms);

/* For `check`: can this host refuse? 0 yes; -1 no, why set. */
int kc_refuse_supported(struct kc_err *why);

#endif

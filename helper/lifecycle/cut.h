/* Cutting a user's TCP connections to a cluster's API server when their token
 * there is revoked (sock_diag SOCK_DESTROY, as `ss -K`): a revoked token stops
 * new requests, not streams already open. Once at once, and again
 * KC_CUT_AGAIN_AFTER seconds later from a detached `pam-kubeconfig cut`: the
 * API server caches a good authentication for ~10 s, so a client that
 * reconnected at once got in. Connections through an HTTP proxy are not seen. */
#ifndef KC_CUT_H
#define KC_CUT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define KC_CUT_AGAIN_AFTER 11

/* addrs: "ip port" of every address the endpoint had (recorded), plus what
 * server resolves to now. Logs what it did; never fails the caller. */
void kc_cut_user(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64], size_t n);

/* The second cut, run detached: after `after` seconds, unless the user was
 * granted a token on the cluster since `since`, or the uid is no longer user's. */
int kc_cmd_cut(uid_t uid, const char *user, const char *cluster, const char *server, time_t since, int after,
	       char **addrs, size_t n);

#endif

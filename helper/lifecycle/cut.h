/* Cutting a user's TCP connections to a cluster's API server when their token
 * there is revoked (sock_diag SOCK_DESTROY, as `ss -K`): a revoked token stops
 * new requests, not streams already open. The revocation starts a detached
 * `pam-kubeconfig cut`, which (1) refuses the uid's new connections to those
 * addresses while the API server may still accept the token from its ~10 s
 * authentication cache (lifecycle/refuse.h; not when the uid holds a token
 * there again), (2) cuts what is open, and (3) cuts again
 * KC_CUT_AGAIN_AFTER seconds after the revocation, whatever happened
 * meanwhile, unless the uid now belongs to another account. Connections
 * through an HTTP proxy are not seen. */
#ifndef KC_CUT_H
#define KC_CUT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define KC_CUT_AGAIN_AFTER 11 /* the API server's authentication cache, and a second */

/* Starts the cut. addrs: "ip port" of every address the endpoint had
 * (recorded), has, and is also reachable at. Never fails the caller. */
void kc_cut_user(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64], size_t n);

/* The detached cut: refuse, cut, and at since + after cut again. */
int kc_cmd_cut(uid_t uid, const char *user, const char *cluster, const char *server, time_t since, int after,
	       char **addrs, size_t n);

#endif

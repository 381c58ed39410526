/* Cutting a user's open TCP connections to an API server when their access ends
 * (sock_diag SOCK_DESTROY, what `ss -K` does). Root side: needs CAP_NET_ADMIN. */
#ifndef KC_SOCKCUT_H
#define KC_SOCKCUT_H

#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

/* At most this many addresses per call (an endpoint's current addresses plus
 * every address it had since login). */
#define KC_SOCKCUT_MAX_ADDRS 64

/* One remote TCP endpoint. family is AF_INET (addr[0..3]) or AF_INET6 (addr[0..15]);
 * port in host order. An AF_INET6 address ::ffff:a.b.c.d is the same endpoint as
 * AF_INET a.b.c.d: either form matches a socket that sees its peer in either form. */
struct kc_endpoint_addr {
	int family;
	unsigned char addr[16];
	unsigned short port;
};

/* Resolves the host and port (443 when absent) of an https:// URL to every
 * address it has now, IPv4 and IPv6 (getaddrinfo; a literal needs no lookup).
 * On 0, *out holds *n >= 1 distinct addresses; caller frees *out with free().
 * -1 with err set: not an https:// URL, or the name does not resolve. */
int kc_endpoint_resolve(const char *url, struct kc_endpoint_addr **out, size_t *n, struct kc_err *err);

/* Destroys every TCP socket owned by uid (the uid that created it) whose remote
 * address and port is one of addrs[0..n), in this network namespace; its owner
 * sees ECONNABORTED, the peer a reset. It destroys while it walks the kernel's
 * table, in batches, and walks again until a walk finds none: no number of
 * sockets, the uid's or another's, stops it, only deadline_ms (the kc_now_ms()
 * clock). *cut is how many were destroyed, also on failure. -1 with err set when
 * netlink fails, when the kernel cannot destroy sockets (errno EOPNOTSUPP), the
 * caller may not (errno EPERM), or the deadline came first (ETIMEDOUT). */
int kc_sockcut(uid_t uid, const struct kc_endpoint_addr *addrs, size_t n, long long deadline_ms, unsigned *cut,
	       struct kc_err *err);

/* Whether this host can cut connections: destroys a loopback connection of its
 * own. 0 yes; -1 no, why set and errno telling apart a kernel built without
 * CONFIG_INET_DIAG_DESTROY (EOPNOTSUPP), a missing permission (EPERM, e.g. a
 * container without CAP_NET_ADMIN) and anything else. */
int kc_sockcut_supported(struct kc_err *why);

#endif

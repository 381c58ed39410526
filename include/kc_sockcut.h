/* INTERIM (replaced by the sock_diag work when it lands). */
#ifndef KC_SOCKCUT_H
#define KC_SOCKCUT_H

#include <stddef.h>
#include <sys/types.h>

#include "kc_util.h"

struct kc_endpoint_addr {
	int family;
	unsigned char addr[16];
	unsigned short port;
};

int kc_endpoint_resolve(const char *url, struct kc_endpoint_addr **out, size_t *n, struct kc_err *err);
int kc_sockcut(uid_t uid, const struct kc_endpoint_addr *addrs, size_t n, unsigned *cut, struct kc_err *err);
int kc_sockcut_supported(struct kc_err *why);

#endif

/* INTERIM, until the sock_diag work lands. */
#include "kc_sockcut.h"

int kc_endpoint_resolve(const char *url, struct kc_endpoint_addr **out, size_t *n, struct kc_err *err)
{
	(void)url, (void)err;
	*out = NULL;
	*n = 0;
	return 0;
}

int kc_sockcut(uid_t uid, const struct kc_endpoint_addr *addrs, size_t n, unsigned *cut, struct kc_err *err)
{
	(void)uid, (void)addrs, (void)n;
	*cut = 0;
	kc_seterr(err, "not built yet");
	return -1;
}

int kc_sockcut_supported(struct kc_err *why)
{
	kc_seterr(why, "not built yet");
	return -1;
}

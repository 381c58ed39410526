/* One HTTP(S) call for AWS endpoints (IMDS, STS, EKS). Cluster endpoints use
 * kc_kubeapi.h instead: there only the configured CA is ever trusted. */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "kc_util.h"

#define KC_HTTP_MAX (1u << 20)

struct kc_http_call {
	const char *method;
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value"; may hold secrets */
	const char *body;
	size_t body_len;
	const char *ca_file; /* trust this CA alone; NULL: the system store (public AWS endpoints) */
	bool plain_http; /* IMDS is plain HTTP on a link-local address */
	long connect_timeout_ms;
	long timeout_ms;
};

/* Never through a proxy, never follows redirects. Returns the HTTP status, or -1
 * (err set). resp is made a secret buffer. */
long kc_http(const struct kc_http_call *call, struct kc_buf *resp, struct kc_err *err);

#endif

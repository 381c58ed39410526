/* One HTTP(S) call for AWS endpoints (IMDS, container credentials, STS, EKS).
 * Cluster endpoints use kube/kubeapi.h instead: there only the configured CA is
 * ever trusted. */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

#define KC_HTTP_MAX (1u << 20)

/* What one AWS network step may take. */
struct kc_aws_budget {
	const char *ca_file; /* trust this CA alone (tests' stand-ins); NULL: the system store */
	long connect_timeout_ms; /* configured limits; 0: none */
	long timeout_ms;
	long long deadline_ms; /* absolute, as kc_now_ms(); 0: none */
};

struct kc_http_call {
	const char *method;
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value"; may hold secrets */
	const char *body;
	size_t body_len;
	const char *ca_file; /* trust this CA alone; NULL: the system store (public AWS endpoints) */
	bool allow_http; /* IMDS and container endpoints: plain HTTP on link-local or loopback */
	long connect_timeout_ms; /* configured limits; 0: none */
	long timeout_ms;
	long long deadline_ms; /* absolute, as kc_now_ms(); 0: none. Both limits are cut to what is left. */
};

/* Never through a proxy, never follows redirects, never past the deadline.
 * Returns the HTTP status, or -1 (err set: unreachable, out of time, too large).
 * resp is made a secret buffer. */
long kc_http(const struct kc_http_call *call, struct kc_buf *resp, struct kc_err *err);

/* min(limit, what is left until deadline_ms); limit 0 means none. Returns < 1
 * when the deadline has passed. */
long kc_http_budget(long limit_ms, long long deadline_ms);

#endif

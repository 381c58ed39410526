/* Where AWS services live, by partition: the one place that turns a region into
 * the STS or EKS host name (DNS suffix, FIPS and dual-stack variants, global or
 * regional STS) and into the partition that ARNs name. The table is generated
 * from botocore's data by tools/gen-aws-partitions (helper/aws_partitions.c). */
#ifndef KC_AWS_ENDPOINTS_H
#define KC_AWS_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

struct kc_aws_partition {
	const char *id; /* "aws-cn": the partition in ARNs */
	const char *dns_suffix; /* "amazonaws.com.cn" */
	const char *dualstack_dns_suffix; /* "api.amazonwebservices.com.cn" */
	const char *implicit_global_region;
	const char *region_regex; /* POSIX ERE */
	const char *const *regions; /* named regions, NULL-terminated */
	bool fips, dualstack; /* the partition has such endpoints */
};

/* A FIPS host name a service has in one partition instead of
 * {service}-fips.{region}.{dnsSuffix}; "{region}" and "{dnsSuffix}" are filled in. */
struct kc_aws_fips_host {
	const char *service, *partition, *host;
};

/* The generated table. */
extern const struct kc_aws_partition kc_aws_partitions[];
extern const size_t kc_aws_n_partitions;
extern const char *const kc_aws_sts_global_regions[]; /* legacy: sts.amazonaws.com */
extern const struct kc_aws_fips_host kc_aws_fips_hosts[];
extern const size_t kc_aws_n_fips_hosts;

/* Which endpoint of a service: as AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT
 * and AWS_STS_REGIONAL_ENDPOINTS=legacy choose them. */
struct kc_aws_variant {
	bool fips;
	bool dualstack;
	bool sts_legacy_global;
};

/* One resolved service endpoint. */
struct kc_aws_service_endpoint {
	char url[512]; /* what requests and tokens name: https://sts.cn-north-1.amazonaws.com.cn */
	char host[300]; /* the Host header signed: the url's host[:port] */
	char connect_url[512]; /* tests only: where the calls go instead ("": url) */
	char signing_region[64]; /* the credential scope's region */
	const char *partition; /* "aws-cn" */
};

/* The partition of a region as botocore finds it: a named region, then the
 * partitions' patterns in order, else "aws". Never NULL. */
const struct kc_aws_partition *kc_aws_partition_of(const char *region);

/* The endpoint of service ("sts" or "eks") in region. Returns 0, or -1 with err
 * set when the region is not a host label or the partition lacks the variant. */
int kc_aws_resolve(const char *service, const char *region, const struct kc_aws_variant *v,
		   struct kc_aws_service_endpoint *out, struct kc_err *err);

/* Sets url (and host) to an explicit endpoint, as AWS_ENDPOINT_URL_STS does:
 * requests and tokens then name it. */
int kc_aws_endpoint_set_url(struct kc_aws_service_endpoint *ep, const char *url, struct kc_err *err);

/* Tests only: calls go to connect_url while url and host stay the real ones, so
 * what is signed is what a real bastion signs. */
int kc_aws_endpoint_connect_to(struct kc_aws_service_endpoint *ep, const char *connect_url, struct kc_err *err);

/* Where a call goes: connect_url when set, else url. */
const char *kc_aws_endpoint_target(const struct kc_aws_service_endpoint *ep);

/* "true"/"false" (any case) as botocore's ensure_boolean reads them; anything else is false. */
bool kc_aws_bool(const char *s);

#endif

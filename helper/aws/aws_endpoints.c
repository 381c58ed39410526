/* Region -> partition -> STS/EKS host, in the order of the sts and eks endpoint
 * rule sets botocore and the AWS SDKs run; the data is the generated table. */
#include "aws/aws_endpoints.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool listed(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static bool matches(const char *pattern, const char *s)
{
	regex_t re;
	bool m;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	m = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

const struct kc_aws_partition *kc_aws_partition_of(const char *region)
{
	for (size_t i = 0; region && i < kc_aws_n_partitions; i++) {
		const struct kc_aws_partition *p = &kc_aws_partitions[i];

		if (listed(p->regions, region) || matches(p->region_regex, region))
			return p;
	}
	return &kc_aws_partitions[0];
}

/* botocore's validate_region_name: a host label. */
static bool valid_region(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63 || r[0] == '-' || r[n - 1] == '-')
		return false;
	for (; *r; r++)
		if (!(*r >= 'a' && *r <= 'z') && !(*r >= 'A' && *r <= 'Z') && !(*r >= '0' && *r <= '9') && *r != '-')
			return false;
	return true;
}

/* Fills {region} and {dnsSuffix} of a template. */
static int expand(char *out, size_t len, const char *tmpl, const char *region, const char *suffix)
{
	size_t o = 0;

	for (const char *t = tmpl; *t;) {
		const char *piece = NULL;
		size_t skip = 1;

		if (strncmp(t, "{region}", 8) == 0)
			piece = region, skip = 8;
		else if (strncmp(t, "{dnsSuffix}", 11) == 0)
			piece = suffix, skip = 11;
		if (piece) {
			size_t n = strlen(piece);

			if (o + n >= len)
				return -1;
			memcpy(out + o, piece, n);
			o += n;
		} else {
			if (o + 1 >= len)
				return -1;
			out[o++] = *t;
		}
		t += skip;
	}
	out[o] = '\0';
	return 0;
}

static const char *fips_template(const char *service, const char *partition)
{
	for (size_t i = 0; i < kc_aws_n_fips_hosts; i++)
		if (strcmp(kc_aws_fips_hosts[i].service, service) == 0 &&
		    strcmp(kc_aws_fips_hosts[i].partition, partition) == 0)
			return kc_aws_fips_hosts[i].host;
	return NULL;
}

/* The host name, as the rule set's branches decide it. */
static int resolve_host(const char *service, const char *region, const struct kc_aws_partition *p,
			const struct kc_aws_variant *v, char *host, size_t len, bool *global, struct kc_err *err)
{
	bool sts = strcmp(service, "sts") == 0;
	char tmpl[128];

	*global = false;
	if (sts && !v->fips && !v->dualstack &&
	    (strcmp(region, "aws-global") == 0 ||
	     (v->sts_legacy_global && listed(kc_aws_sts_global_regions, region)))) {
		*global = true;
		return expand(host, len, "sts.amazonaws.com", region, p->dns_suffix);
	}
	if (v->fips && v->dualstack) {
		if (!p->fips || !p->dualstack)
			return kc_seterr(err, "%s in %s: partition %s has no endpoint that is both FIPS and dual-stack",
					 service, region, p->id),
			       -1;
		snprintf(tmpl, sizeof(tmpl), "%s-fips.{region}.{dnsSuffix}", service);
		return expand(host, len, tmpl, region, p->dualstack_dns_suffix);
	}
	if (v->fips) {
		const char *special = fips_template(service, p->id);

		if (!p->fips)
			return kc_seterr(err, "%s in %s: partition %s has no FIPS endpoints", service, region, p->id),
			       -1;
		snprintf(tmpl, sizeof(tmpl), "%s-fips.{region}.{dnsSuffix}", service);
		return expand(host, len, special ? special : tmpl, region, p->dns_suffix);
	}
	snprintf(tmpl, sizeof(tmpl), "%s.{region}.{dnsSuffix}", service);
	if (v->dualstack) {
		if (!p->dualstack)
			return kc_seterr(err, "%s in %s: partition %s has no dual-stack endpoints", service, region,
					 p->id),
			       -1;
		return expand(host, len, tmpl, region, p->dualstack_dns_suffix);
	}
	return expand(host, len, tmpl, region, p->dns_suffix);
}

int kc_aws_resolve(const char *service, const char *region, const struct kc_aws_variant *v,
		   struct kc_aws_service_endpoint *out, struct kc_err *err)
{
	static const struct kc_aws_variant plain = { false, false, false };
	const struct kc_aws_partition *p;
	bool global;

	memset(out, 0, sizeof(*out));
	if (!region || !valid_region(region))
		return kc_seterr(err, "'%s' is not a valid AWS region name (e.g. us-west-2)", region ? region : ""), -1;
	p = kc_aws_partition_of(region);
	if (resolve_host(service, region, p, v ? v : &plain, out->host, sizeof(out->host), &global, err) < 0) {
		if (!err->msg[0])
			kc_seterr(err, "%s in %s: the host name is too long", service, region);
		return -1;
	}
	snprintf(out->url, sizeof(out->url), "https://%s", out->host);
	snprintf(out->signing_region, sizeof(out->signing_region), "%s", global ? "us-east-1" : region);
	out->partition = p->id;
	return 0;
}

/* scheme://authority[/path] -> authority, with the url kept without a trailing '/'. */
static int split_url(const char *url, char *clean, size_t clean_len, char *host, size_t host_len, struct kc_err *err)
{
	const char *a;
	size_t n;

	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return kc_seterr(err, "endpoint '%s' must start with https:// (or http://)", url), -1;
	a = strstr(url, "://") + 3;
	n = strcspn(a, "/?#");
	if (n == 0 || n >= host_len || strlen(url) >= clean_len || a[n] == '?' || a[n] == '#')
		return kc_seterr(err, "endpoint '%s' is not a URL like https://host[:port]", url), -1;
	memcpy(host, a, n);
	host[n] = '\0';
	snprintf(clean, clean_len, "%s", url);
	n = strlen(clean);
	while (n > 0 && clean[n - 1] == '/')
		clean[--n] = '\0';
	return 0;
}

int kc_aws_endpoint_set_url(struct kc_aws_service_endpoint *ep, const char *url, struct kc_err *err)
{
	return split_url(url, ep->url, sizeof(ep->url), ep->host, sizeof(ep->host), err);
}

int kc_aws_endpoint_connect_to(struct kc_aws_service_endpoint *ep, const char *connect_url, struct kc_err *err)
{
	char host[300];

	return split_url(connect_url, ep->connect_url, sizeof(ep->connect_url), host, sizeof(host), err);
}

const char *kc_aws_endpoint_target(const struct kc_aws_service_endpoint *ep)
{
	return ep->connect_url[0] ? ep->connect_url : ep->url;
}

bool kc_aws_bool(const char *s)
{
	return s && strcasecmp(s, "true") == 0;
}

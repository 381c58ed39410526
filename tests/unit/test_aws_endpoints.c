/* Endpoint resolution by partition: the host names awscli and the EKS verifier
 * know, for STS and EKS, with the FIPS, dual-stack and legacy-global variants.
 *   test_aws_endpoints              the cmocka cases
 *   test_aws_endpoints --resolve    reads "SERVICE REGION FIPS DUALSTACK LEGACY" lines
 *                                   and prints "HOST SIGNING-REGION PARTITION" or
 *                                   "error" for each (tests/eks compares botocore's) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aws/aws_endpoints.h"

static void expect_host(const char *service, const char *region, bool fips, bool dualstack, bool legacy,
			const char *host, const char *signing_region, const char *partition)
{
	struct kc_aws_variant v = { fips, dualstack, legacy };
	struct kc_aws_service_endpoint ep;
	struct kc_err err = { "" };
	char url[400];

	if (kc_aws_resolve(service, region, &v, &ep, &err) < 0)
		fail_msg("%s %s fips=%d dualstack=%d: %s", service, region, fips, dualstack, err.msg);
	assert_string_equal(ep.host, host);
	snprintf(url, sizeof(url), "https://%s", host);
	assert_string_equal(ep.url, url);
	assert_string_equal(ep.signing_region, signing_region);
	assert_string_equal(ep.partition, partition);
	assert_string_equal(kc_aws_endpoint_target(&ep), url);
}

static void sts_hosts(void **state)
{
	(void)state;
	expect_host("sts", "us-west-2", false, false, false, "sts.us-west-2.amazonaws.com", "us-west-2", "aws");
	expect_host("sts", "cn-north-1", false, false, false, "sts.cn-north-1.amazonaws.com.cn", "cn-north-1",
		    "aws-cn");
	expect_host("sts", "eusc-de-east-1", false, false, false, "sts.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1",
		    "aws-eusc");
	expect_host("sts", "us-gov-west-1", false, false, false, "sts.us-gov-west-1.amazonaws.com", "us-gov-west-1",
		    "aws-us-gov");
	expect_host("sts", "us-iso-east-1", false, false, false, "sts.us-iso-east-1.c2s.ic.gov", "us-iso-east-1",
		    "aws-iso");
	expect_host("sts", "us-isob-east-1", false, false, false, "sts.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1",
		    "aws-iso-b");
	expect_host("sts", "eu-isoe-west-1", false, false, false, "sts.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1",
		    "aws-iso-e");
	expect_host("sts", "us-isof-south-1", false, false, false, "sts.us-isof-south-1.csp.hci.ic.gov",
		    "us-isof-south-1", "aws-iso-f");
	/* a region the data does not name yet still finds its partition by pattern */
	expect_host("sts", "cn-south-9", false, false, false, "sts.cn-south-9.amazonaws.com.cn", "cn-south-9",
		    "aws-cn");
	/* an unknown pattern falls back to aws, as botocore's aws.partition does */
	expect_host("sts", "xx-mars-1", false, false, false, "sts.xx-mars-1.amazonaws.com", "xx-mars-1", "aws");
}

static void sts_variants(void **state)
{
	(void)state;
	expect_host("sts", "us-east-1", true, false, false, "sts-fips.us-east-1.amazonaws.com", "us-east-1", "aws");
	expect_host("sts", "us-east-1", false, true, false, "sts.us-east-1.api.aws", "us-east-1", "aws");
	expect_host("sts", "us-east-1", true, true, false, "sts-fips.us-east-1.api.aws", "us-east-1", "aws");
	expect_host("sts", "cn-north-1", false, true, false, "sts.cn-north-1.api.amazonwebservices.com.cn",
		    "cn-north-1", "aws-cn");
	/* GovCloud's FIPS STS is the regional host itself */
	expect_host("sts", "us-gov-east-1", true, false, false, "sts.us-gov-east-1.amazonaws.com", "us-gov-east-1",
		    "aws-us-gov");
	expect_host("sts", "us-gov-east-1", true, true, false, "sts-fips.us-gov-east-1.api.aws", "us-gov-east-1",
		    "aws-us-gov");
	/* legacy: the global endpoint for the listed regions only, signed for us-east-1 */
	expect_host("sts", "eu-west-1", false, false, true, "sts.amazonaws.com", "us-east-1", "aws");
	expect_host("sts", "ap-southeast-7", false, false, true, "sts.ap-southeast-7.amazonaws.com", "ap-southeast-7",
		    "aws");
	expect_host("sts", "cn-north-1", false, false, true, "sts.cn-north-1.amazonaws.com.cn", "cn-north-1", "aws-cn");
	expect_host("sts", "us-west-2", true, false, true, "sts-fips.us-west-2.amazonaws.com", "us-west-2", "aws");
	expect_host("sts", "aws-global", false, false, false, "sts.amazonaws.com", "us-east-1", "aws");
}

static void eks_hosts(void **state)
{
	(void)state;
	expect_host("eks", "us-west-2", false, false, false, "eks.us-west-2.amazonaws.com", "us-west-2", "aws");
	expect_host("eks", "us-west-2", true, false, false, "fips.eks.us-west-2.amazonaws.com", "us-west-2", "aws");
	expect_host("eks", "us-gov-west-1", true, false, false, "eks.us-gov-west-1.amazonaws.com", "us-gov-west-1",
		    "aws-us-gov");
	expect_host("eks", "cn-northwest-1", false, false, false, "eks.cn-northwest-1.amazonaws.com.cn",
		    "cn-northwest-1", "aws-cn");
	expect_host("eks", "cn-northwest-1", true, false, false, "eks-fips.cn-northwest-1.amazonaws.com.cn",
		    "cn-northwest-1", "aws-cn");
	expect_host("eks", "eu-west-1", false, true, false, "eks.eu-west-1.api.aws", "eu-west-1", "aws");
	/* legacy global applies to STS alone */
	expect_host("eks", "eu-west-1", false, false, true, "eks.eu-west-1.amazonaws.com", "eu-west-1", "aws");
}

static void bad_regions_are_refused(void **state)
{
	const char *bad[] = { "",
			      "us west 2",
			      "-us-west-2",
			      "us-west-2-",
			      "us_west_2",
			      "a.b",
			      "012345678901234567890123456789012345678901234567890123456789abcd" };
	struct kc_aws_service_endpoint ep;
	struct kc_err err = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kc_aws_resolve("sts", bad[i], NULL, &ep, &err), -1);
		assert_non_null(strstr(err.msg, "is not a valid AWS region name"));
	}
}

static void overrides_keep_or_replace_the_signed_host(void **state)
{
	struct kc_aws_service_endpoint ep;
	struct kc_err err = { "" };

	(void)state;
	/* tests: calls go elsewhere, the real host is still what is signed */
	assert_int_equal(kc_aws_resolve("sts", "cn-north-1", NULL, &ep, &err), 0);
	assert_int_equal(kc_aws_endpoint_connect_to(&ep, "https://127.0.0.1:8443/", &err), 0);
	assert_string_equal(ep.host, "sts.cn-north-1.amazonaws.com.cn");
	assert_string_equal(ep.url, "https://sts.cn-north-1.amazonaws.com.cn");
	assert_string_equal(kc_aws_endpoint_target(&ep), "https://127.0.0.1:8443");
	/* AWS_ENDPOINT_URL_STS: requests and tokens name the override */
	assert_int_equal(kc_aws_endpoint_set_url(&ep, "https://vpce-1.sts.example:444", &err), 0);
	assert_string_equal(ep.host, "vpce-1.sts.example:444");
	assert_string_equal(ep.url, "https://vpce-1.sts.example:444");
	assert_int_equal(kc_aws_endpoint_set_url(&ep, "ftp://x", &err), -1);
	assert_int_equal(kc_aws_endpoint_set_url(&ep, "https://", &err), -1);
	assert_int_equal(kc_aws_endpoint_set_url(&ep, "https://h?x=1", &err), -1);
}

static void partitions_by_region(void **state)
{
	(void)state;
	assert_string_equal(kc_aws_partition_of("us-gov-east-1")->id, "aws-us-gov");
	assert_string_equal(kc_aws_partition_of("aws-cn-global")->id, "aws-cn");
	assert_string_equal(kc_aws_partition_of("us-isob-west-1")->id, "aws-iso-b");
	assert_string_equal(kc_aws_partition_of("us-iso-west-1")->id, "aws-iso");
	assert_string_equal(kc_aws_partition_of("me-central-1")->id, "aws");
	assert_string_equal(kc_aws_partition_of(NULL)->id, "aws");
	assert_true(kc_aws_bool("TRUE") && kc_aws_bool("true") && !kc_aws_bool("1") && !kc_aws_bool(NULL));
}

/* For tests/eks: the resolution of every line on stdin. */
static int resolve_lines(void)
{
	char line[512], service[16], region[128];
	int fips, dualstack, legacy;

	while (fgets(line, sizeof(line), stdin)) {
		struct kc_aws_service_endpoint ep;
		struct kc_err err = { "" };
		struct kc_aws_variant v;

		if (sscanf(line, "%15s %127s %d %d %d", service, region, &fips, &dualstack, &legacy) != 5)
			return 2;
		v = (struct kc_aws_variant){ fips != 0, dualstack != 0, legacy != 0 };
		if (kc_aws_resolve(service, region, &v, &ep, &err) < 0)
			printf("error\n");
		else
			printf("%s %s %s\n", ep.host, ep.signing_region, ep.partition);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sts_hosts),
		cmocka_unit_test(sts_variants),
		cmocka_unit_test(eks_hosts),
		cmocka_unit_test(bad_regions_are_refused),
		cmocka_unit_test(overrides_keep_or_replace_the_signed_host),
		cmocka_unit_test(partitions_by_region),
	};

	if (argc == 2 && strcmp(argv[1], "--resolve") == 0)
		return resolve_lines();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

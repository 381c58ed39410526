/* The parts of AWS credentials that need no network: the shared files as
 * botocore reads them, credential_process (its JSON contract, its deadline, its
 * output cap), the chain's refusals (source_profile loops, SSO, half keys), the
 * container endpoint's allowed hosts, role ARNs by partition, the config checks,
 * and the ExecCredential versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/aws_sources.h"
#include "config/config.h"
#include "aws/aws_sts.h"
#include "aws/aws_profile.h"
#include "aws/aws_chain.h"
#include "aws/aws_credentials.h"
#include "aws/eks.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"

static char dir[] = "/tmp/kc-aws-unit.XXXXXX";

static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *path = NULL;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void profiles(const char *config, const char *credentials, struct kc_aws_profiles *p)
{
	kc_autofree char *cp = config ? write_file("config", config, 0600) : NULL;
	kc_autofree char *kp = credentials ? write_file("credentials", credentials, 0600) : NULL;
	struct kc_err err = { "" };

	if (kc_aws_profiles_load(p, cp, kp, 0, &err) < 0)
		fail_msg("%s", err.msg);
}

static void shared_files_as_botocore_reads_them(void **state)
{
	struct kc_aws_profiles p;
	struct kc_aws_credentials c;
	struct kc_err err = { "" };

	(void)state;
	profiles("# comment\n[default]\nregion = eu-west-1\n[profile ops]\nRegion: cn-north-1\n"
		 "s3 =\n    max_concurrent_requests = 10\n[sso-session x]\nsso_region = us-east-1\n",
		 "[default]\naws_access_key_id = AKIDCREDS\n  aws_secret_access_key = sec/ret+=\n"
		 "; comment\n[profile ops]\naws_access_key_id=AKIDLITERAL\naws_secret_access_key=x\n",
		 &p);
	assert_string_equal(kc_aws_profile_get(&p, "default", "region", 1), "eu-west-1");
	assert_string_equal(kc_aws_profile_get(&p, "ops", "region", 0), "cn-north-1"); /* keys lowercased */
	assert_null(kc_aws_profile_get(&p, "ops", "max_concurrent_requests", 0)); /* nested, not top level */
	assert_null(kc_aws_profile_get(&p, "x", "sso_region", 0)); /* not a profile */
	/* an indented line under a key continues it; the secret stays the default's */
	assert_int_equal(kc_aws_profile_keys(&p, "default", 2, &c, &err), -1);
	assert_non_null(strstr(err.msg, "only one of"));
	/* in the credentials file "[profile ops]" is a profile named "profile ops" */
	assert_int_equal(kc_aws_profile_keys(&p, "profile ops", 2, &c, &err), 0);
	assert_string_equal(c.access_key_id, "AKIDLITERAL");
	kc_aws_credentials_clear(&c);
	assert_int_equal(kc_aws_profile_keys(&p, "ops", 2, &c, &err), 1);
	assert_true(kc_aws_profile_exists(&p, "ops") && !kc_aws_profile_exists(&p, "nope"));
	kc_aws_profiles_free(&p);
}

static void duplicates_and_stray_keys_are_errors(void **state)
{
	kc_autofree char *dup = write_file("dup", "[a]\nk = 1\nK = 2\n", 0600);
	kc_autofree char *stray = write_file("stray", "k = 1\n[a]\n", 0600);
	kc_autofree char *open_header = write_file("open", "[a\nk = 1\n", 0600);
	struct kc_aws_profiles p;
	struct kc_err err = { "" };

	(void)state;
	assert_int_equal(kc_aws_profiles_load(&p, NULL, dup, 0, &err), -1);
	assert_non_null(strstr(err.msg, "dup:3: 'k' is set twice in [a]"));
	assert_int_equal(kc_aws_profiles_load(&p, stray, NULL, 0, &err), -1);
	assert_non_null(strstr(err.msg, "before the first [section]"));
	assert_int_equal(kc_aws_profiles_load(&p, open_header, NULL, 0, &err), -1);
	assert_non_null(strstr(err.msg, "closing ']'"));
	/* the helper's files must be root's alone */
	chmod(dup, 0644);
	assert_int_equal(kc_aws_profiles_load(&p, NULL, dup, KC_AWS_FILES_ROOT_ONLY, &err), -1);
}

static void words_split_as_a_shell_would(void **state)
{
	char **w;
	size_t n;
	struct kc_err err = { "" };

	(void)state;
	assert_int_equal(kc_aws_split_words("/bin/tool --profile 'a b' \"c \\\"d\\\"\" e\\ f ''", &w, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_string_equal(w[0], "/bin/tool");
	assert_string_equal(w[2], "a b");
	assert_string_equal(w[3], "c \"d\"");
	assert_string_equal(w[4], "e f");
	assert_string_equal(w[5], "");
	assert_null(w[6]);
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
	assert_int_equal(kc_aws_split_words("/bin/x 'open", &w, &n, &err), -1);
	assert_non_null(strstr(err.msg, "unterminated quote"));
	assert_int_equal(kc_aws_split_words("   ", &w, &n, &err), -1);
}

static int parse_output(const char *json, struct kc_aws_credentials *c, struct kc_err *err)
{
	return kc_aws_process_output_parse(json, strlen(json), 1800000000 /* 2027-01-15 */, c, err);
}

static void process_output_contract(void **state)
{
	struct kc_aws_credentials c;
	struct kc_err err = { "" };

	(void)state;
	assert_int_equal(parse_output("{\"Version\": 1, \"AccessKeyId\": \"AKID\", \"SecretAccessKey\": "
				      "\"s\", \"SessionToken\": \"t\", \"Expiration\": "
				      "\"2027-06-01T00:00:00Z\"}",
				      &c, &err),
			 0);
	assert_string_equal(c.session_token, "t");
	assert_int_equal(c.expiration, 1811808000);
	kc_aws_credentials_clear(&c);
	assert_int_equal(parse_output("{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", &c, &err), 0);
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 0);
	kc_aws_credentials_clear(&c);

	assert_int_equal(parse_output("{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
				      "\"Expiration\":\"2020-01-01T00:00:00Z\"}",
				      &c, &err),
			 -1);
	assert_non_null(strstr(err.msg, "expired at 2020-01-01T00:00:00Z"));
	assert_int_equal(parse_output("{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", &c, &err), -1);
	assert_non_null(strstr(err.msg, "unsupported Version"));
	assert_int_equal(parse_output("{\"Version\":1,\"AccessKeyId\":\"A\"}", &c, &err), -1);
	assert_non_null(strstr(err.msg, "lacks AccessKeyId, SecretAccessKey"));
	assert_int_equal(parse_output("not json", &c, &err), -1);
	assert_non_null(strstr(err.msg, "not a JSON object"));
	assert_int_equal(parse_output("{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
				      "\"Expiration\":\"soon\"}",
				      &c, &err),
			 -1);
	assert_non_null(strstr(err.msg, "not an RFC 3339 time"));
}

static void process_runs_within_its_deadline_and_cap(void **state)
{
	kc_autofree char *ok = write_file("ok.sh",
					  "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
					  "\"SecretAccessKey\": \"'\"$1\"'\"}'\n",
					  0700);
	kc_autofree char *slow = write_file("slow.sh", "#!/bin/sh\nexec sleep 30\n", 0700);
	kc_autofree char *huge = write_file("huge.sh", "#!/bin/sh\nexec yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0700);
	kc_autofree char *fails = write_file("fails.sh", "#!/bin/sh\necho 'no session: run login' >&2\nexit 3\n", 0700);
	kc_autofree char *cmd = NULL;
	struct kc_aws_credentials c;
	struct kc_err err = { "" };
	long long start;

	(void)state;
	assert_true(asprintf(&cmd, "%s 'se cret'", ok) > 0);
	assert_int_equal(kc_aws_credentials_from_process(cmd, NULL, kc_now_ms() + 5000, &c, &err), 0);
	assert_string_equal(c.access_key_id, "AKIDPROC");
	assert_string_equal(c.secret_access_key, "se cret");
	kc_aws_credentials_clear(&c);

	start = kc_now_ms();
	assert_int_equal(kc_aws_credentials_from_process(slow, NULL, start + 300, &c, &err), -1);
	assert_true(kc_now_ms() - start < 2000);
	assert_non_null(strstr(err.msg, "in time"));

	assert_int_equal(kc_aws_credentials_from_process(huge, NULL, kc_now_ms() + 5000, &c, &err), -1);
	assert_non_null(strstr(err.msg, "more than 65536 bytes"));

	assert_int_equal(kc_aws_credentials_from_process(fails, NULL, kc_now_ms() + 5000, &c, &err), -1);
	assert_non_null(strstr(err.msg, "failed: no session: run login"));

	assert_int_equal(kc_aws_credentials_from_process("/nonexistent/tool", NULL, kc_now_ms() + 5000, &c, &err), -1);
}

static int chain(const char *config, const char *credentials, const char *profile, struct kc_err *err)
{
	struct kc_aws_profiles p;
	struct kc_aws_cli_env env = { .profile = profile, .profile_option = profile != NULL, .imds_disabled = true };
	struct kc_aws_service_endpoint sts;
	struct kc_aws_budget b = { NULL, 100, 100, kc_now_ms() + 1000 };
	struct kc_aws_credentials c;
	int rc;

	profiles(config, credentials, &p);
	assert_int_equal(kc_aws_resolve("sts", "us-east-1", NULL, &sts, err), 0);
	/* nothing here may reach a network: make any call fail at once */
	assert_int_equal(kc_aws_endpoint_connect_to(&sts, "https://127.0.0.1:1", err), 0);
	rc = kc_aws_cli_credentials(&env, &p, &sts, &b, 1800000000, &c, err);
	if (rc == 0)
		kc_aws_credentials_clear(&c);
	kc_aws_profiles_free(&p);
	return rc;
}

static void chain_refusals(void **state)
{
	struct kc_err err = { "" };

	(void)state;
	/* a loop through two profiles is refused before any call */
	assert_int_equal(chain("[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
			       "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n",
			       NULL, "a", &err),
			 -1);
	assert_non_null(strstr(err.msg, "source_profile [a] makes a loop"));
	/* a profile that is its own source needs its own keys */
	assert_int_equal(chain("[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = a\n", NULL, "a", &err),
			 -1);
	assert_non_null(strstr(err.msg, "makes a loop"));
	assert_int_equal(chain("[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = zz\n", NULL, "a", &err),
			 -1);
	assert_non_null(strstr(err.msg, "source_profile [zz] of profile [a] does not exist"));
	assert_int_equal(chain("[profile a]\nrole_arn = r\nsource_profile = b\ncredential_source = Environment\n"
			       "[profile b]\n",
			       NULL, "a", &err),
			 -1);
	assert_non_null(strstr(err.msg, "both source_profile and credential_source"));
	assert_int_equal(chain("[profile a]\nrole_arn = r\ncredential_source = Mars\n", NULL, "a", &err), -1);
	assert_non_null(strstr(err.msg, "credential_source 'Mars'"));
	assert_int_equal(chain("[profile a]\nrole_arn = r\nmfa_serial = arn:aws:iam::1:mfa/x\nsource_profile = a\n"
			       "aws_access_key_id = A\naws_secret_access_key = s\n",
			       NULL, "a", &err),
			 -1);
	assert_non_null(strstr(err.msg, "MFA"));
	assert_int_equal(chain("[profile s]\nsso_session = corp\nsso_account_id = 1\n", NULL, "s", &err), -1);
	assert_non_null(strstr(err.msg, "(SSO), which pam-kubeconfig eks-token does not support"));
	assert_int_equal(chain("[default]\n", "[x]\n", "nope", &err), -1);
	assert_non_null(strstr(err.msg, "the config profile (nope) could not be found"));
	assert_int_equal(chain("[default]\nweb_identity_token_file = /tmp/x\n", NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "needs a role ARN"));
	/* static keys in the config file are the last of the profile's sources */
	assert_int_equal(chain("[profile c]\naws_access_key_id = A\naws_secret_access_key = s\n", NULL, "c", &err), 0);
	/* with IMDS off and nothing configured: a clear error */
	assert_int_equal(chain(NULL, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "no AWS credentials"));
}

static void container_hosts(void **state)
{
	struct kc_err err = { "" };
	const char *ok[] = { "http://127.0.0.1:8080/creds",
			     "http://127.9.9.9/x",
			     "http://localhost:1/x",
			     "http://169.254.170.2/v2/credentials/x",
			     "http://169.254.170.23/v1/credentials",
			     "http://[fd00:ec2::23]/v1/credentials",
			     "http://[::1]:80/",
			     "https://creds.example/x" };
	const char *bad[] = { "http://10.0.0.1/x",  "http://169.254.169.254/", "http://127.0.0.1.evil.example/x",
			      "http://localhostx/", "ftp://127.0.0.1/",	       "http://169.254.170.230/" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (kc_aws_container_url_allowed(ok[i], &err) < 0)
			fail_msg("%s refused: %s", ok[i], err.msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kc_aws_container_url_allowed(bad[i], &err) == 0)
			fail_msg("%s allowed", bad[i]);
}

static void role_arns_by_partition(void **state)
{
	struct kc_err err = { "" };

	(void)state;
	assert_int_equal(kc_aws_check_arn_partition("arn:aws-cn:iam::1:role/x", "cn-north-1", &err), 0);
	assert_int_equal(kc_aws_check_arn_partition("arn:aws-us-gov:iam::1:role/x", "us-gov-west-1", &err), 0);
	assert_int_equal(kc_aws_check_arn_partition("arn:aws:iam::1:role/x", "cn-north-1", &err), -1);
	assert_non_null(strstr(err.msg, "region cn-north-1 is in 'aws-cn'"));
	assert_int_equal(kc_aws_check_arn_partition("arn:aws-cn:iam::1:role/x", "us-east-1", &err), -1);
	assert_int_equal(kc_aws_check_arn_partition("role/x", "us-east-1", &err), -1);
}

static void config_checks(void **state)
{
	static char c[] = "c", region[] = "cn-north-1", file[] = "/etc/x", tool[] = "/usr/bin/tool",
		    relative[] = "tool --x", token[] = "/var/run/token", arn_aws[] = "arn:aws:iam::1:role/x",
		    arn_cn[] = "arn:aws-cn:iam::1:role/x", uri[] = "http://10.1.1.1/", ops[] = "ops";
	struct kc_eks_ref e = { .cluster_name = c, .region = region };
	const char *key = NULL;
	struct kc_err err = { "" };

	(void)state;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), 0);
	e.credentials_file = file;
	e.credential_process = tool;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_string_equal(key, "credential_process");
	e.credentials_file = NULL;
	e.credential_process = relative;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_non_null(strstr(err.msg, "absolute path"));
	e.credential_process = NULL;
	e.web_identity_token_file = token;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_string_equal(key, "web_identity_token_file");
	e.role_arn = arn_aws;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_string_equal(key, "role_arn");
	e.role_arn = arn_cn;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), 0);
	e.container_uri = uri;
	e.web_identity_token_file = NULL;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_string_equal(key, "container_credentials_uri");
	e.container_uri = NULL;
	e.profile = ops;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), -1);
	assert_string_equal(key, "profile");
	e.profile = NULL;
	e.use_fips_endpoint = e.use_dualstack_endpoint = true;
	assert_int_equal(kc_aws_check_eks_ref(&e, true, &key, &err), 0); /* aws-cn has both */
}

static struct kc_config *parse_auth(const char *auth, struct kc_err *err)
{
	kc_autobuf struct kc_buf y = { 0 };

	kc_buf_printf(&y,
		      "clusters:\n  - name: c\n    eks:\n      cluster_name: c\n      region: cn-north-1\n"
		      "      use_fips_endpoint: true\n    auth:\n      eks:\n        cluster_name: c\n"
		      "        region: cn-north-1\n%s"
		      "mappings:\n  - user: a\n    cluster: c\n    serviceaccount: n/a\n",
		      auth);
	memset(err, 0, sizeof(*err));
	return kc_config_parse("t.yaml", y.data, y.len, KC_LOAD_NO_FILES, err);
}

static void config_keys(void **state)
{
	struct kc_err err;
	struct kc_config *cfg;
	const struct kc_eks_ref *a;

	(void)state;
	cfg = parse_auth("        cluster_id: 0123abcd-outpost\n"
			 "        web_identity_token_file: /var/run/secrets/eks/token\n"
			 "        role_arn: arn:aws-cn:iam::111122223333:role/minter\n"
			 "        use_dualstack_endpoint: true\n",
			 &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	a = &cfg->clusters[0].auth_eks;
	assert_string_equal(a->cluster_id, "0123abcd-outpost");
	assert_string_equal(a->web_identity_token_file, "/var/run/secrets/eks/token");
	assert_true(a->use_dualstack_endpoint && !a->use_fips_endpoint);
	assert_true(cfg->clusters[0].eks.use_fips_endpoint);
	kc_config_free(cfg);

	cfg = parse_auth("        container_credentials_uri: http://169.254.170.23/v1/credentials\n"
			 "        container_authorization_token_file: /var/run/secrets/pods.eks.amazonaws.com/token\n",
			 &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg->clusters[0].auth_eks.container_uri, "http://169.254.170.23/v1/credentials");
	kc_config_free(cfg);

	assert_null(parse_auth("        credentials_file: /etc/c\n        credential_process: /bin/x\n", &err));
	assert_string_equal(err.msg,
			    "t.yaml:12:29: give one of credentials_file, web_identity_token_file, "
			    "credential_process and container_credentials_uri (none: the instance role through "
			    "IMDSv2), not credentials_file and credential_process");
	assert_null(parse_auth("        role_arn: arn:aws:iam::1:role/x\n", &err));
	assert_non_null(strstr(err.msg, "t.yaml:11:19: role ARN 'arn:aws:iam::1:role/x' is in partition 'aws'"));
	assert_null(parse_auth(
		"        web_identity_token_file: relative/token\n        role_arn: arn:aws-cn:iam::1:role/x\n", &err));
	assert_non_null(strstr(err.msg, "'web_identity_token_file' must be an absolute path"));
	assert_null(parse_auth("        endpoint: https://x\n", &err));
	assert_non_null(strstr(err.msg, "unknown key 'endpoint'"));
}

static void exec_credential_versions(void **state)
{
	char *v1 = kc_eks_exec_credential("k8s-aws-v1.x", 1800000000, KC_EXEC_V1);
	char *beta = kc_eks_exec_credential("k8s-aws-v1.x", 1800000000, NULL);

	(void)state;
	assert_non_null(strstr(v1, "\"apiVersion\": \"client.authentication.k8s.io/v1\",\n"));
	assert_non_null(strstr(beta, "\"apiVersion\": \"client.authentication.k8s.io/v1beta1\",\n"));
	assert_non_null(strstr(beta, "\"expirationTimestamp\": \"2027-01-15T08:14:00Z\""));
	assert_int_equal(beta[strlen(beta) - 1], '\n');
	assert_int_equal(beta[strlen(beta) - 2], '\n');
	kc_free_secret(v1);
	kc_free_secret(beta);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	return WEXITSTATUS(system(cmd)) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shared_files_as_botocore_reads_them),
		cmocka_unit_test(duplicates_and_stray_keys_are_errors),
		cmocka_unit_test(words_split_as_a_shell_would),
		cmocka_unit_test(process_output_contract),
		cmocka_unit_test(process_runs_within_its_deadline_and_cap),
		cmocka_unit_test(chain_refusals),
		cmocka_unit_test(container_hosts),
		cmocka_unit_test(role_arns_by_partition),
		cmocka_unit_test(config_checks),
		cmocka_unit_test(config_keys),
		cmocka_unit_test(exec_credential_versions),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

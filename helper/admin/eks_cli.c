/* `pam-kubeconfig eks-token`: what `aws eks get-token` prints, for an admin at a
 * shell or kubectl's exec plugin. The only command that reads the environment,
 * because that is how awscli finds region, endpoints and credentials; open and
 * close never come here. */
#include "admin/eks_cli.h"
#include "admin/admin.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aws/aws_sts.h"
#include "aws/aws_profile.h"
#include "aws/aws_chain.h"
#include "aws/eks.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"
#include "common/json_alloc.h"
#include "lifecycle/login.h"

extern char **environ;

struct eks_token_opts {
	const char *cluster_name, *cluster_id, *region, *role_arn, *profile, *output;
};

static const char usage_text[] =
	"usage: pam-kubeconfig eks-token (--cluster-name NAME | --cluster-id ID) [--region R] [--role-arn ARN]\n"
	"                                [--profile P] [--output json]\n"
	"Prints the ExecCredential `aws eks get-token` prints, for kubectl's exec plugin.\n";

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* A path as botocore takes it: ~ is the home directory. */
static char *user_path(const char *given, const char *fallback)
{
	const char *p = given ? given : fallback, *home = env("HOME");
	struct passwd *pw;
	char *out = NULL;

	if (p[0] != '~')
		return strdup(p);
	if (!home && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	if (!home || asprintf(&out, "%s%s", home, p + 1) < 0)
		return NULL;
	return out;
}

static int parse(int argc, char **argv, struct eks_token_opts *o)
{
	static const struct option options[] = {
		{ "cluster-name", required_argument, NULL, 'n' },
		{ "cluster-id", required_argument, NULL, 'i' },
		{ "region", required_argument, NULL, 'r' },
		{ "role-arn", required_argument, NULL, 'a' },
		{ "profile", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n': o->cluster_name = optarg; break;
		case 'i': o->cluster_id = optarg; break;
		case 'r': o->region = optarg; break;
		case 'a': o->role_arn = optarg; break;
		case 'p': o->profile = optarg; break;
		case 'o': o->output = optarg; break;
		case 'c': break; /* every command takes --config; this one reads none */
		case 'h': fputs(usage_text, stdout); return 1;
		default: fputs(usage_text, stderr); return -1;
		}
	}
	if (optind != argc || (!o->cluster_name == !o->cluster_id)) {
		fprintf(stderr, "pam-kubeconfig eks-token: give one of --cluster-name and --cluster-id%s\n",
			optind != argc ? " and options only" : "");
		fputs(usage_text, stderr);
		return -1;
	}
	if (o->output && strcmp(o->output, "json") != 0) {
		fprintf(stderr,
			"pam-kubeconfig eks-token: --output %s: only json is printed (what kubectl's exec plugin "
			"reads); drop --output or give --output json\n",
			o->output);
		return -1;
	}
	return 0;
}

/* The ExecCredential version KUBERNETES_EXEC_INFO asks for, with awscli's messages. */
static const char *exec_api_version(void)
{
	const char *raw = env("KUBERNETES_EXEC_INFO");
	static char version[64];
	json_t *j, *v;

	if (!raw)
		return KC_EXEC_V1BETA1;
	j = json_loads(raw, JSON_DECODE_ANY, NULL);
	if (!j) {
		fprintf(stderr,
			"Error parsing KUBERNETES_EXEC_INFO, defaulting to %s. This is likely a bug in your Kubernetes "
			"client. Please update your Kubernetes client.\n",
			KC_EXEC_V1BETA1);
		return KC_EXEC_V1BETA1;
	}
	v = json_is_object(j) ? json_object_get(j, "apiVersion") : NULL;
	snprintf(version, sizeof(version), "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(j);
	if (strcmp(version, KC_EXEC_V1) == 0 || strcmp(version, KC_EXEC_V1BETA1) == 0)
		return version;
	if (strcmp(version, KC_EXEC_V1ALPHA1) == 0) {
		fprintf(stderr,
			"Kubeconfig user entry is using deprecated API version %s. Run 'aws eks update-kubeconfig' to "
			"update.\n",
			version);
		return version;
	}
	fprintf(stderr,
		"Unrecognized API version in KUBERNETES_EXEC_INFO, defaulting to %s. This is likely due to an "
		"outdated AWS CLI. Please update your AWS CLI.\n",
		KC_EXEC_V1BETA1);
	return KC_EXEC_V1BETA1;
}

/* An environment variable, else the profile's key. */
static const char *setting(const struct kc_aws_profiles *files, const char *profile, const char *var, const char *key)
{
	const char *v = env(var);

	return v ? v : kc_aws_profile_get(files, profile, key, 1);
}

/* The STS endpoint awscli's STS client would use. */
static int sts_endpoint(const struct kc_aws_profiles *files, const char *profile, const char *region,
			struct kc_aws_service_endpoint *sts, struct kc_err *err)
{
	const char *legacy = setting(files, profile, "AWS_STS_REGIONAL_ENDPOINTS", "sts_regional_endpoints");
	const char *url = env("AWS_ENDPOINT_URL_STS") ? env("AWS_ENDPOINT_URL_STS") : env("AWS_ENDPOINT_URL");
	struct kc_aws_variant v = {
		kc_aws_bool(setting(files, profile, "AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint")),
		kc_aws_bool(setting(files, profile, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint")),
		legacy && strcmp(legacy, "legacy") == 0,
	};

	if (legacy && strcmp(legacy, "legacy") != 0 && strcmp(legacy, "regional") != 0)
		return kc_seterr(err, "sts_regional_endpoints must be legacy or regional, not '%s'", legacy), -1;
	if (kc_aws_bool(
		    setting(files, profile, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "ignore_configured_endpoint_urls")))
		url = NULL;
	if (!url)
		url = kc_aws_profile_get(files, profile, "endpoint_url", 1);
	if (url && (v.fips || v.dualstack))
		return kc_seterr(err, "an endpoint URL (%s) and FIPS or dual-stack endpoints do not go together", url),
		       -1;
	if (kc_aws_resolve("sts", region, &v, sts, err) < 0)
		return -1;
	return url ? kc_aws_endpoint_set_url(sts, url, err) : 0;
}

static void read_env(struct kc_aws_cli_env *e, const struct eks_token_opts *o)
{
	e->access_key_id = env("AWS_ACCESS_KEY_ID");
	e->secret_access_key = env("AWS_SECRET_ACCESS_KEY");
	e->session_token = env("AWS_SESSION_TOKEN") ? env("AWS_SESSION_TOKEN") : env("AWS_SECURITY_TOKEN");
	e->profile = o->profile			  ? o->profile
		     : env("AWS_DEFAULT_PROFILE") ? env("AWS_DEFAULT_PROFILE")
						  : env("AWS_PROFILE");
	e->profile_option = o->profile != NULL;
	e->web_identity_token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	e->role_arn = env("AWS_ROLE_ARN");
	e->role_session_name = env("AWS_ROLE_SESSION_NAME");
	e->container_relative_uri = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	e->container_full_uri = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	e->container_token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	e->container_token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	e->imds_endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	e->imds_disabled = kc_aws_bool(env("AWS_EC2_METADATA_DISABLED"));
	e->envp = environ;
}

/* Credentials (then --role-arn's) and the token. */
static int token_for(const struct eks_token_opts *o, const struct kc_aws_cli_env *e,
		     const struct kc_aws_profiles *files, const struct kc_aws_service_endpoint *sts,
		     const struct kc_aws_budget *b, time_t now, char **token, struct kc_err *err)
{
	struct kc_aws_credentials cred, assumed;
	int rc;

	if (kc_aws_cli_credentials(e, files, sts, b, now, &cred, err) < 0)
		return -1;
	if (o->role_arn) {
		struct kc_aws_assume_role a = { o->role_arn, KC_EKS_CLI_SESSION_NAME, NULL, 0 };

		rc = kc_aws_assume_role(sts, b, &a, &cred, now, &assumed, err);
		kc_aws_credentials_clear(&cred);
		if (rc < 0)
			return -1;
		cred = assumed;
	}
	rc = kc_eks_token(&cred, o->cluster_id ? o->cluster_id : o->cluster_name, sts, now, token, err);
	kc_aws_credentials_clear(&cred);
	return rc;
}

static int run(const struct eks_token_opts *o, struct kc_err *err)
{
	struct kc_aws_cli_env e = { 0 };
	struct kc_aws_profiles files = { 0 };
	struct kc_aws_service_endpoint sts;
	kc_autofree char *config = user_path(env("AWS_CONFIG_FILE"), "~/.aws/config");
	kc_autofree char *creds = user_path(env("AWS_SHARED_CREDENTIALS_FILE"), "~/.aws/credentials");
	const char *region, *profile, *api = exec_api_version();
	time_t now = time(NULL);
	char *token = NULL, *out;
	int rc = -1;

	read_env(&e, o);
	profile = e.profile ? e.profile : "default";
	if (kc_aws_profiles_load(&files, config, creds, 0, err) < 0)
		return -1;
	region = o->region ? o->region : env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	if (!region)
		region = kc_aws_profile_get(&files, profile, "region", 1);
	if (!region) {
		kc_seterr(err,
			  "no region: give --region, set AWS_REGION or AWS_DEFAULT_REGION, or set region in "
			  "profile [%s] of ~/.aws/config",
			  profile);
		goto out;
	}
	if (sts_endpoint(&files, profile, region, &sts, err) == 0) {
		const char *ca = setting(&files, profile, "AWS_CA_BUNDLE", "ca_bundle");
		const struct kc_aws_budget b = { ca, 5000, 20000, kc_now_ms() + 60000 };

		rc = token_for(o, &e, &files, &sts, &b, now, &token, err);
	}
	if (rc == 0) {
		out = kc_eks_exec_credential(token, now, api);
		kc_free_secret(token);
		if (!out) {
			kc_seterr(err, "out of memory");
			rc = -1;
			goto out;
		}
		fputs(out, stdout);
		kc_free_secret(out);
	}
out:
	kc_aws_profiles_free(&files);
	return rc;
}

int kc_cmd_eks_token(int argc, char **argv)
{
	struct eks_token_opts o = { 0 };
	struct kc_err err = { "" };
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc > 0 ? KC_EXIT_OK : KC_EXIT_USAGE;
	rc = run(&o, &err);
	if (rc < 0) {
		fprintf(stderr, "pam-kubeconfig: %s\n", err.msg);
		return KC_EXIT_ERROR;
	}
	return fflush(stdout) == 0 ? KC_EXIT_OK : KC_EXIT_ERROR;
}

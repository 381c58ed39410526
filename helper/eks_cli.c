/* `pam-kubeconfig eks-token`: what `aws eks get-token` prints, for an admin at a
 * shell or kubectl's exec plugin. The only command that reads the environment,
 * because that is how awscli finds credentials; open/close never come here. */
#include "kc_admin.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kc_aws.h"
#include "kc_lifecycle.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static char *home_file(const char *rel)
{
	const char *home = env("HOME");
	struct passwd *pw;
	char *out = NULL;

	if (!home && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	if (home && asprintf(&out, "%s/%s", home, rel) < 0)
		out = NULL;
	return out;
}

/* awscli's order: the environment (unless --profile was given), the shared
 * credentials file, the config file, then the instance role. */
static int cli_credentials(const char *profile_opt, struct kc_aws_credentials *out, struct kc_err *err)
{
	const char *profile = profile_opt ? profile_opt : env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	char *path;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!profile_opt && env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
		out->access_key_id = strdup(env("AWS_ACCESS_KEY_ID"));
		out->secret_access_key = strdup(env("AWS_SECRET_ACCESS_KEY"));
		out->session_token = env("AWS_SESSION_TOKEN") ? strdup(env("AWS_SESSION_TOKEN")) : NULL;
		if (!out->access_key_id || !out->secret_access_key ||
		    (env("AWS_SESSION_TOKEN") && !out->session_token)) {
			kc_aws_credentials_clear(out);
			kc_seterr(err, "out of memory");
			return -1;
		}
		return 0;
	}
	path = env("AWS_SHARED_CREDENTIALS_FILE") ? strdup(env("AWS_SHARED_CREDENTIALS_FILE"))
						  : home_file(".aws/credentials");
	rc = path && access(path, R_OK) == 0 ? kc_aws_credentials_from_file(path, profile, false, out, err) : -1;
	free(path);
	if (rc == 0)
		return 0;
	path = env("AWS_CONFIG_FILE") ? strdup(env("AWS_CONFIG_FILE")) : home_file(".aws/config");
	rc = path && access(path, R_OK) == 0 ? kc_aws_credentials_from_file(path, profile, false, out, err) : -1;
	free(path);
	if (rc == 0)
		return 0;
	if (profile_opt || env("AWS_PROFILE")) {
		kc_seterr(err, "no credentials for profile %s in the shared credentials or config file", profile);
		return -1;
	}
	if (kc_aws_credentials_from_imds(env("AWS_EC2_METADATA_SERVICE_ENDPOINT"), 2000, out, err) == 0)
		return 0;
	kc_seterr(err, "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in "
		       "~/.aws/credentials, or run on an instance with a role");
	return -1;
}

int kc_cmd_eks_token(const char *cluster_name, const char *region, const char *role_arn, const char *profile)
{
	struct kc_aws_credentials cred, assumed;
	struct kc_err err = { "" };
	char *token = NULL, *out;
	time_t now = time(NULL);

	if (!cluster_name || !region) {
		fprintf(stderr, "pam-kubeconfig eks-token needs --cluster-name and --region\n");
		return KC_EXIT_USAGE;
	}
	if (cli_credentials(profile, &cred, &err) < 0) {
		fprintf(stderr, "pam-kubeconfig: %s\n", err.msg);
		return KC_EXIT_ERROR;
	}
	if (role_arn) {
		char url[256];
		struct kc_aws_endpoint sts = { url, env("AWS_CA_BUNDLE"), 2000, 10000 };
		int rc;

		if (env("AWS_ENDPOINT_URL_STS"))
			snprintf(url, sizeof(url), "%s", env("AWS_ENDPOINT_URL_STS"));
		else
			snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com", region);
		rc = kc_aws_assume_role(&sts, region, role_arn, "pam-kubeconfig-eks-token", &cred, now, &assumed, &err);
		kc_aws_credentials_clear(&cred);
		if (rc < 0) {
			fprintf(stderr, "pam-kubeconfig: %s\n", err.msg);
			return KC_EXIT_ERROR;
		}
		cred = assumed;
	}
	if (kc_eks_token(&cred, cluster_name, region, NULL, now, &token, &err) < 0) {
		kc_aws_credentials_clear(&cred);
		fprintf(stderr, "pam-kubeconfig: %s\n", err.msg);
		return KC_EXIT_ERROR;
	}
	kc_aws_credentials_clear(&cred);
	out = kc_eks_exec_credential(token, now);
	kc_free_secret(token);
	if (!out)
		return KC_EXIT_ERROR;
	fputs(out, stdout);
	kc_free_secret(out);
	return KC_EXIT_OK;
}

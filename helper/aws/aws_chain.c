/* eks-token's credentials: awscli's chain in botocore's order, for a user's own
 * environment and files. SSO is out of scope and refused with a clear error. */
#include "aws/aws_chain.h"
#include "aws/aws_sources.h"
#include "aws/aws_sts.h"
#include "aws/aws_profile.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"

#include <stdio.h>
#include <string.h>

#define MAX_ROLE_CHAIN 16

struct chain {
	const struct kc_aws_cli_env *env;
	const struct kc_aws_profiles *files;
	const struct kc_aws_service_endpoint *sts;
	const struct kc_aws_budget *b;
	time_t now;
	const char *visited[MAX_ROLE_CHAIN + 1];
	size_t n_visited;
};

static const char *get(const struct chain *c, const char *profile, const char *key)
{
	return kc_aws_profile_get(c->files, profile, key, 0);
}

/* A file the environment or a profile names: it must exist. */
static int read_file(const char *path, size_t max, struct kc_buf *out, struct kc_err *err)
{
	int rc = kc_aws_read_user_file(path, max, out, err);

	if (rc == 1)
		kc_seterr(err, "%s does not exist", path);
	return rc == 0 ? 0 : -1;
}

/* IMDS is link-local and answers at once: 3 s at most, as botocore's 1 s per call. */
static long long imds_deadline(const struct kc_aws_budget *b)
{
	long long d = kc_now_ms() + 3000;

	return b->deadline_ms && b->deadline_ms < d ? b->deadline_ms : d;
}

static int from_env(const struct kc_aws_cli_env *env, struct kc_aws_credentials *out, struct kc_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!env->access_key_id && !env->secret_access_key)
		return 1;
	if (!env->access_key_id || !env->secret_access_key)
		return kc_seterr(err, "the environment has only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
		       -1;
	out->access_key_id = strdup(env->access_key_id);
	out->secret_access_key = strdup(env->secret_access_key);
	out->session_token = env->session_token ? strdup(env->session_token) : NULL;
	if (!out->access_key_id || !out->secret_access_key || (env->session_token && !out->session_token)) {
		kc_aws_credentials_clear(out);
		return kc_seterr(err, "out of memory"), -1;
	}
	return 0;
}

static int from_container(const struct chain *c, struct kc_aws_credentials *out, struct kc_err *err)
{
	const struct kc_aws_cli_env *env = c->env;
	kc_autobuf struct kc_buf url = { 0 }, token = { .secret = true };

	if (!env->container_relative_uri && !env->container_full_uri)
		return 1;
	if (env->container_relative_uri)
		kc_buf_printf(&url, "%s%s", KC_AWS_ECS_BASE, env->container_relative_uri);
	else
		kc_buf_puts(&url, env->container_full_uri);
	if (env->container_token_file) {
		if (read_file(env->container_token_file, 16384, &token, err) < 0)
			return kc_seterr(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %s", err->msg), -1;
		while (token.len && (token.data[token.len - 1] == '\n' || token.data[token.len - 1] == '\r'))
			token.data[--token.len] = '\0';
	} else if (env->container_token) {
		kc_buf_puts(&token, env->container_token);
	}
	return kc_aws_credentials_from_container(url.data, token.data, c->b, out, err);
}

static int from_web_identity(const struct chain *c, const char *profile, bool use_env, struct kc_aws_credentials *out,
			     struct kc_err *err)
{
	const struct kc_aws_cli_env *env = c->env;
	const char *file = use_env && env->web_identity_token_file ? env->web_identity_token_file
								   : get(c, profile, "web_identity_token_file");
	const char *role = use_env && env->role_arn ? env->role_arn : get(c, profile, "role_arn");
	const char *name =
		use_env && env->role_session_name ? env->role_session_name : get(c, profile, "role_session_name");
	kc_autobuf struct kc_buf token = { .secret = true };
	char session[64];
	struct kc_aws_assume_role a = { role, name, NULL, 0 };

	if (!file)
		return 1;
	if (!role)
		return kc_seterr(err, "web identity (%s) needs a role ARN: set AWS_ROLE_ARN or role_arn in the profile",
				 file),
		       -1;
	if (!name) {
		snprintf(session, sizeof(session), "botocore-session-%lld", (long long)c->now);
		a.session_name = session;
	}
	if (read_file(file, 65536, &token, err) < 0)
		return kc_seterr(err, "web identity token: %s", err->msg), -1;
	return kc_aws_assume_role_with_web_identity(c->sts, c->b, &a, token.data ? token.data : "", out, err);
}

static int from_process(const struct chain *c, const char *profile, struct kc_aws_credentials *out, struct kc_err *err)
{
	const char *command = get(c, profile, "credential_process");

	if (!command)
		return 1;
	return kc_aws_credentials_from_process(command, c->env->envp, c->b->deadline_ms, out, err);
}

static bool has_role(const struct chain *c, const char *profile)
{
	return get(c, profile, "role_arn") && !get(c, profile, "web_identity_token_file");
}

static bool has_static(const struct chain *c, const char *profile)
{
	return get(c, profile, "aws_access_key_id") || get(c, profile, "aws_secret_access_key");
}

/* The providers botocore builds for one profile: web identity, SSO (refused),
 * shared credentials file, credential_process, config file. */
static int from_profile(const struct chain *c, const char *profile, bool env_allowed, struct kc_aws_credentials *out,
			struct kc_err *err)
{
	int rc = from_web_identity(c, profile, env_allowed, out, err);

	if (rc != 1)
		return rc;
	if (get(c, profile, "sso_start_url") || get(c, profile, "sso_session"))
		return kc_seterr(err,
				 "profile [%s] uses AWS IAM Identity Center (SSO), which pam-kubeconfig eks-token does "
				 "not support: use `aws eks get-token`, or export the role's credentials",
				 profile),
		       -1;
	rc = kc_aws_profile_keys(c->files, profile, 2, out, err);
	if (rc != 1)
		return rc;
	rc = from_process(c, profile, out, err);
	if (rc != 1)
		return rc;
	return kc_aws_profile_keys(c->files, profile, 1, out, err);
}

static int assume_role_profile(struct chain *c, const char *profile, struct kc_aws_credentials *out,
			       struct kc_err *err);

static int source_credentials(struct chain *c, const char *profile, struct kc_aws_credentials *out, struct kc_err *err)
{
	const char *source = get(c, profile, "source_profile"), *named = get(c, profile, "credential_source");

	if (source && named)
		return kc_seterr(err, "profile [%s] has both source_profile and credential_source; keep one", profile),
		       -1;
	if (named) {
		int rc = 1;

		if (strcmp(named, "Environment") == 0)
			rc = from_env(c->env, out, err);
		else if (strcmp(named, "Ec2InstanceMetadata") == 0)
			rc = kc_aws_credentials_from_imds(c->env->imds_endpoint, imds_deadline(c->b), out, err);
		else if (strcmp(named, "EcsContainer") == 0)
			rc = from_container(c, out, err);
		else
			return kc_seterr(err,
					 "profile [%s]: credential_source '%s' is not Environment, "
					 "Ec2InstanceMetadata or EcsContainer",
					 profile, named),
			       -1;
		return rc == 1 ? (kc_seterr(err, "credential_source %s of profile [%s] gave no credentials", named,
					    profile),
				  -1)
			       : rc;
	}
	if (!source)
		return kc_seterr(err, "profile [%s] has role_arn but neither source_profile nor credential_source",
				 profile),
		       -1;
	if (!kc_aws_profile_exists(c->files, source))
		return kc_seterr(err, "the source_profile [%s] of profile [%s] does not exist", source, profile), -1;
	for (size_t i = 0; i < c->n_visited; i++)
		if (strcmp(c->visited[i], source) == 0 && (strcmp(source, profile) != 0 || !has_static(c, source)))
			return kc_seterr(err, "profile [%s]: source_profile [%s] makes a loop; refused", profile,
					 source),
			       -1;
	if (c->n_visited == MAX_ROLE_CHAIN)
		return kc_seterr(err, "profile [%s]: more than %d roles in a chain", profile, MAX_ROLE_CHAIN), -1;
	c->visited[c->n_visited++] = source;
	if (has_static(c, source) || !has_role(c, source)) {
		int rc = from_profile(c, source, false, out, err);

		return rc == 1 ? (kc_seterr(err, "the source profile [%s] must have credentials", source), -1) : rc;
	}
	return assume_role_profile(c, source, out, err);
}

static int assume_role_profile(struct chain *c, const char *profile, struct kc_aws_credentials *out, struct kc_err *err)
{
	struct kc_aws_credentials base;
	struct kc_aws_assume_role a = { get(c, profile, "role_arn"), get(c, profile, "role_session_name"),
					get(c, profile, "external_id"), 0 };
	const char *duration = get(c, profile, "duration_seconds");
	char session[64];
	int rc;

	if (get(c, profile, "mfa_serial"))
		return kc_seterr(err,
				 "profile [%s] needs an MFA code (mfa_serial), which a kubectl plugin cannot ask for",
				 profile),
		       -1;
	if (duration)
		a.duration_seconds = strtol(duration, NULL, 10);
	if (!a.session_name) {
		snprintf(session, sizeof(session), "botocore-session-%lld", (long long)c->now);
		a.session_name = session;
	}
	if (source_credentials(c, profile, &base, err) < 0)
		return -1;
	rc = kc_aws_assume_role(c->sts, c->b, &a, &base, c->now, out, err);
	kc_aws_credentials_clear(&base);
	return rc;
}

int kc_aws_cli_credentials(const struct kc_aws_cli_env *env, const struct kc_aws_profiles *files,
			   const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b, time_t now,
			   struct kc_aws_credentials *out, struct kc_err *err)
{
	const char *profile = env->profile ? env->profile : "default";
	struct chain c = { env, files, sts, b, now, { profile }, 1 };
	int rc;

	memset(out, 0, sizeof(*out));
	if (env->profile && !kc_aws_profile_exists(files, profile))
		return kc_seterr(err, "the config profile (%s) could not be found", profile), -1;
	rc = env->profile_option ? 1 : from_env(env, out, err);
	if (rc == 1 && has_role(&c, profile))
		rc = assume_role_profile(&c, profile, out, err);
	if (rc == 1)
		rc = from_profile(&c, profile, !env->profile_option, out, err);
	if (rc == 1)
		rc = from_container(&c, out, err);
	if (rc == 1 && !env->imds_disabled) {
		rc = kc_aws_credentials_from_imds(env->imds_endpoint, imds_deadline(b), out, err);
		if (rc < 0)
			kc_seterr(err,
				  "no AWS credentials: none in the environment, in profile [%s] of ~/.aws/credentials "
				  "or ~/.aws/config, and the instance metadata service gave none (%s)",
				  profile, err->msg);
	} else if (rc == 1) {
		kc_seterr(err, "no AWS credentials: none in the environment or in profile [%s]", profile);
		rc = -1;
	}
	return rc;
}

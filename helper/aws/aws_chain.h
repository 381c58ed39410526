/* eks-token's credential chain: awscli's sources, in botocore's order. */
#ifndef KC_AWS_CHAIN_H
#define KC_AWS_CHAIN_H

#include <stdbool.h>
#include <time.h>

#include "aws/aws_endpoints.h"
#include "aws/aws_profile.h"
#include "aws/aws_sigv4.h"
#include "aws/http.h"
#include "common/util.h"

/* What eks-token read from its environment and options. */
struct kc_aws_cli_env {
	const char *access_key_id, *secret_access_key, *session_token;
	const char *profile; /* --profile, else AWS_DEFAULT_PROFILE or AWS_PROFILE; NULL: default */
	bool profile_option; /* --profile given: the environment's keys are not used */
	const char *web_identity_token_file, *role_arn, *role_session_name;
	const char *container_relative_uri, *container_full_uri;
	const char *container_token, *container_token_file;
	const char *imds_endpoint;
	bool imds_disabled;
	char *const *envp; /* for credential_process */
};

/* Environment, assume-role profiles (source_profile + role_arn, loops refused;
 * credential_source), web identity, shared credentials file, credential_process,
 * config file, container credentials, IMDSv2. SSO profiles are refused. sts is
 * where chained AssumeRole calls go. */
int kc_aws_cli_credentials(const struct kc_aws_cli_env *env, const struct kc_aws_profiles *files,
			   const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b, time_t now,
			   struct kc_aws_credentials *out, struct kc_err *err);

#endif

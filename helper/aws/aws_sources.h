/* Where AWS credentials come from, one source at a time: IMDSv2, container
 * credentials (ECS, EKS Pod Identity) and credential_process. Each network step
 * takes an absolute deadline and never runs past it. */
#ifndef KC_AWS_SOURCES_H
#define KC_AWS_SOURCES_H

#include <stddef.h>
#include <time.h>

#include "aws/aws_sigv4.h"
#include "aws/http.h"
#include "common/util.h"

#define KC_AWS_PROCESS_OUTPUT_MAX (64u << 10)

/* IMDSv2: a session token by PUT, the role name, the role's credentials. Never
 * through a proxy. base_url NULL: http://169.254.169.254. The three calls share
 * deadline_ms (callers give IMDS a short one: it is link-local and answers at
 * once); each connect takes at most 1 s. */
int kc_aws_credentials_from_imds(const char *base_url, long long deadline_ms, struct kc_aws_credentials *out,
				 struct kc_err *err);

/* Container credentials (ECS, EKS Pod Identity): GET url with the authorization
 * token (a secret; NULL: none). Plain HTTP only to loopback, 169.254.170.2,
 * 169.254.170.23 or [fd00:ec2::23], as botocore allows. */
#define KC_AWS_ECS_BASE "http://169.254.170.2"
int kc_aws_container_url_allowed(const char *url, struct kc_err *err);
int kc_aws_credentials_from_container(const char *url, const char *authorization, const struct kc_aws_budget *b,
				      struct kc_aws_credentials *out, struct kc_err *err);

/* credential_process: the command (split as a POSIX shell splits words, never
 * run by a shell) with envp (NULL: PATH only) and stdin from /dev/null; its
 * stdout capped at KC_AWS_PROCESS_OUTPUT_MAX, killed at the deadline. */
int kc_aws_credentials_from_process(const char *command, char *const *envp, long long deadline_ms,
				    struct kc_aws_credentials *out, struct kc_err *err);
/* The JSON contract: Version 1, AccessKeyId, SecretAccessKey, optional
 * SessionToken and Expiration (refused when past). */
int kc_aws_process_output_parse(const char *json, size_t len, time_t now, struct kc_aws_credentials *out,
				struct kc_err *err);
/* Splits a command line into words ('...', "...", backslash), as shlex does.
 * Caller frees each word and the array. */
int kc_aws_split_words(const char *line, char ***words, size_t *n, struct kc_err *err);

#endif

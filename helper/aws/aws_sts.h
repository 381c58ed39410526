/* STS: AssumeRole (signed) and AssumeRoleWithWebIdentity (the token is the proof). */
#ifndef KC_AWS_STS_H
#define KC_AWS_STS_H

#include <time.h>

#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"
#include "aws/http.h"
#include "common/util.h"

struct kc_aws_assume_role {
	const char *role_arn;
	const char *session_name;
	const char *external_id; /* NULL: none */
	long duration_seconds; /* 0: STS's default (1 h) */
};

/* AssumeRole, header-signed with cred. */
int kc_aws_assume_role(const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b,
		       const struct kc_aws_assume_role *a, const struct kc_aws_credentials *cred, time_t now,
		       struct kc_aws_credentials *out, struct kc_err *err);
/* AssumeRoleWithWebIdentity: unsigned, the token (a secret) is the proof. */
int kc_aws_assume_role_with_web_identity(const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b,
					 const struct kc_aws_assume_role *a, const char *web_identity_token,
					 struct kc_aws_credentials *out, struct kc_err *err);
/* A role ARN's partition must be the region's ("arn:aws-cn:..." with cn-north-1). */
int kc_aws_check_arn_partition(const char *arn, const char *region, struct kc_err *err);

#endif

/* The login helper's own AWS identity: an EKS reference (which cluster, which
 * region, which role, and where the base credentials come from) and the
 * credentials it names, never from the environment. */
#ifndef KC_AWS_CREDENTIALS_H
#define KC_AWS_CREDENTIALS_H

#include <stdbool.h>

#include "aws/aws_sigv4.h"
#include "aws/http.h"
#include "common/util.h"

#define KC_AWS_REFRESH_MARGIN 300 /* credentials this close to expiry count as expired */

/* An EKS cluster or identity as the config names it: under a cluster's eks:
 * (discovery) or its auth.eks: (the helper's identity). */
struct kc_eks_ref {
	char *cluster_name;
	char *cluster_id; /* auth: an Outposts local cluster's id, signed instead of the name */
	char *region;
	char *role_arn;
	/* auth: where the base credentials come from, at most one; none: IMDSv2 */
	char *credentials_file;
	char *profile;
	char *web_identity_token_file; /* with role_arn: AssumeRoleWithWebIdentity */
	char *credential_process;
	char *container_uri; /* container_credentials_uri (ECS, EKS Pod Identity) */
	char *container_token_file; /* container_authorization_token_file */
	bool use_fips_endpoint;
	bool use_dualstack_endpoint;
	char *endpoint; /* tests only: where DescribeCluster calls go */
	char *sts_endpoint; /* tests only: where STS calls go (tokens still name the real host) */
	char *imds_endpoint; /* tests only */
	char *endpoint_ca; /* tests only: CA file for an HTTPS stand-in */
	long discovery_ttl;
	struct kc_mark credentials_mark, endpoint_ca_mark, web_identity_mark, container_token_mark,
		process_mark; /* for the file checks */
};

/* The helper's credentials for one auth block, only from what it names: the
 * root-only credentials_file and profile, web_identity_token_file (with
 * role_arn), credential_process, container_endpoint, else IMDSv2; then role_arn
 * (AssumeRole). Never from the environment. Cached in the cache store
 * (KC_CACHE_SECRET) until KC_AWS_REFRESH_MARGIN before they expire. limits: the
 * configured timeouts and the deadline (its ca_file is not used: auth names its own). */
int kc_aws_helper_credentials(const struct kc_eks_ref *auth, const struct kc_aws_budget *limits,
			      struct kc_aws_credentials *out, struct kc_err *err);

/* The config's checks of an eks block (which keys go together, the role ARN's
 * partition, a FIPS or dual-stack choice the partition has). On error *key
 * names the key to point at. */
int kc_aws_check_eks_ref(const struct kc_eks_ref *e, bool for_auth, const char **key, struct kc_err *err);
/* credential_process's program: an absolute path to a root-owned file that
 * neither group nor others may write. */
int kc_aws_check_process_program(const char *command, struct kc_err *err);

/* What `check --online` found when it asked IMDS as an unprivileged user, kept
 * in the cache store: 1 reachable (every local user can take the role), 0
 * blocked, -1 never probed. */
int kc_imds_probe_result(void);
void kc_imds_probe_record(bool reachable);

#endif

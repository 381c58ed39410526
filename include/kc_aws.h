/* AWS for the helper: credentials (shared file, IMDSv2, AssumeRole), the EKS
 * token (a presigned STS GetCallerIdentity URL) and DescribeCluster discovery. */
#ifndef KC_AWS_H
#define KC_AWS_H

#include <stdbool.h>
#include <time.h>

#include "kc_config.h"
#include "kc_sigv4.h"
#include "kc_util.h"

#define KC_EKS_TOKEN_PREFIX "k8s-aws-v1."
#define KC_EKS_TOKEN_LIFETIME (14 * 60) /* what `aws eks get-token` reports */

/* Where an AWS call goes and whom it trusts. */
struct kc_aws_endpoint {
	const char *url; /* https://sts.us-west-2.amazonaws.com */
	const char *ca_file; /* tests only: trust this CA alone; NULL: the system store */
	long connect_timeout_ms;
	long timeout_ms;
};

/* A shared credentials file (INI) section. trusted_root: the file must be a
 * root-owned 0600 file (the helper); otherwise any readable file (the CLI). */
int kc_aws_credentials_from_file(const char *path, const char *profile, bool trusted_root,
				 struct kc_aws_credentials *out, struct kc_err *err);

/* IMDSv2: a session token by PUT, the role name, the role's credentials. Never
 * through a proxy; the deadline covers all three calls. */
int kc_aws_credentials_from_imds(const char *base_url, long timeout_ms, struct kc_aws_credentials *out,
				 struct kc_err *err);

/* What `check --online` found when it asked IMDS as an unprivileged user:
 * 1 reachable (every local user can take the role), 0 blocked, -1 never probed. */
#define KC_IMDS_PROBE_FILE "imds-probe"
int kc_imds_probe_result(void);
void kc_imds_probe_record(bool reachable);

/* STS AssumeRole with SigV4 (header signing). */
int kc_aws_assume_role(const struct kc_aws_endpoint *sts, const char *region, const char *role_arn,
		       const char *session_name, const struct kc_aws_credentials *cred, time_t now,
		       struct kc_aws_credentials *out, struct kc_err *err);

/* The helper's credentials for one auth block: the credentials file and profile,
 * else IMDSv2; then role_arn if set. Cached root-only under KC_CACHE_DIR until
 * shortly before expiry. */
int kc_aws_helper_credentials(const struct kc_config *cfg, const struct kc_eks_ref *auth,
			      struct kc_aws_credentials *out, struct kc_err *err);

/* The EKS token for cluster_name: "k8s-aws-v1." + unpadded base64url of a
 * presigned GetCallerIdentity URL (X-Amz-Expires=60, x-k8s-aws-id signed), in
 * the byte layout `aws eks get-token` produces. sts_url NULL: the regional one.
 * Caller frees *token with kc_free_secret(). */
int kc_eks_token(const struct kc_aws_credentials *cred, const char *cluster_name, const char *region,
		 const char *sts_url, time_t now, char **token, struct kc_err *err);

/* `aws eks get-token`'s ExecCredential JSON (indent 4, then a blank line, as awscli prints it).
 * Caller frees with kc_free_secret(). */
char *kc_eks_exec_credential(const char *token, time_t now);

/* DescribeCluster: endpoint, CA (PEM) and ARN, cached for discovery_ttl. */
struct kc_eks_cluster {
	char *endpoint;
	unsigned char *ca_pem;
	size_t ca_pem_len;
	char *arn;
};
int kc_eks_describe_cluster(const struct kc_config *cfg, const struct kc_eks_ref *ref,
			    const struct kc_aws_credentials *cred, struct kc_eks_cluster *out, struct kc_err *err);
void kc_eks_cluster_free(struct kc_eks_cluster *c);

/* Fills server, CA and (unless given) the context of a cluster with eks:
 * discovery, from DescribeCluster or its cache. */
int kc_eks_discover(const struct kc_config *cfg, struct kc_cluster *cl, struct kc_err *err);

#endif

/* EKS: the token (a presigned STS GetCallerIdentity URL, byte for byte as `aws
 * eks get-token`), the ExecCredential kubectl reads, and DescribeCluster. */
#ifndef KC_AWS_EKS_H
#define KC_AWS_EKS_H

#include <stddef.h>
#include <time.h>

#include "aws/aws_credentials.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"
#include "common/util.h"

#define KC_EKS_TOKEN_PREFIX "k8s-aws-v1."
#define KC_EKS_TOKEN_LIFETIME (14 * 60) /* what `aws eks get-token` reports */
#define KC_EKS_CLI_SESSION_NAME "EKSGetTokenAuth" /* awscli's for --role-arn */

/* The EKS token for cluster_id (the cluster name, or an Outposts cluster's id):
 * "k8s-aws-v1." + unpadded base64url of a presigned GetCallerIdentity URL on
 * sts->url (X-Amz-Expires=60, x-k8s-aws-id signed), byte for byte as `aws eks
 * get-token`. Pure: no I/O. Caller frees *token with kc_free_secret(). */
int kc_eks_token(const struct kc_aws_credentials *cred, const char *cluster_id,
		 const struct kc_aws_service_endpoint *sts, time_t now, char **token, struct kc_err *err);
/* The same for an auth block: its cluster_id or cluster_name, its region's STS
 * host (with its FIPS/dual-stack choice). Pure. */
int kc_eks_auth_token(const struct kc_eks_ref *auth, const struct kc_aws_credentials *cred, time_t now, char **token,
		      struct kc_err *err);

#define KC_EXEC_V1 "client.authentication.k8s.io/v1"
#define KC_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define KC_EXEC_V1ALPHA1 "client.authentication.k8s.io/v1alpha1"
/* `aws eks get-token`'s ExecCredential JSON for api_version (indent 4, then a
 * blank line, as awscli prints it). Caller frees with kc_free_secret(). */
char *kc_eks_exec_credential(const char *token, time_t now, const char *api_version);

/* DescribeCluster: endpoint, CA (PEM) and ARN. */
struct kc_eks_cluster {
	char *endpoint;
	unsigned char *ca_pem;
	size_t ca_pem_len;
	char *arn;
};
/* ref is a cluster's eks: (discovery) block. The call is signed with auth's
 * credentials (NULL: the instance role, by IMDSv2); they and the call share
 * limits. The answer is cached in the cache store for ref->discovery_ttl. */
int kc_eks_describe_cluster(const struct kc_eks_ref *ref, const struct kc_eks_ref *auth,
			    const struct kc_aws_budget *limits, struct kc_eks_cluster *out, struct kc_err *err);
void kc_eks_cluster_free(struct kc_eks_cluster *c);

#endif

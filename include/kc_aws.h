/* AWS for the helper and for eks-token: credentials from each source awscli or
 * the config names, STS (AssumeRole, AssumeRoleWithWebIdentity), the EKS token
 * (a presigned STS GetCallerIdentity URL) and DescribeCluster discovery.
 * Every network step takes an absolute deadline and never runs past it; every
 * host name comes from kc_aws_resolve() (kc_aws_endpoints.h). */
#ifndef KC_AWS_H
#define KC_AWS_H

#include <stdbool.h>
#include <time.h>

#include "kc_aws_endpoints.h"
#include "kc_config.h"
#include "kc_sigv4.h"
#include "kc_util.h"

#define KC_EKS_TOKEN_PREFIX "k8s-aws-v1."
#define KC_EKS_TOKEN_LIFETIME (14 * 60) /* what `aws eks get-token` reports */
#define KC_EKS_CLI_SESSION_NAME "EKSGetTokenAuth" /* awscli's for --role-arn */
#define KC_AWS_PROCESS_OUTPUT_MAX (64u << 10)
#define KC_AWS_REFRESH_MARGIN 300 /* credentials this close to expiry count as expired */

/* What one AWS network step may take. */
struct kc_aws_budget {
	const char *ca_file; /* trust this CA alone (tests' stand-ins); NULL: the system store */
	long connect_timeout_ms; /* configured limits; 0: none */
	long timeout_ms;
	long long deadline_ms; /* absolute, as kc_now_ms(); 0: none */
};

/* ---- sources (aws_sources.c) --------------------------------------------------- */

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

/* ---- STS (aws_sts.c) ----------------------------------------------------------- */

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

/* ---- the shared config and credentials files (aws_profile.c) ---------------- */

struct kc_aws_profile_entry {
	char *profile, *key, *value; /* value may be a secret: wiped when freed */
	bool from_credentials_file;
};
struct kc_aws_profiles {
	struct kc_aws_profile_entry *e;
	size_t n;
};

#define KC_AWS_FILES_ROOT_ONLY 1u /* the helper's: root-owned, readable by root alone */
/* Loads ~/.aws/config style ([profile NAME], [default]) and credentials style
 * ([NAME]) files; either path may be NULL, a missing file is empty. */
int kc_aws_profiles_load(struct kc_aws_profiles *p, const char *config_file, const char *credentials_file,
			 unsigned flags, struct kc_err *err);
/* A key of a profile; the credentials file wins over the config file.
 * from: 0 either, 1 config file only, 2 credentials file only. */
const char *kc_aws_profile_get(const struct kc_aws_profiles *p, const char *profile, const char *key, int from);
bool kc_aws_profile_exists(const struct kc_aws_profiles *p, const char *profile);
void kc_aws_profiles_free(struct kc_aws_profiles *p);
/* A user's file (symlinks followed, as awscli), a regular file of at most max
 * bytes, appended to out. Returns 0, 1 when it does not exist, -1 (err set). */
int kc_aws_read_user_file(const char *path, size_t max, struct kc_buf *out, struct kc_err *err);
/* aws_access_key_id and aws_secret_access_key (+ aws_session_token) of a
 * profile in one file (from as above). Returns 0, 1 when the profile has none,
 * -1 when only half of them (err set). */
int kc_aws_profile_keys(const struct kc_aws_profiles *p, const char *profile, int from, struct kc_aws_credentials *out,
			struct kc_err *err);

/* ---- eks-token's chain: awscli's, in botocore's order (aws_chain.c) ---------- */

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

/* ---- the login helper (aws_credentials.c) ------------------------------------ */

/* The helper's credentials for one auth block, only from what it names: the
 * root-only credentials_file and profile, web_identity_token_file (with
 * role_arn), credential_process, container_endpoint, else IMDSv2; then role_arn
 * (AssumeRole). Never from the environment. Cached in the cache store
 * (KC_CACHE_SECRET) until KC_AWS_REFRESH_MARGIN before they expire. */
int kc_aws_helper_credentials(const struct kc_config *cfg, const struct kc_eks_ref *auth, long long deadline_ms,
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

/* ---- EKS (eks.c) ----------------------------------------------------------------- */

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
/* ref is a cluster's eks: (discovery) block in cfg. The credentials are that
 * cluster's auth.eks ones, or the instance role (IMDSv2) when its auth is not
 * eks; they and the call share deadline_ms. The answer is cached in the cache
 * store for ref->discovery_ttl. */
int kc_eks_describe_cluster(const struct kc_config *cfg, const struct kc_eks_ref *ref, long long deadline_ms,
			    struct kc_eks_cluster *out, struct kc_err *err);
void kc_eks_cluster_free(struct kc_eks_cluster *c);

#endif

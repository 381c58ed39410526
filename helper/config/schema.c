/* The field lists: every member of the config structs, once, with the key that
 * fills it. The order of the keys is the order messages list them in. */
#include <stddef.h>

#include "config/fields.h"

#define F(sec, k, t, s, m, fl)                                    \
	{                                                         \
		sec, k, t, offsetof(S, m), 0, NULL, fl, CF_NOMARK \
	}
#define FM(sec, k, t, s, m, fl, mk)                                     \
	{                                                               \
		sec, k, t, offsetof(S, m), 0, NULL, fl, offsetof(S, mk) \
	}
#define FA(sec, k, t, m, cnt, sub, fl)                                          \
	{                                                                       \
		sec, k, t, offsetof(S, m), offsetof(S, cnt), sub, fl, CF_NOMARK \
	}
#define FS(sec, k, m, sub, fl)                                           \
	{                                                                \
		sec, k, CF_STRUCT, offsetof(S, m), 0, sub, fl, CF_NOMARK \
	}
#define KEY(sec, k, fl)                                    \
	{                                                  \
		sec, k, CF_NONE, 0, 0, NULL, fl, CF_NOMARK \
	}
#define N(list) (sizeof(list) / sizeof((list)[0]))

#define S struct kc_eks_ref
static const struct cfg_field eks_fields[] = {
	F(NULL, "cluster_name", CF_STR, S, cluster_name, CF_REQUIRED),
	F(NULL, "cluster_id", CF_STR, S, cluster_id, CF_AUTH),
	F(NULL, "region", CF_STR, S, region, CF_REQUIRED),
	F(NULL, "discovery_ttl", CF_DURATION, S, discovery_ttl, CF_DISCOVERY),
	F(NULL, "role_arn", CF_STR, S, role_arn, CF_AUTH),
	FM(NULL, "credentials_file", CF_STR, S, credentials_file, CF_AUTH | CF_PATH, credentials_mark),
	F(NULL, "profile", CF_STR, S, profile, CF_AUTH),
	FM(NULL, "web_identity_token_file", CF_STR, S, web_identity_token_file, CF_AUTH | CF_PATH, web_identity_mark),
	FM(NULL, "credential_process", CF_STR, S, credential_process, CF_AUTH, process_mark),
	F(NULL, "container_credentials_uri", CF_STR, S, container_uri, CF_AUTH),
	FM(NULL, "container_authorization_token_file", CF_STR, S, container_token_file, CF_AUTH | CF_PATH,
	   container_token_mark),
	F(NULL, "use_fips_endpoint", CF_BOOL, S, use_fips_endpoint, 0),
	F(NULL, "use_dualstack_endpoint", CF_BOOL, S, use_dualstack_endpoint, 0),
	F(NULL, "endpoint", CF_STR, S, endpoint, CF_DISCOVERY),
	F(NULL, "sts_endpoint", CF_STR, S, sts_endpoint, CF_AUTH),
	F(NULL, "imds_endpoint", CF_STR, S, imds_endpoint, CF_AUTH),
	FM(NULL, "endpoint_ca", CF_STR, S, endpoint_ca, CF_PATH, endpoint_ca_mark),
	F(NULL, NULL, CF_MARK, S, credentials_mark, 0),
	F(NULL, NULL, CF_MARK, S, web_identity_mark, 0),
	F(NULL, NULL, CF_MARK, S, process_mark, 0),
	F(NULL, NULL, CF_MARK, S, container_token_mark, 0),
	F(NULL, NULL, CF_MARK, S, endpoint_ca_mark, 0),
};
const struct cfg_desc cfg_eks_desc = { "an eks block", sizeof(S), eks_fields, N(eks_fields) };
#undef S

#define S struct kc_cluster
static const struct cfg_field cluster_fields[] = {
	F(NULL, "name", CF_STR, S, name, CF_REQUIRED),
	F(NULL, "context", CF_STR, S, context, 0),
	F(NULL, "server", CF_STR, S, server, 0),
	FM(NULL, "certificate_authority", CF_STR, S, ca_file, CF_PATH, ca_mark),
	KEY(NULL, "certificate_authority_data", CF_CUSTOM),
	FM(NULL, "insecure_skip_tls_verify", CF_BOOL, S, insecure_skip_tls_verify, 0, insecure_mark),
	F(NULL, "proxy", CF_STR, S, proxy, 0),
	FA(NULL, "also_reachable_at", CF_STRLIST, also_reachable_at, n_also, NULL, CF_CUSTOM),
	FS(NULL, "eks", eks, &cfg_eks_desc, CF_CUSTOM),
	KEY(NULL, "auth", CF_CUSTOM),
	FM("auth", "token_file", CF_STR, S, token_file, CF_PATH, token_mark),
	FM("auth", "client_certificate", CF_STR, S, client_certificate, CF_PATH, cert_mark),
	FM("auth", "client_key", CF_STR, S, client_key, CF_PATH, key_mark),
	FS("auth", "eks", auth_eks, &cfg_eks_desc, CF_CUSTOM),
	F(NULL, NULL, CF_BOOL, S, context_given, 0),
	FA(NULL, NULL, CF_BYTES, ca_pem, ca_pem_len, NULL, 0),
	F(NULL, NULL, CF_BOOL, S, has_eks, 0),
	F(NULL, NULL, CF_INT, S, auth, 0),
	F(NULL, NULL, CF_MARK, S, mark, 0),
	F(NULL, NULL, CF_MARK, S, auth_mark, 0),
	F(NULL, NULL, CF_MARK, S, insecure_mark, 0),
	F(NULL, NULL, CF_MARK, S, ca_mark, 0),
	F(NULL, NULL, CF_MARK, S, token_mark, 0),
	F(NULL, NULL, CF_MARK, S, cert_mark, 0),
	F(NULL, NULL, CF_MARK, S, key_mark, 0),
};
const struct cfg_desc cfg_cluster_desc = { "a cluster", sizeof(S), cluster_fields, N(cluster_fields) };
#undef S

#define S struct kc_mapping
static const struct cfg_field mapping_fields[] = {
	F(NULL, "user", CF_STR, S, user, 0),
	F(NULL, "group", CF_STR, S, group, 0),
	F(NULL, "cluster", CF_STR, S, cluster, CF_REQUIRED),
	FM(NULL, "serviceaccount", CF_NONE, S, sa_namespace, CF_REQUIRED | CF_CUSTOM, sa_mark),
	F(NULL, "create", CF_BOOL, S, create, 0),
	F(NULL, "clusterrole", CF_STR, S, clusterrole, 0),
	F(NULL, "cluster_wide", CF_BOOL, S, cluster_wide, 0),
	FM(NULL, "ssh_certificate", CF_NONE, S, cert_principal, CF_CUSTOM, cert_mark),
	F("ssh_certificate", "principal", CF_STR, S, cert_principal, 0),
	F("ssh_certificate", "key_id", CF_STR, S, cert_key_id, 0),
	F(NULL, NULL, CF_MARK, S, cert_mark, 0),
	F(NULL, NULL, CF_STR, S, sa_namespace, 0),
	F(NULL, NULL, CF_STR, S, sa_name, 0),
	F(NULL, NULL, CF_MARK, S, mark, 0),
	F(NULL, NULL, CF_MARK, S, sa_mark, 0),
};
const struct cfg_desc cfg_mapping_desc = { "a mapping rule", sizeof(S), mapping_fields, N(mapping_fields) };
#undef S

#define S struct kc_config
static const struct cfg_field config_fields[] = {
	F(NULL, NULL, CF_STR, S, path, 0),
	F(NULL, "min_uid", CF_ULONG, S, min_uid, CF_CUSTOM),
	F(NULL, "host_id", CF_STR, S, host_id, 0),
	KEY(NULL, "kubeconfig", CF_CUSTOM),
	KEY(NULL, "token", CF_CUSTOM),
	KEY(NULL, "network", CF_CUSTOM),
	FA(NULL, "clusters", CF_ARRAY, clusters, n_clusters, &cfg_cluster_desc, CF_CUSTOM),
	FA(NULL, "mappings", CF_ARRAY, mappings, n_mappings, &cfg_mapping_desc, CF_CUSTOM),
	F("kubeconfig", "path", CF_STR, S, kubeconfig_path, CF_CUSTOM),
	F("kubeconfig", "set_env", CF_BOOL, S, set_env, 0),
	F("kubeconfig", "remove_on_logout", CF_BOOL, S, remove_on_logout, 0),
	F("kubeconfig", "inline_token", CF_BOOL, S, inline_token, 0),
	F("token", "ttl", CF_DURATION, S, ttl, 0),
	FA("token", "audiences", CF_STRLIST, audiences, n_audiences, NULL, CF_CUSTOM),
	F("token", "revoke_on_logout", CF_BOOL, S, revoke_on_logout, 0),
	F("token", "refresh_before", CF_INT, S, refresh_before, CF_CUSTOM),
	F("network", "connect_timeout", CF_LONG, S, connect_timeout_ms, CF_CUSTOM),
	F("network", "request_timeout", CF_LONG, S, request_timeout_ms, CF_CUSTOM),
	F("network", "after_failure", CF_DURATION, S, after_failure, 0),
	F("network", "cut_on_logout", CF_BOOL, S, cut_on_logout, 0),
	KEY(NULL, "ssh_certificates", CF_CUSTOM),
	FM("ssh_certificates", "trusted_ca_keys", CF_STR, S, ssh_ca_keys, CF_PATH, ssh_ca_mark),
	FM("ssh_certificates", "authorized_principals_file", CF_STR, S, ssh_principals_file, CF_PATH,
	   ssh_principals_mark),
	KEY(NULL, "fleet", CF_CUSTOM),
	FM("fleet", "namespace", CF_STR, S, fleet_namespace, 0, fleet_mark),
	KEY(NULL, "metrics", CF_CUSTOM),
	FM("metrics", "textfile_dir", CF_STR, S, metrics_dir, CF_PATH, metrics_mark),
	F(NULL, NULL, CF_MARK, S, ssh_ca_mark, 0),
	F(NULL, NULL, CF_MARK, S, ssh_principals_mark, 0),
	F(NULL, NULL, CF_MARK, S, fleet_mark, 0),
	F(NULL, NULL, CF_MARK, S, metrics_mark, 0),
};
const struct cfg_desc cfg_config_desc = { "the top level", sizeof(S), config_fields, N(config_fields) };
#undef S

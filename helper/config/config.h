/* The configuration (/etc/pam_kubeconfig/config.yaml) as the helper uses it.
 * Loaded strictly: every error names PATH:LINE:COL and what to write instead. */
#ifndef KC_CONFIG_H
#define KC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "aws/aws_credentials.h"
#include "common/util.h"

#define KC_DEFAULT_CONFIG "/etc/pam_kubeconfig/config.yaml"
#define KC_CONFIG_MAX (4u << 20) /* 4 MiB: room for tens of thousands of rules */
#define KC_MIN_TTL 600

enum kc_auth_kind { KC_AUTH_NONE, KC_AUTH_TOKEN, KC_AUTH_CERT, KC_AUTH_EKS };

struct kc_cluster {
	char *name;
	char *context;
	bool context_given; /* else discovery names the context after the ARN */
	char *server;
	char *ca_file; /* certificate_authority */
	unsigned char *ca_pem; /* the PEM bytes, from the file or from certificate_authority_data */
	size_t ca_pem_len;
	bool insecure_skip_tls_verify;
	char *proxy;
	/* Other front doors of the same API server (an EKS private endpoint, a
	 * load balancer, a node): "ip port" each, port 0 for the server's own. Cut too. */
	char **also_reachable_at;
	size_t n_also;
	bool has_eks; /* discovery instead of server + CA */
	struct kc_eks_ref eks;
	enum kc_auth_kind auth;
	char *token_file;
	char *client_certificate;
	char *client_key;
	struct kc_eks_ref auth_eks;
	struct kc_mark mark, auth_mark, insecure_mark;
	struct kc_mark ca_mark, token_mark, cert_mark, key_mark; /* for the file checks */
};

struct kc_mapping {
	char *user; /* exact name or "*"; NULL for a group rule */
	char *group; /* group name; NULL for a user rule */
	char *cluster;
	char *sa_namespace; /* template: may hold {user} / {user_safe} */
	char *sa_name; /* template */
	bool create;
	char *clusterrole; /* NULL: bind nothing */
	bool cluster_wide;
	/* ssh_certificate: matches only a login with a verified certificate that
	 * holds this principal (authorized for the user) and/or a key id
	 * matching this glob. NULL both: any login. */
	char *cert_principal;
	char *cert_key_id;
	struct kc_mark mark, sa_mark, cert_mark;
};

struct kc_config {
	char *path;
	unsigned long min_uid;
	char *host_id; /* from the config or /etc/machine-id */
	char *kubeconfig_path; /* relative to the home: "~/" stripped */
	bool set_env;
	bool remove_on_logout;
	bool inline_token; /* the token inside the file instead of tokenFile: */
	long ttl;
	char **audiences;
	size_t n_audiences;
	bool revoke_on_logout;
	int refresh_before; /* percent */
	long connect_timeout_ms;
	long request_timeout_ms;
	long after_failure;
	bool cut_on_logout;
	char *ssh_ca_keys; /* ssh_certificates.trusted_ca_keys: NULL, no certificate counts */
	char *ssh_principals_file; /* ssh_certificates.authorized_principals_file, %u: the user */
	char *fleet_namespace; /* fleet.namespace: NULL, no fleet */
	char *metrics_dir; /* metrics.textfile_dir: NULL, no metrics file */
	struct kc_mark ssh_ca_mark, ssh_principals_mark, fleet_mark, metrics_mark;
	struct kc_cluster *clusters;
	size_t n_clusters;
	struct kc_mapping *mappings;
	size_t n_mappings;
};

/* Loads and validates the file. Ownership and mode are enforced unless
 * KC_LOAD_NO_FILES is given (unit tests and fuzzers: no file but the config is opened). Credential files
 * are checked (owner, mode, not empty) but never read here. On error returns NULL
 * with "PATH:LINE:COL: message" in err. Caller frees with kc_config_free(). */
#define KC_LOAD_NO_FILES 1u
struct kc_config *kc_config_load(const char *path, unsigned flags, struct kc_err *err);
/* The same from memory; name is used in messages. */
struct kc_config *kc_config_parse(const char *name, const char *data, size_t len, unsigned flags, struct kc_err *err);
void kc_config_free(struct kc_config *cfg);

const struct kc_cluster *kc_config_cluster(const struct kc_config *cfg, const char *name);

/* Warnings `check` prints (kube-system mappings, insecure clusters): one per line
 * into out, "PATH:LINE:COL: warning: ...". Returns the number of warnings. */
int kc_config_warnings(const struct kc_config *cfg, struct kc_buf *out);

#endif

/* Which ServiceAccount a Unix user gets on each cluster, and why. */
#ifndef KC_MAPPING_H
#define KC_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <pwd.h>
#include <sys/types.h>
#include <time.h>

#include "config/config.h"

#define KC_NS_MAX 64 /* DNS-1123 label: 63 + NUL */
#define KC_NAME_MAX 254 /* DNS-1123 subdomain: 253 + NUL */

/* A verified SSH certificate a live session of the user logged in with, as
 * the mapping sees it: the principals it may use for this user (with an
 * authorized_principals_file, only those listed for the user there), its key
 * id, and when it ends. Only certificates still valid are given. */
struct kc_cert_claim {
	const char *key_id;
	const char *const *principals;
	size_t n_principals;
	time_t valid_before;
};

/* A Unix user as the mapping sees it. Filled by kc_identity_load(); caller frees
 * with kc_identity_free(). certs and the locks are the lifecycle's to set
 * (borrowed, never freed here). */
struct kc_identity {
	char *name;
	uid_t uid;
	gid_t gid;
	char *home;
	char **groups; /* names of the primary and supplementary groups */
	size_t n_groups;
	gid_t *gids; /* the same groups' ids, as initgroups() would set them (the writer's drop) */
	size_t n_gids;
	const struct kc_cert_claim *certs;
	size_t n_certs;
	bool locked_all; /* an administrator's lock on every cluster (revoke USER) */
	const char *const *locked; /* ... or on these clusters */
	size_t n_locked;
	const char *const *held; /* clusters whose fleet locks could not be read: nothing changes there */
	size_t n_held;
};

/* Returns 0; KC_ABSENT when there is no such user; KC_UNKNOWN when the user
 * or group database could not answer (NSS down, I/O error): then nothing may
 * be concluded about the user's grants, and err says what failed. */
/* getpwnam_r (name) or getpwuid_r (name NULL), the buffer grown as an entry
 * needs: 0 found, 1 no such user, -errno when the database could not answer.
 * *buf holds the entry's strings; the caller frees it in every case. */
int kc_getpw(const char *name, uid_t uid, struct passwd *pw, char **buf);
int kc_identity_load(const char *user, struct kc_identity *id, struct kc_err *err);
void kc_identity_free(struct kc_identity *id);

/* What one cluster gives the user. */
struct kc_target {
	const struct kc_cluster *cluster;
	const struct kc_mapping *rule; /* NULL: no rule matched */
	size_t rule_index;
	char sa_namespace[KC_NS_MAX];
	char sa_name[KC_NAME_MAX];
	char error[512]; /* set when the rule matched but gives an invalid name */
	time_t cert_until; /* a rule with ssh_certificate: the latest valid_before of the certificates it met */
	bool locked; /* an administrator's lock holds the cluster: no rule is looked at */
	bool held; /* whether it is locked cannot be told now: no request is sent there */
};

/* For each cluster (targets[i] for cfg->clusters[i]) the first rule that matches:
 * by user or group, and a rule with ssh_certificate only by one of id->certs
 * (principal among its principals, key id matching the glob). A locked
 * cluster matches nothing. Returns how many clusters have a usable target. */
size_t kc_map_user(const struct kc_config *cfg, const struct kc_identity *id, struct kc_target *targets);

/* {user_safe}: a reversible escape encoding into [a-z0-9-]. A name that is
 * already a DNS label without "--" (kc_user_safe_unchanged()) stays as it is;
 * any other name takes escapes that begin with "--": "--" + a letter is that
 * letter in uppercase, "--" + three decimal digits is any other byte, and a '-'
 * that could be misread is escaped too ("First.Last" -> "--first--046--last").
 * Distinct names never share an encoding. Returns the length, or -1 if out
 * cannot hold it (or user is empty). */
int kc_user_safe(const char *user, char *out, size_t len);
bool kc_user_safe_unchanged(const char *user);
/* The inverse: the user name, or -1 for a name kc_user_safe() never writes. */
int kc_user_safe_decode(const char *name, char *out, size_t len);
/* Expands {user} and {user_safe} into out (truncated when it does not fit) and,
 * like snprintf, returns the length the whole result has: more than len - 1
 * means it does not fit. */
int kc_template_expand(const char *tmpl, const char *user, char *out, size_t len);
/* Checks placeholders and that the fixed parts can form a valid name. */
int kc_template_check(const char *tmpl, bool is_namespace, char *why, size_t len);

/* Do several users' ServiceAccounts and revocation Secrets live in this namespace
 * (more than one rule maps there, or a "*" or group rule)? */
bool kc_namespace_shared(const struct kc_config *cfg, const char *cluster, const char *ns);

bool kc_valid_dns_label(const char *s); /* namespaces */
bool kc_valid_dns_subdomain(const char *s); /* ServiceAccount names: 253, as Kubernetes checks them */

#endif

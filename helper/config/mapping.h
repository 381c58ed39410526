/* Which ServiceAccount a Unix user gets on each cluster, and why. */
#ifndef KC_MAPPING_H
#define KC_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <pwd.h>
#include <sys/types.h>

#include "config/config.h"

#define KC_NS_MAX 64 /* DNS-1123 label: 63 + NUL */
#define KC_NAME_MAX 254 /* DNS-1123 subdomain: 253 + NUL */

/* A Unix user as the mapping sees it. Filled by kc_identity_load(); caller frees
 * with kc_identity_free(). */
struct kc_identity {
	char *name;
	uid_t uid;
	gid_t gid;
	char *home;
	char **groups; /* names of the primary and supplementary groups */
	size_t n_groups;
	gid_t *gids; /* the same groups' ids, as initgroups() would set them (the writer's drop) */
	size_t n_gids;
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
};

/* For each cluster (targets[i] for cfg->clusters[i]) the first rule that matches.
 * Returns how many clusters have a usable target. */
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

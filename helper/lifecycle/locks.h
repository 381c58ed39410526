/* An administrator's lock on a user (`pam-kubeconfig revoke USER`): while it
 * stands, no token is minted for the user on this host, on every cluster or
 * on one, and refresh revokes what the user holds. One file per user and
 * cluster under /var/lib/pam_kubeconfig/locks/ (root 0700), named "lock-" and
 * the SHA-256 of the user's name and the cluster's; its JSON says whose, since
 * when, until when (0: until `unlock`) and by whom. A lock that has lapsed is
 * removed by whoever reads it while no revoke or unlock is at work. Read once per command: commands that go over
 * every user read the directory once. */
#ifndef KC_LIFECYCLE_LOCKS_H
#define KC_LIFECYCLE_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/util.h"
#include "lifecycle/state.h"

#define KC_LOCKS_DIR KC_STATE_DIR "/locks"
#define KC_LOCK_USER_MAX 256
#define KC_LOCK_CLUSTER_MAX 128

struct kc_lock {
	char user[KC_LOCK_USER_MAX];
	char cluster[KC_LOCK_CLUSTER_MAX]; /* "": every cluster */
	time_t since, until; /* until 0: until unlocked */
	char by[64];
	bool fleet; /* revoke --fleet: also in the fleet's namespace of every cluster (gc keeps it there) */
};

struct kc_locks {
	struct kc_lock *l; /* sorted by user */
	size_t n;
	char stamp[65]; /* what the set is, for refresh's verdicts: changes with any lock */
};

/* Every lock that stands at now (lapsed ones removed). 0, or -1 (err). */
int kc_locks_read(struct kc_locks *out, time_t now, struct kc_err *err);
void kc_locks_free(struct kc_locks *l);

/* The user's locks in out: the first, *count of them (NULL, 0: none). */
const struct kc_lock *kc_locks_of(const struct kc_locks *l, const char *user, size_t *count);
/* Fills what the mapping needs (kc_identity's locked_all, locked, n_locked):
 * names points into l; the caller frees *names. */
void kc_locks_for_mapping(const struct kc_locks *l, const char *user, bool *all, const char ***names, size_t *n);
/* The lock that holds user on cluster (NULL: none): every-cluster locks first. */
const struct kc_lock *kc_locks_holding(const struct kc_locks *l, const char *user, const char *cluster);

/* Adds a lock read elsewhere (the fleet's) to what kc_locks_read() gave. */
int kc_locks_add(struct kc_locks *l, const struct kc_lock *k);

/* The administrators' commands one at a time on this host: a revoke reads
 * what stands and writes what it decided from it, an unlock reads and
 * removes; neither lands in the middle of the other. Waited for until
 * deadline_ms at most. The fd to close when done, or -1 (err). */
int kc_locks_serialize(long long deadline_ms, struct kc_err *err);

/* Writes a lock (replacing one for the same user and cluster). 0, or -1 (err). */
int kc_lock_put(const struct kc_lock *k, struct kc_err *err);
/* Removes the user's locks on cluster (NULL: all of them); *n how many. */
int kc_lock_drop(const char *user, const char *cluster, size_t *n, struct kc_err *err);

/* "until 2026-12-06 22:15 UTC" or "until unlocked", for messages. */
void kc_lock_until_text(const struct kc_lock *k, char *out, size_t len);

#endif

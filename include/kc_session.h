/* Session records under /var/lib/pam_kubeconfig/<uid>/: one file per open
 * session and one per revocation still to do, changed only under the user's
 * flock, which is never held across a network call. */
#ifndef KC_SESSION_H
#define KC_SESSION_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "kc_mapping.h"
#include "kc_util.h"

#define KC_STATE_DIR "/var/lib/pam_kubeconfig"
#define KC_CACHE_DIR "/var/cache/pam_kubeconfig"
#define KC_SESSION_ID_MAX 64

/* One cluster's token held by a session. */
struct kc_grant {
	char cluster[101];
	char sa_namespace[KC_NS_MAX];
	char sa_name[KC_NAME_MAX];
	char secret[64]; /* the revocation Secret; "" when tokens are not bound */
	time_t expiry;
	long lifetime;
};

struct kc_session_record {
	char id[KC_SESSION_ID_MAX + 1];
	pid_t pid; /* the session's process (sshd's) */
	unsigned long long pid_start; /* its start time, against pid reuse */
	char boot_id[64];
	time_t opened;
	struct kc_grant *grants;
	size_t n_grants;
};

/* A revocation Secret to delete. revoker is the process doing it now (0: nobody;
 * gc retries). */
struct kc_pending {
	char cluster[101];
	char sa_namespace[KC_NS_MAX];
	char secret[64];
	pid_t revoker;
	unsigned long long revoker_start;
	time_t since;
	char error[300];
};

struct kc_user_state {
	uid_t uid;
	int dir_fd;
	int lock_fd;
	struct kc_session_record *sessions; /* live ones */
	size_t n_sessions;
	struct kc_pending *pending;
	size_t n_pending;
	size_t n_pruned; /* stale records removed by this load */
};

bool kc_session_id_valid(const char *id);

/* Takes the user's lock and loads the records. Stale records (process gone,
 * another boot) are removed; their Secrets that no live session uses become
 * pending revocations. With create unset, a missing directory is not made and
 * 1 is returned. Caller ends with kc_state_unlock(). */
int kc_state_lock(uid_t uid, bool create, struct kc_user_state *st, struct kc_err *err);
void kc_state_unlock(struct kc_user_state *st);

int kc_state_put_session(struct kc_user_state *st, const struct kc_session_record *r, struct kc_err *err);
int kc_state_drop_session(struct kc_user_state *st, const char *id);
struct kc_session_record *kc_state_find_session(struct kc_user_state *st, const char *id);

int kc_state_put_pending(struct kc_user_state *st, const struct kc_pending *p, struct kc_err *err);
int kc_state_drop_pending(struct kc_user_state *st, const char *cluster, const char *ns, const char *secret);
struct kc_pending *kc_state_find_pending(struct kc_user_state *st, const char *cluster, const char *ns,
					 const char *secret);

/* Is the Secret used by a live session other than except_id? */
bool kc_state_secret_in_use(const struct kc_user_state *st, const char *cluster, const char *ns, const char *secret,
			    const char *except_id);
/* Is a process (pid + start time) still the one we recorded? */
bool kc_process_alive(pid_t pid, unsigned long long start);

/* The uids that have a state directory (for gc and refresh). Caller frees. */
int kc_state_list_uids(uid_t **uids, size_t *n, struct kc_err *err);

void kc_session_record_free(struct kc_session_record *r);

#endif

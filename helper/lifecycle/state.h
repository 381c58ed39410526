/* What this host remembers about a user, under /var/lib/pam_kubeconfig/<uid>/
 * (root 0700), persistent so that a crash or a reboot orphans nothing:
 *
 *   session-<id>.json        one record per open login session
 *   grant-<cluster>@<ns>.json one per revocation Secret of ours that may exist:
 *                            the user's current grant on that cluster, or a
 *                            revocation still to do (pending)
 *   cluster-<cluster>.lock   held across all work on that cluster for the user
 *
 * Each file is written whole (kc_write_at). A session record needs no lock: it
 * belongs to its session, and whoever removes one reconciles afterwards, so the
 * last one out always sees that nobody is left. Grant files change only under
 * their cluster's lock. An unreadable file is quarantined, never dropped: a
 * grant file's name alone says which Secret to revoke. */
#ifndef KC_STATE_H
#define KC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "common/util.h"

#define KC_STATE_DIR "/var/lib/pam_kubeconfig"
#define KC_STATE_VERSION 2
#define KC_SESSION_ID_MAX 64
#define KC_CLUSTER_NAME_MAX 100
#define KC_NAMESPACE_MAX 63
#define KC_SA_NAME_MAX 253
#define KC_SECRET_NAME_MAX 63
#define KC_ADDRS_MAX 8

/* One login session of the user on this host. */
#define KC_CERT_PRINCIPALS_MAX 16
#define KC_CERT_PRINCIPAL_LEN 128

/* The SSH certificate a session logged in with, verified at its open
 * (config/sshcert_check.h): what the mapping may use of it while it lasts. */
struct kc_session_cert {
	bool present;
	char key_id[256];
	unsigned long long serial;
	time_t valid_before;
	char ca[64]; /* the CA key's fingerprint, SHA256:... */
	char principals[KC_CERT_PRINCIPALS_MAX][KC_CERT_PRINCIPAL_LEN]; /* those the user may act as */
	size_t n_principals;
};

struct kc_session_record {
	char id[KC_SESSION_ID_MAX + 1];
	pid_t pid; /* the session's process (sshd's), whose life is the session's */
	unsigned long long pid_start; /* its start time, against pid reuse */
	char boot_id[64];
	time_t opened;
	char rhost[256];
	char service[64];
	char tty[64];
	struct kc_session_cert cert;
};

enum kc_grant_state {
	KC_GRANT_CURRENT, /* the Secret is there; sa_name's token in the token file (sa_name "": none yet) */
	KC_GRANT_REVOKE, /* the Secret must go: a revocation pending */
};

/* One Secret of ours on one cluster in one namespace, and the grant bound to it:
 * (cluster, namespace, ServiceAccount, Secret name, Secret uid). */
struct kc_grant {
	char cluster[KC_CLUSTER_NAME_MAX + 1];
	char sa_namespace[KC_NAMESPACE_MAX + 1];
	char secret[KC_SECRET_NAME_MAX + 1]; /* "": tokens not bound (revoke_on_logout: false) */
	char secret_uid[64]; /* "": not known (learned by a dry-run delete) */
	enum kc_grant_state state;
	bool interrupted; /* a holder of the cluster lock died while changing it: trust nothing */
	char sa_name[KC_SA_NAME_MAX + 1];
	time_t minted; /* local clock when the TokenRequest was sent */
	long lifetime; /* what the server granted (its spec.expirationSeconds) */
	/* The latest any token bound to this Secret may expire (our clock): raised
	 * before each TokenRequest by what it asks, set after by what it got.
	 * 0: not known (an older helper's file). */
	time_t bound_until;
	/* The cluster's identity when the grant was made (kc_plan_target.endpoint);
	 * "": not known (an older helper's file). */
	char endpoint[65];
	/* Its token was last minted because the token file had gone while the
	 * token was fresh: refresh does that once per rotation period at most. */
	bool reminted;
	char jti[128];
	time_t since; /* revoke: since when */
	/* When a job that may send a create for this slot marked it (0: none):
	 * that create may land late (KC_CREATE_MAY_LAND_S). */
	time_t creating;
	char error[300]; /* revoke: why the last attempt failed */
	char addrs[KC_ADDRS_MAX][64]; /* API server addresses seen, "ip port", for cutting connections */
	size_t n_addrs;
};

bool kc_session_id_valid(const char *id);
/* Is a process (pid + start time) still the one we recorded? */
bool kc_process_alive(pid_t pid, unsigned long long start);

/* The user's directory; with create it is made (root 0700). Returns an fd, -1
 * on error, KC_ABSENT when it does not exist and create is unset. */
int kc_state_open(uid_t uid, bool create, struct kc_err *err);
/* The directory of every user's directory (O_PATH), for kc_state_stat(); -1
 * when it cannot be opened (kc_state_stat() then goes by the whole path). */
int kc_state_root(void);
/* Does the user's directory exist under root (st: as it stands)? Nothing is
 * opened. */
bool kc_state_stat(int root, uid_t uid, struct stat *st);
/* kc_state_open(uid, false), with st as the opened directory stands. */
int kc_state_open_stat(uid_t uid, struct stat *st, struct kc_err *err);
/* The account's name, kept in a file's *name* ("user-" + hex, empty file): it
 * names the user's Secrets, and must outlive both the account (deleted with
 * sessions open) and any record's contents (an unreadable grant is recovered
 * by it). kc_state_user_name() gives it back (0), or 1 when none was kept.
 * When the uid is given to a new account, the new name is kept and the
 * former one moves aside (former-<hex>): the uid's next owner starts clean,
 * and the former owner's grants are still revoked, never counted as theirs. */
void kc_state_note_user(int dir, const char *name);
int kc_state_user_name(int dir, char *out, size_t len);
/* Did the uid belong to this name before its present owner? */
bool kc_state_was_user(int dir, const char *name);
/* The same, passing over the name but (a former owner's, when there is one). */
int kc_state_user_name_other(int dir, const char *but, char *out, size_t len);

int kc_state_put_session(int dir, const struct kc_session_record *r, struct kc_err *err);
void kc_state_drop_session(int dir, const char *id);
/* The certificate a session logged in with (its blob as sshd had it), kept
 * beside its record so that every evaluation checks it again (the CAs, its
 * validity, the principals file as they are now). Dropped with the record. */
int kc_state_put_cert(int dir, const char *id, const void *blob, size_t len, struct kc_err *err);
int kc_state_get_cert(int dir, const char *id, size_t max, struct kc_buf *out, struct kc_err *err);
/* One session's record, live or not. 0, or -1 when missing or unreadable. */
int kc_state_get_session(int dir, const char *id, struct kc_session_record *r);
/* The live sessions (this boot, process alive). With prune, stale and
 * unreadable records are removed (unreadable ones kept aside as quarantine-*)
 * and *pruned counts them. Caller frees *live. */
int kc_state_sessions(int dir, bool prune, struct kc_session_record **live, size_t *n, size_t *pruned,
		      struct kc_err *err);

/* The grant files of one cluster (cluster NULL: all). An unreadable one is
 * quarantined and comes back as a pending revocation of secret_name with its
 * uid unknown (the file's name says cluster and namespace). Caller frees *out. */
int kc_state_grants(int dir, const char *cluster, const char *secret_name, struct kc_grant **out, size_t *n,
		    struct kc_err *err);
/* The file's bytes are synced; its name is not until kc_state_sync(). */
int kc_state_put_grant(int dir, const struct kc_grant *g, bool interrupted, struct kc_err *err);
/* Makes the names of the grant files written and removed so far durable:
 * one directory fsync for a batch (the files' bytes are synced already).
 * 0, or -1 (errno). */
int kc_state_sync(int dir);
void kc_state_drop_grant(int dir, const char *cluster, const char *ns);

/* Takes the user's lock for one cluster, waiting until deadline_ms at most
 * (kc_now_ms() clock). Returns the fd holding it, or -1 (err set). */
int kc_state_lock_cluster(int dir, const char *cluster, long long deadline_ms, struct kc_err *err);

/* The uids that have a state directory. Caller frees. */
int kc_state_list_uids(uid_t **uids, size_t *n, struct kc_err *err);

/* Remembered beside the records: a digest of the kubeconfig entries last
 * written to the user's file, so refresh knows when the file needs a rewrite. */
int kc_state_get_digest(int dir, char out[65]);
void kc_state_put_digest(int dir, const char *digest);

#endif

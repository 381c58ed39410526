/* status.json: what root writes beside the user's token files
 * (/run/pam_kubeconfig/<uid>/status.json, the user's, 0400, written like them,
 * no secret) and `pam-kubeconfig status` reads as the user: the state of each
 * of the user's grants on this host, which `status` trusts over the tokens'
 * own claims (a token an administrator revoked still carries a future exp).
 * Written by lifecycle/status.c, read here with the common YAML reader (JSON
 * is YAML's flow style; the user-side wing links no JSON library), so the keys
 * and states are named once, in this header:
 *
 *   {"version":1,"user":"alice","uid":1001,"host":"bastion-1","written":"2026-01-02T03:04:05Z",
 *    "kubeconfig":"~/.kube/config-eks",
 *    "sessions":[{"id":"5f1c...","rhost":"10.0.0.7","tty":"pts/0","opened":"2026-...Z"}],
 *    "clusters":[{"cluster":"prod","context":"prod","server":"https://...","state":"current",
 *                 "namespace":"team-a","serviceaccount":"alice",
 *                 "token_file":"/run/pam_kubeconfig/1001/prod.token","jti":"...",
 *                 "minted":"...Z","expires":"...Z","next_rotation":"...Z","pending_revocations":0,
 *                 "since":"...Z","reason":"...",
 *                 "certificate":{"key_id":"...","serial":"...","principals":["..."],"valid_before":"...Z"},
 *                 "lock":{"since":"...Z","until":"...Z","by":"...","reason":"..."}}],
 *    "lock":{"since":"...Z","until":"...Z","by":"...","reason":"..."}}
 *
 * Times are RFC 3339 UTC; a key whose value is not known is left out.
 * "certificate" (the SSH certificate that justified the grant) and "lock" (an
 * administrator's lock, on the cluster or, at the top, on the user) are there
 * only when they exist. */
#ifndef KC_ASUSER_STATUS_FILE_H
#define KC_ASUSER_STATUS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/util.h"

#define KC_STATUS_FILE "status.json"
#define KC_STATUS_VERSION 1
#define KC_STATUS_MAX_BYTES (256u << 10)
#define KC_STATUS_SESSIONS_MAX 256 /* listed; more are counted in n_sessions_more */
#define KC_STATUS_CLUSTERS_MAX 256
#define KC_STATUS_PRINCIPALS_MAX 16

/* A grant's state on this host, as root last saw it. */
enum kc_status_state {
	KC_STATUS_CURRENT, /* "current": a token of this grant is in the token file */
	KC_STATUS_UNAVAILABLE, /* "unavailable": mapped, but no token now (the cluster failed; see the log) */
	KC_STATUS_REVOKING, /* "revoking": revoked here, the API server's confirmation pending */
	KC_STATUS_REVOKED, /* "revoked": revoked, confirmed (or every token bound to it expired) */
	KC_STATUS_LOCKED, /* "locked": an administrator locked the user out of it */
	KC_STATUS_N_STATES
};

struct kc_status_lock {
	bool present;
	time_t since, until; /* until 0: until unlocked */
	char by[128];
	char reason[512];
};

struct kc_status_certificate {
	bool present;
	char key_id[512];
	char serial[32];
	char principals[KC_STATUS_PRINCIPALS_MAX][128];
	size_t n_principals;
	time_t valid_before; /* 0: forever */
};

struct kc_status_session {
	char id[65];
	char rhost[256];
	char tty[64];
	time_t opened;
};

struct kc_status_cluster {
	char cluster[101]; /* its name in the config (and in the token file's name) */
	char context[256]; /* the kubeconfig context */
	char server[1024];
	enum kc_status_state state;
	char sa_namespace[64];
	char sa_name[254];
	char token_file[160];
	char jti[128];
	time_t minted, expires, next_rotation; /* of the current token; 0: none */
	time_t since; /* revoking, revoked, unavailable: since when */
	char reason[512]; /* why it is in that state, when known */
	long pending_revocations; /* Secrets of this cluster whose deletion is not confirmed yet */
	struct kc_status_certificate certificate;
	struct kc_status_lock lock;
};

struct kc_status {
	int version;
	uid_t uid;
	char user[256];
	char host[256];
	time_t written;
	char kubeconfig[256]; /* kubeconfig.path, "~/..." */
	struct kc_status_session *sessions;
	size_t n_sessions;
	struct kc_status_cluster *clusters;
	size_t n_clusters;
	struct kc_status_lock lock; /* on the user, every cluster */
};

/* "current", ...; NULL out of range. */
const char *kc_status_state_name(enum kc_status_state s);
/* The state a name stands for, or -1. */
int kc_status_state_parse(const char *name);

/* Parses a status file (data need not be NUL-terminated). Strict: the wrong
 * version, a missing or mistyped key that is always written, or a state this
 * build does not know is an error (err says which). Unknown keys are ignored:
 * a newer root side may add some. 0, or -1. Free with kc_status_free(). */
int kc_status_parse(const char *data, size_t len, struct kc_status *out, struct kc_err *err);
void kc_status_free(struct kc_status *s);

#endif

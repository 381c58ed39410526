/* The planner: for one user on one cluster, what the grant files say and what
 * the mapping wants -> the requests to make, one at a time, each outcome
 * deciding the next -> the grant files, token file and cuts to commit. Pure:
 * no I/O, no clock, no secret; every small state is enumerated by
 * tests/unit/test_plan.c. The executor (job.c) holds the cluster's lock from
 * kc_plan_start() to the commit, so nothing else changes these grants meanwhile.
 *
 * Invariants (checked by the tests on every enumerated case):
 *  P1  every grant of the old state is, in the new state, current, revoked (its
 *      Secret deleted: the file goes) or pending (state revoke, error kept);
 *      none is dropped unconfirmed.
 *  P2  at most one current grant per cluster: the one the mapping wants.
 *  P3  a grant the mapping still wants is never revoked without its Secret being
 *      re-created and a token re-minted in the same job; if that fails, the
 *      token file does not stay behind naming a dead token's grant.
 *  P4  with no live session (or nothing mapped) no grant is left current.
 *  P5  every DELETE names the uid it means (from the file or a dry run in this
 *      job); a TokenRequest is bound to the uid of the Secret in the file.
 *  P6  the token file exists exactly while a current grant holds its token
 *      (or, with limit_remint, a fresh grant whose file the user broke is
 *      left as it is until its token is due).
 *  P7  a pending revocation whose every bound token has expired (bound_until
 *      plus the API server's leeway and cache) ends without a request; no
 *      other grant is ever dropped without its Secret confirmed gone.
 *  P8  a grant made against another identity of the cluster (server and CA,
 *      or EKS reference) is never kept: it is revoked and made anew. */
#ifndef KC_PLAN_H
#define KC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lifecycle/state.h"

#define KC_PLAN_GRANTS_MAX 8
/* How long past its exp the API server may still accept a token (its leeway
 * on exp, then its authentication cache). */
#define KC_TOKEN_LEEWAY_S (60 + 10)
/* A pending revocation of an older helper's file that never said when its
 * tokens expire: two days, past any lifetime EKS or a default API server grants. */
#define KC_BOUND_UNKNOWN_S (48 * 3600)
/* A create whose answer never came may still land: the request can sit in a
 * proxy or the network, and the API server finishes one it has begun within
 * its request timeout (kube-apiserver's default: 60 s). Until this long after
 * the grant was marked, a 404 for a Secret whose uid was never learned proves
 * nothing; its revocation stays pending and is asked again. */
#define KC_CREATE_MAY_LAND_S 120

/* What the mapping wants on this cluster now. */
struct kc_plan_target {
	bool wanted; /* a live session, in scope, and a rule matches */
	char sa_namespace[KC_NAMESPACE_MAX + 1];
	char sa_name[KC_SA_NAME_MAX + 1];
	char secret[KC_SECRET_NAME_MAX + 1]; /* this user's Secret name; "" when tokens are not bound */
	char endpoint[65]; /* the cluster's identity now: a hash of its server and CA, or its EKS reference */
	bool create; /* the rule says create: true */
	bool reconcile; /* create: true and not reconciled lately: ensure the ServiceAccount and binding */
};

enum kc_rotate {
	KC_ROTATE_DUE, /* mint when missing, invalid, or past 1 - refresh_before of its life */
	KC_ROTATE_NOW, /* mint a new token whatever the old one's age (refresh --now) */
};

struct kc_plan_input {
	const char *cluster; /* its name in the config */
	struct kc_plan_target target;
	const struct kc_grant *grants; /* this cluster's grant files */
	size_t n_grants;
	bool token_file; /* the cluster's token file exists */
	enum kc_rotate rotate;
	int refresh_before; /* percent */
	long ttl; /* what a TokenRequest asks for */
	bool limit_remint; /* refresh, gc: a broken token file of a fresh grant is re-minted once per period */
	time_t now;
};

enum kc_step_kind {
	KC_STEP_DONE,
	KC_STEP_LEARN_UID, /* DELETE ?dryRun=All: which uid the Secret has now */
	KC_STEP_DELETE, /* DELETE with preconditions.uid */
	KC_STEP_CREATE, /* POST the Secret */
	KC_STEP_RECONCILE, /* the ServiceAccount and its binding (create: true) */
	KC_STEP_MINT, /* TokenRequest bound to the Secret's uid */
};

struct kc_step {
	enum kc_step_kind kind;
	size_t grant; /* LEARN_UID, DELETE: which old grant */
	const char *sa_namespace; /* where the call goes */
	const char *secret;
	const char *secret_uid; /* DELETE precondition, MINT boundObjectRef.uid ("": bind by name) */
};

enum kc_outcome {
	KC_OUT_OK, /* done; LEARN_UID/CREATE/MINT report a uid */
	KC_OUT_GONE, /* DELETE, LEARN_UID: no such Secret (404), or another incarnation (409) */
	KC_OUT_EXISTS, /* CREATE: a Secret of that name exists already (409) */
	KC_OUT_SA_MISSING, /* MINT: the ServiceAccount does not exist (404) */
	KC_OUT_SECRET_MISSING, /* MINT: the bound Secret is gone (404) or is another incarnation (409) */
	KC_OUT_FAILED, /* anything else: the job stops here */
};

enum kc_fate { KC_FATE_KEEP, KC_FATE_REVOKE, KC_FATE_RECREATE };

struct kc_plan {
	struct kc_plan_input in;
	struct kc_grant old[KC_PLAN_GRANTS_MAX];
	size_t n_old;
	enum kc_fate fate[KC_PLAN_GRANTS_MAX];
	char learned_uid[KC_PLAN_GRANTS_MAX][64];
	bool uid_learned[KC_PLAN_GRANTS_MAX];
	bool revoked[KC_PLAN_GRANTS_MAX]; /* its Secret is confirmed gone, or every token bound to it expired */
	bool expired[KC_PLAN_GRANTS_MAX]; /* ... the latter: a pending revocation ends (P7) */
	bool revoke_failed[KC_PLAN_GRANTS_MAX];
	bool may_land[KC_PLAN_GRANTS_MAX]; /* revoked, but a create sent before may land after */
	int keep; /* index of the kept grant, -1: none */
	bool stray[KC_PLAN_GRANTS_MAX]; /* added by this job: a Secret found where none was recorded */
	/* the wanted grant's progress */
	bool need_create, need_reconcile, need_mint;
	bool remint; /* the mint is for a broken token file of a fresh grant */
	bool remint_held; /* ... and one such mint this period was enough (limit_remint) */
	bool created, reconciled, minted;
	char secret_uid[64]; /* of the wanted grant's Secret, once known */
	int create_tries, mint_tries;
	bool stopped; /* a request failed: nothing more is sent */
	char minted_uid[64];
	time_t minted_at;
	long lifetime;
	char jti[128];
};

/* What to write once the requests are over. */
struct kc_commit {
	struct kc_grant put[KC_PLAN_GRANTS_MAX]; /* grant files to write */
	size_t n_put;
	struct kc_grant drop[KC_PLAN_GRANTS_MAX]; /* grant files to remove (their Secrets are gone) */
	bool drop_expired[KC_PLAN_GRANTS_MAX]; /* ... or its tokens expired: a revocation ended (P7) */
	size_t n_drop;
	enum { KC_TOKEN_KEEP, KC_TOKEN_WRITE, KC_TOKEN_REMOVE } token;
	bool cut; /* the user held a token here and holds none now: cut their connections */
	bool minted; /* a new token (reason: login, rotation or remap) */
	bool remap; /* it replaced a grant of another ServiceAccount */
	bool written; /* the cluster has a current grant with a token after the commit */
};

/* Decides the fates; returns -1 when there are more grant files than the
 * planner holds (the caller revokes in several rounds). */
int kc_plan_start(struct kc_plan *p, const struct kc_plan_input *in);
/* The next request, or KC_STEP_DONE. */
struct kc_step kc_plan_next(const struct kc_plan *p);
/* Records a request's outcome; uid is what LEARN_UID, CREATE or MINT reported
 * (MINT: from the token's claims; "" when not known). For MINT OK also the
 * local time it was sent, the lifetime granted and the jti. */
void kc_plan_record(struct kc_plan *p, const struct kc_step *s, enum kc_outcome o, const char *uid);
void kc_plan_minted(struct kc_plan *p, time_t sent, long lifetime, const char *jti);
/* The files to write, from the old state and every recorded outcome; now is
 * the clock after the last request (a TokenRequest whose answer was lost was
 * sent by then). */
void kc_plan_commit(const struct kc_plan *p, struct kc_commit *c, const char *error, time_t now);

/* Known from the start: a job that wants no token here (a logout) and finds
 * one held commits cut = true, whatever its requests answer. Its cut can go
 * beside them. */
bool kc_plan_will_cut(const struct kc_plan *p);

/* When every token bound to the grant's Secret may have expired: bound_until,
 * else the last token's expiry, else since + KC_BOUND_UNKNOWN_S. */
time_t kc_plan_bound_until(const struct kc_grant *g);

/* Is a current grant's token past 1 - refresh_before of its life? */
bool kc_plan_due(const struct kc_grant *g, int refresh_before, time_t now);
/* When it will be: minted + (1 - refresh_before) of its lifetime. */
time_t kc_plan_fresh_until(const struct kc_grant *g, int refresh_before);

#endif

/* A job: one user's work on one cluster in one command. Under the cluster's
 * lock it reads the grant files and the live sessions, lets the planner decide
 * (lifecycle/plan.h), sends the requests (no other lock held), and commits: grant
 * files, the token file, cut connections, audit lines. Jobs of one command run
 * side by side, one thread each, all within the command's deadline. */
#ifndef KC_JOB_H
#define KC_JOB_H

#include <stdbool.h>
#include <sys/types.h>

#include "kube/cluster.h"
#include "config/config.h"
#include "config/mapping.h"
#include "lifecycle/plan.h"
#include "lifecycle/state.h"

/* The cache store's kind for revocations that ended because every token
 * bound to their Secret expired (one entry each; `check` counts them). */
#define KC_ENDED_KIND "ended"

struct kc_job {
	/* in */
	const struct kc_config *cfg;
	const struct kc_cluster *cl;
	const char *user; /* the Unix name (Secret name and annotation) */
	uid_t uid;
	gid_t gid;
	int state_dir; /* the user's, kc_state_open() */
	const struct kc_target *target; /* the mapping's answer; NULL or no rule: nothing mapped */
	bool in_scope; /* the account exists, is in scope and not expired */
	enum kc_rotate rotate;
	bool honour_down_window; /* skip a cluster that failed within after_failure (not gc) */
	bool is_login; /* mint lines say reason=login */
	bool turn_cut_short; /* the run's end cut this user's turn: running out of time says nothing of the cluster */
	long long deadline_ms;
	/* out */
	bool wanted; /* a live session and a rule: the cluster belongs in the kubeconfig */
	bool written; /* a working token file after the job */
	bool skipped; /* inside the after_failure window, or held (fleet locks unknown): nothing sent */
	bool fleet_locked; /* open: the fleet's lock on the user here (revoke --fleet), read by name */
	time_t fleet_until; /* ... until then (0: until unlocked) */
	bool failed; /* a request or the cluster's opening failed */
	bool minted;
	bool shortened; /* the server granted less than token.ttl */
	long lifetime;
	size_t pending; /* revocations left for later */
	size_t pending_other; /* ... of Secrets named after another account that had this uid */
	size_t revoked; /* grants whose revocation this job confirmed (or that ended by expiry) */
	unsigned requests;
	long long took_ms;
	struct kc_cluster_endpoint ep; /* resolved when wanted (server, CA, context for the kubeconfig) */
	char error[KC_ERR_MAX];
};

/* What the planner is told the mapping wants on cl (wanted: a live session and
 * in scope; the rule must match and give a valid name too), the Secret's name
 * (user NULL: unknown) and the cluster's identity. Not the reconcile mark. */
void kc_job_plan_target(const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
			const struct kc_target *t, bool wanted, struct kc_plan_target *pt);

void kc_job_run(struct kc_job *j);
/* Runs every job, concurrently when there are several; returns when all ended. */
void kc_jobs_run(struct kc_job *jobs, size_t n);
void kc_job_clear(struct kc_job *j);

#endif

/* The cut and the lift of one job (lifecycle/job.h), and the job's context
 * they share with it: private to lifecycle/job*.c. */
#ifndef KC_JOB_CUT_H
#define KC_JOB_CUT_H

#include <pthread.h>
#include <stdbool.h>

#include "kube/kubeapi.h"
#include "kube/tokens.h"
#include "lifecycle/cut.h"
#include "lifecycle/job.h"

/* A logout's cut, beside its requests (early_cut_start()). */
struct early_cut {
	pthread_t thread;
	bool started, done;
	struct kc_cut cut;
	char addrs[2 * KC_ADDRS_MAX * KC_PLAN_GRANTS_MAX][64];
	char server[2048]; /* the URL, copied */
};

struct job_ctx {
	struct kc_job *j;
	struct kc_grant *grants;
	size_t n_grants;
	struct kc_session_record *sessions;
	size_t n_sessions;
	struct kc_plan plan;
	struct kc_kube *kube;
	struct kc_minted minted;
	char secret[KC_SECRET_NAME_MAX + 1];
	char error[KC_ERR_MAX];
	struct early_cut early;
	struct {
		pthread_t thread;
		bool wanted, started;
		int rc;
	} mark; /* mark_start() */
};

/* A job that may mint lifts a refusal of the uid's connections a revocation
 * left (a new login must work at once), beside its requests: the kernel takes
 * a grace period to delete it. Under the cluster's lock from start to join. */
struct kc_lift {
	const struct kc_job *j;
	pthread_t thread;
	bool started;
};

void kc_job_lift_start(struct kc_lift *l, const struct job_ctx *c);
void kc_job_lift_join(struct kc_lift *l);

/* A logout's cut beside its requests (kc_plan_will_cut), joined before the
 * commit's own; the commit's cuts what the early one did not. */
void kc_job_early_cut_start(struct job_ctx *c);
void kc_job_early_cut_join(struct job_ctx *c);
void kc_job_cut_after(struct job_ctx *c, bool refuse);

#endif

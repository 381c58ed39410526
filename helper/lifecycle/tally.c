/* One batch of counts per process (see lifecycle/tally.h). */
#include "lifecycle/tally.h"

#include <pthread.h>

#include "common/log.h"
#include "kc_protocol.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_metrics *batch;
static bool enabled;

void kc_tally_enable(bool on)
{
	pthread_mutex_lock(&lock);
	enabled = on;
	pthread_mutex_unlock(&lock);
}

bool kc_tally_enabled(void)
{
	return enabled;
}

/* The batch, made at the first count; NULL when counting is off. Under the lock. */
static struct kc_metrics *current(void)
{
	if (enabled && !batch)
		batch = kc_metrics_new();
	return enabled ? batch : NULL;
}

#define COUNT(call)                          \
	do {                                 \
		struct kc_metrics *m;        \
		pthread_mutex_lock(&lock);   \
		if ((m = current()) != NULL) \
			(void)(call);        \
		pthread_mutex_unlock(&lock); \
	} while (0)

enum kc_metrics_result kc_tally_result_of(int exit_status)
{
	return exit_status == KC_EXIT_OK       ? KC_METRICS_SUCCESS
	       : exit_status == KC_EXIT_IGNORE ? KC_METRICS_IGNORED
					       : KC_METRICS_FAILURE;
}

void kc_tally_login(enum kc_metrics_result r)
{
	COUNT(kc_metrics_login(m, r));
}

void kc_tally_logout(enum kc_metrics_result r)
{
	COUNT(kc_metrics_logout(m, r));
}

void kc_tally_mint(const char *cluster, enum kc_metrics_result r, double seconds)
{
	COUNT(kc_metrics_mint(m, cluster, r, seconds));
}

void kc_tally_revocation(const char *cluster, enum kc_metrics_result r)
{
	COUNT(kc_metrics_revocation(m, cluster, r));
}

void kc_tally_cut(const char *cluster, unsigned long connections)
{
	if (connections)
		COUNT(kc_metrics_cut(m, cluster, connections));
}

void kc_tally_job_done(enum kc_metrics_job job, time_t when)
{
	COUNT(kc_metrics_job_done(m, job, when));
}

void kc_tally_commit(long long deadline_ms)
{
	struct kc_metrics *m;
	struct kc_err e = { "" };

	pthread_mutex_lock(&lock);
	m = batch;
	batch = NULL;
	pthread_mutex_unlock(&lock);
	if (m && kc_metrics_commit(m, deadline_ms, &e) < 0)
		kc_warn("metrics: %s", e.msg);
	kc_metrics_free(m);
}

void kc_tally_forget(void)
{
	pthread_mutex_lock(&lock);
	kc_metrics_free(batch);
	batch = NULL;
	pthread_mutex_unlock(&lock);
}

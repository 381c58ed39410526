/* refresh's and gc's last step: the metrics store's counts (lifecycle/metrics.h)
 * and the gauges of this moment, rendered into
 * metrics.textfile_dir/pam_kubeconfig.prom (lifecycle/metrics_textfile.h).
 * Local file work only: no request, no fork. */
#ifndef KC_LIFECYCLE_METRICS_PUBLISH_H
#define KC_LIFECYCLE_METRICS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"
#include "lifecycle/live.h"
#include "lifecycle/metrics.h"

struct kc_publish {
	const struct kc_config *cfg;
	enum kc_metrics_job job;
	/* The run gave every user with work its turn within its deadline (a
	 * cluster that failed is for the mint and revocation counts to say): its
	 * time is kept as the last success. */
	bool done;
	/* Whose grant files may hold a pending revocation: gc gives every uid
	 * with records; refresh the users it found due, and those the account
	 * databases could not tell about. Any other user of refresh's has none:
	 * a pending revocation makes a user due, and a verdict is kept only for
	 * a user with nothing due (lifecycle/verdicts.h). */
	const uid_t *scan;
	size_t n_scan;
	const struct kc_live_entry *live; /* the index of open sessions, as the run read it */
	size_t n_live;
	long locked_users; /* users an administrator locked; -1: not known (not rendered) */
};

/* Does nothing without metrics.textfile_dir; says in the log what fails,
 * never failing the command. */
void kc_metrics_publish(const struct kc_publish *p);

/* The pending revocations in the grant files of the given uids, on clusters
 * of the config: how many, and since when the oldest (0: none). */
void kc_metrics_pending(const struct kc_config *cfg, const uid_t *uids, size_t n, long *count, time_t *oldest);

#endif

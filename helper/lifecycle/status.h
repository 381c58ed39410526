/* The root side of status.json (its format: asuser/status_file.h): the state
 * of a user's grants on this host, rewritten from what is on disk (grant
 * files, token files, session records) whenever a command changed them, so
 * that `pam-kubeconfig status`, run by the user, never needs root or the
 * network. */
#ifndef KC_LIFECYCLE_STATUS_H
#define KC_LIFECYCLE_STATUS_H

#include <stddef.h>
#include <sys/types.h>

#include "asuser/status_file.h"
#include "config/config.h"
#include "lifecycle/job.h"

#define KC_STATUS_LOCK "status.lock" /* in the user's state directory */

struct kc_status_input {
	const struct kc_config *cfg;
	uid_t uid;
	gid_t gid;
	const char *user; /* the account's name; NULL: the account is gone (nothing written) */
	int state_dir; /* the user's */
	/* What this command's jobs did, one per cluster (NULL: none ran, as for a
	 * lock or an unlock): a context resolved, a revocation confirmed now, a
	 * cluster that failed. */
	const struct kc_job *jobs;
	size_t n_jobs;
	long long deadline_ms; /* for the status lock */
};

/* Builds the user's status from disk (and the jobs), then writes it as
 * /run/pam_kubeconfig/<uid>/status.json (the user's, 0400), or removes it when
 * there is nothing to say. Under the user's status lock, so that the last
 * writer is the one that read last. 0, or -1 (err set; the caller logs it:
 * a status file never fails a command). */
int kc_status_write(const struct kc_status_input *in, struct kc_err *err);

/* The status kc_status_write() would write (for tests). Free with kc_status_free(). */
int kc_status_build(const struct kc_status_input *in, struct kc_status *out, struct kc_err *err);
/* Its JSON, appended to out. */
int kc_status_format(const struct kc_status *s, struct kc_buf *out, struct kc_err *err);

#endif

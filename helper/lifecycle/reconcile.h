/* One user's reconciliation: a job per configured cluster (lifecycle/job.h), run side
 * by side, then the entries of the user's kubeconfig. open, close, refresh and
 * gc all come here; they differ only in what they did to the session records
 * first, whether tokens are rotated, and their deadline. */
#ifndef KC_RECONCILE_H
#define KC_RECONCILE_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"
#include "lifecycle/job.h"
#include "config/mapping.h"
#include "asuser/kubeconfig_merge.h"
#include "lifecycle/writer.h"

struct kc_reconcile {
	/* in */
	const struct kc_config *cfg;
	const struct kc_identity *id; /* NULL: the account is gone */
	uid_t uid;
	const char *user; /* the name the Secrets carry (from the account or the records) */
	int state_dir;
	bool in_scope;
	enum kc_rotate rotate;
	bool honour_down_window;
	bool is_login;
	bool turn_cut_short; /* kc_job's */
	long long deadline_ms;
	/* out */
	struct kc_target *targets; /* per cluster */
	struct kc_job *jobs; /* per cluster */
	size_t n_jobs;
};

/* Runs the jobs, then writes the user's status file. */
int kc_reconcile_run(struct kc_reconcile *r, struct kc_err *err);
void kc_reconcile_free(struct kc_reconcile *r);

/* How many clusters have a working token file now. */
size_t kc_reconcile_written(const struct kc_reconcile *r);

/* The kubeconfig entries: every cluster mapped for a user with a live session,
 * in config order, the same on every bastion (no host id, no time). paths holds
 * the token file paths the entries point into; with kubeconfig.inline_token,
 * tokens (secret buffers, one per cluster; caller frees) the tokens themselves.
 * Returns how many. */
size_t kc_reconcile_entries(const struct kc_reconcile *r, struct kc_merge_entry *out, char (*paths)[160],
			    struct kc_buf *tokens);

/* Merges those entries into the user's kubeconfig through the writer (with
 * remove_if_empty and none left: removes what is ours). -1: no answer in time. */
int kc_reconcile_write(const struct kc_reconcile *r, struct kc_writer *w, bool remove_if_empty, long long deadline_ms,
		       struct kc_writer_result *res, struct kc_err *err);
/* A digest of what the entries say (tokens too, when inline): refresh rewrites
 * the file only when it changes. */
void kc_reconcile_digest(const struct kc_reconcile *r, char out[65]);

/* Would a reconciliation of this user send a request or change a file? Read
 * only, no lock, no network: refresh's way to skip users with nothing due.
 * When not, *until (optional; 0 on entry) is when the first token of theirs
 * will be, or stays 0 when none will. */
bool kc_reconcile_due(const struct kc_config *cfg, const struct kc_identity *id, bool in_scope, uid_t uid,
		      int state_dir, enum kc_rotate rotate, time_t *until);

#endif

/* What a job checks before it sends: what it remembers of a cluster between
 * commands in the cache store (the after_failure window, network.after_failure,
 * and the mark that the ServiceAccount and its binding were reconciled within
 * the last hour), and the fleet's lock on the user. */
#ifndef KC_JOB_GATES_H
#define KC_JOB_GATES_H

#include <stdbool.h>

#include "kube/kubeapi.h"
#include "lifecycle/job.h"
#include "lifecycle/plan.h"

/* Inside the window: skip. Past it, one caller probes (holding the probe
 * lock, returned in *probe_fd) while the others keep skipping. */
bool kc_job_in_down_window(const struct kc_job *j, int *probe_fd);
void kc_job_record_health(const struct kc_job *j, bool down);
bool kc_job_reconciled_recently(const struct kc_job *j);
void kc_job_mark_reconciled(const struct kc_job *j);

/* Nothing is sent where the fleet's locks could not be read (refresh), nor
 * minted where this login cannot read its own (one GET, by name, on *kube,
 * which it opens): the ssh login goes on. A lock read makes j->fleet_locked.
 * -1: the job stops (skipped; error says why). */
int kc_job_held_or_fleet_locked(struct kc_job *j, struct kc_kube **kube, char *error, size_t n);
/* Where the fleet's locks could not be listed (refresh, gc, revoke: the
 * target is held), a job that would create or mint sends nothing; one that
 * only revokes (a lock here, a dead session, an ended certificate) goes on:
 * an outage of the fleet's namespace must not keep access alive. true: the
 * job stops (skipped, its revocations counted pending). */
bool kc_job_held_mints(struct kc_job *j, const struct kc_plan *p, char *error, size_t n);
/* A planned job that sends nothing (a cluster down, mints held): the file
 * keeps a kept grant's token, and what it had to revoke is pending. */
void kc_job_skip(struct kc_job *j, const struct kc_plan *p);

#endif

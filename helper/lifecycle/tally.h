/* The counts one process gathers for the metrics store (lifecycle/metrics.h):
 * every job thread adds to one batch under a mutex, and the process adds the
 * batch to the store in one commit (kc_tally_commit) before it exits: open and
 * close once each, each refresh or gc user's child once, the second cut's
 * child once. Off (every call does nothing) unless the config names
 * metrics.textfile_dir. Never fails a command: a count that cannot be kept is
 * dropped and said in the log. */
#ifndef KC_LIFECYCLE_TALLY_H
#define KC_LIFECYCLE_TALLY_H

#include <stdbool.h>
#include <time.h>

#include "lifecycle/metrics.h"

/* Counting on (the config has metrics) or off. A fork inherits it. */
void kc_tally_enable(bool on);
bool kc_tally_enabled(void);

/* An open's or close's exit status as a result: 0 success, 10 ignored, else failure. */
enum kc_metrics_result kc_tally_result_of(int exit_status);
void kc_tally_login(enum kc_metrics_result r);
void kc_tally_logout(enum kc_metrics_result r);
/* seconds < 0: no TokenRequest was answered (not observed in the latency histogram). */
void kc_tally_mint(const char *cluster, enum kc_metrics_result r, double seconds);
void kc_tally_revocation(const char *cluster, enum kc_metrics_result r);
void kc_tally_cut(const char *cluster, unsigned long connections);
void kc_tally_job_done(enum kc_metrics_job job, time_t when);

/* Adds what was counted so far to the store (never waiting past deadline_ms)
 * and starts an empty batch: a child forked afterwards counts only its own. */
void kc_tally_commit(long long deadline_ms);
/* Drops the batch uncommitted: a child forked before its parent committed
 * (the parent commits it; the child counts from nothing). */
void kc_tally_forget(void);

#endif

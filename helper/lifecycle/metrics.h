/* Metrics for Prometheus, through node_exporter's textfile collector (no daemon
 * of ours). `open` and `close` add their counts to a small root-owned store,
 * /var/lib/pam_kubeconfig/metrics.json (root 0600): one read-modify-write
 * under an flock on the store itself, waited for until a deadline, rewritten
 * in place and not synced (a count lost in a crash, or a store it tore, is a
 * counter reset, which Prometheus handles). `refresh` and `gc` render the store, with the gauges they compute,
 * and write it with lifecycle/metrics_textfile.h. No user name is ever a
 * label: labels are cluster names and results. */
#ifndef KC_METRICS_H
#define KC_METRICS_H

#include <stddef.h>
#include <time.h>

#include "common/util.h"

#define KC_METRICS_STORE "metrics.json" /* in KC_STATE_DIR */
#define KC_METRICS_STORE_MAX (1u << 20)
#define KC_METRICS_SERIES_MAX 1024 /* per metric; a count for a further label set is dropped */

/* The mint latency histogram's upper bounds, in seconds (and +Inf). */
#define KC_METRICS_BUCKETS 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
#define KC_METRICS_N_BUCKETS 9 /* with +Inf */

enum kc_metrics_result {
	KC_METRICS_SUCCESS, /* "success" */
	KC_METRICS_FAILURE, /* "failure": a login or logout that exited 1 or 2, a mint or revocation that failed */
	KC_METRICS_IGNORED, /* "ignored": a login or logout out of scope or unmapped (exit 10) */
	KC_METRICS_EXPIRED, /* "expired": a pending revocation ended once every token bound to it expired */
	KC_METRICS_N_RESULTS
};

enum kc_metrics_job { KC_METRICS_REFRESH, KC_METRICS_GC };

/* Counts: a batch one command gathers, or the store's. Opaque. */
struct kc_metrics;

/* An empty batch; NULL when memory runs out. Free with kc_metrics_free(). */
struct kc_metrics *kc_metrics_new(void);
void kc_metrics_free(struct kc_metrics *m);

/* Counting into a batch: nothing is written until kc_metrics_commit(). Each
 * returns 0, or -1 when the count was dropped (a cluster name that is not
 * [A-Za-z0-9._-]{1,64}, a result out of range, no memory). A caller ignores it:
 * metrics never fail a command. */
int kc_metrics_login(struct kc_metrics *m, enum kc_metrics_result r);
int kc_metrics_logout(struct kc_metrics *m, enum kc_metrics_result r);
/* seconds: from the TokenRequest's start to its answer, < 0 when no request
 * was made (not observed in the histogram). */
int kc_metrics_mint(struct kc_metrics *m, const char *cluster, enum kc_metrics_result r, double seconds);
int kc_metrics_revocation(struct kc_metrics *m, const char *cluster, enum kc_metrics_result r);
int kc_metrics_cut(struct kc_metrics *m, const char *cluster, unsigned long connections);
/* A refresh or gc run that ran to its end (every user visited, within its
 * deadline; a cluster that failed is the mint and revocation counts' to
 * say), at when: the store keeps the latest. */
int kc_metrics_job_done(struct kc_metrics *m, enum kc_metrics_job job, time_t when);

/* Adds a batch to the store: under the store's lock, never waited for past
 * deadline_ms (kc_now_ms() clock). An unreadable store starts again from zero.
 * 0, or -1 (err set) when the store is not updated. */
int kc_metrics_commit(const struct kc_metrics *batch, long long deadline_ms, struct kc_err *err);
/* The store's counts (empty when there is no store yet). Caller frees *out. */
int kc_metrics_load(struct kc_metrics **out, struct kc_err *err);

/* What refresh or gc finds at render time; a negative value is not rendered. */
struct kc_metrics_gauges {
	long pending_revocations; /* revocations pending, every user and cluster */
	double oldest_pending_seconds; /* how long the oldest has been pending (0 with none) */
	long sessions; /* open sessions (the live index) */
	long users; /* users with an open session */
	long locked_users; /* users an administrator locked */
};

/* The Prometheus text exposition of m (and g, when not NULL), appended to
 * out: every family with HELP and TYPE, series sorted by labels. The clusters
 * given (the configured ones) get their series at 0 until they count, as
 * the results of logins and logouts do, so that rate() sees the first count.
 * 0, or -1 (err set). */
int kc_metrics_render(const struct kc_metrics *m, const char *const *clusters, size_t n_clusters,
		      const struct kc_metrics_gauges *g, struct kc_buf *out, struct kc_err *err);

/* Tests only: keep the store somewhere else (NULL: KC_STATE_DIR again). */
void kc_metrics_use_dir(const char *dir);

#endif

/* The metrics file refresh and gc write (see lifecycle/metrics_publish.h). */
#include "lifecycle/metrics_publish.h"

#include <stdio.h>
#include <unistd.h>

#include "common/log.h"
#include "lifecycle/metrics_textfile.h"
#include "lifecycle/state.h"
#include "lifecycle/tally.h"

void kc_metrics_pending(const struct kc_config *cfg, const uid_t *uids, size_t n, long *count, time_t *oldest)
{
	*count = 0;
	*oldest = 0;
	for (size_t u = 0; u < n; u++) {
		struct kc_grant *g = NULL;
		size_t m = 0;
		struct kc_err e;
		int dir = kc_state_open(uids[u], false, &e);

		if (dir < 0)
			continue;
		if (kc_state_grants(dir, NULL, NULL, &g, &m, &e) < 0)
			m = 0;
		for (size_t i = 0; i < m; i++) {
			if (g[i].state != KC_GRANT_REVOKE || !kc_config_cluster(cfg, g[i].cluster))
				continue;
			(*count)++;
			if (g[i].since && (!*oldest || g[i].since < *oldest))
				*oldest = g[i].since;
		}
		free(g);
		close(dir);
	}
}

/* Open sessions and the users holding them, by the index (sorted by uid). */
static void held(const struct kc_live_entry *live, size_t n, long *sessions, long *users)
{
	*sessions = *users = 0;
	for (size_t i = 0; i < n; i++) {
		if (live[i].dead)
			continue;
		(*sessions)++;
		if (*sessions == 1 || live[i].uid != live[i - 1].uid)
			(*users)++;
	}
}

/* The store rendered with the gauges into text. 0, or -1 (err). */
static int render(const struct kc_config *cfg, const struct kc_metrics_gauges *g, struct kc_buf *text,
		  struct kc_err *err)
{
	const char **clusters = calloc(cfg->n_clusters + 1, sizeof(*clusters));
	struct kc_metrics *store = NULL;
	int rc = -1;

	if (!clusters)
		kc_seterr(err, "out of memory");
	else if (kc_metrics_load(&store, err) == 0) {
		for (size_t i = 0; i < cfg->n_clusters; i++)
			clusters[i] = cfg->clusters[i].name;
		rc = kc_metrics_render(store, clusters, cfg->n_clusters, g, text, err);
	}
	kc_metrics_free(store);
	free(clusters);
	return rc;
}

void kc_metrics_publish(const struct kc_publish *p)
{
	const struct kc_config *cfg = p->cfg;
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_metrics_gauges g = { .locked_users = p->locked_users };
	struct kc_err e = { "" };
	time_t now = time(NULL), oldest;

	if (!cfg->metrics_dir)
		return;
	if (p->done)
		kc_tally_job_done(p->job, now);
	kc_tally_commit(kc_now_ms() + 1000);
	kc_metrics_pending(cfg, p->scan, p->n_scan, &g.pending_revocations, &oldest);
	g.oldest_pending_seconds = oldest && oldest < now ? (double)(now - oldest) : 0;
	held(p->live, p->n_live, &g.sessions, &g.users);
	if (render(cfg, &g, &text, &e) < 0 || kc_metrics_textfile_write(cfg->metrics_dir, text.data, text.len, &e) < 0)
		kc_warn("metrics: %s; pam_kubeconfig.prom is not updated", e.msg);
}

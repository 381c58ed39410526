/* The after_failure window and the reconcile marks, in the cache store
 * (lifecycle/job_gates.h). */
#include "lifecycle/job_gates.h"

#include <stdio.h>
#include <time.h>

#include "common/cache.h"
#include "common/util.h"
#include "lifecycle/fleet.h"

#define RECONCILE_TTL 3600

/* Keyed by what the config says about the cluster, never by what discovery
 * fills in later: the same cluster has the same key before and after. The
 * parts are NUL-separated (no two tuples collide), then hashed into a string. */
static void cluster_key(const struct kc_cluster *cl, const char *extra, struct kc_buf *key)
{
	kc_autobuf struct kc_buf raw = { 0 };
	char hex[65];

	kc_buf_puts(&raw, cl->name);
	kc_buf_append(&raw, "", 1);
	if (cl->has_eks)
		kc_buf_printf(&raw, "eks:%s/%s", cl->eks.cluster_name, cl->eks.region);
	else
		kc_buf_puts(&raw, cl->server);
	kc_buf_append(&raw, "", 1);
	kc_buf_puts(&raw, extra ? extra : "");
	kc_sha256_hex(raw.data, raw.len, hex);
	kc_buf_puts(key, hex);
}

/* Inside the window: skip. Past it, one caller probes (holding the probe
 * lock, returned in *probe_fd) while the others keep skipping. */
bool kc_job_in_down_window(const struct kc_job *j, int *probe_fd)
{
	kc_autobuf struct kc_buf key = { 0 };
	time_t down;

	*probe_fd = -1;
	cluster_key(j->cl, NULL, &key);
	down = kc_cache_stored("down", key.data);
	if (!down)
		return false;
	if (time(NULL) - down < j->cfg->after_failure)
		return true;
	*probe_fd = kc_cache_trylock("down", key.data);
	return *probe_fd < 0;
}

void kc_job_record_health(const struct kc_job *j, bool down)
{
	kc_autobuf struct kc_buf key = { 0 };
	struct kc_err e;

	cluster_key(j->cl, NULL, &key);
	if (down)
		kc_cache_put("down", key.data, "1", 1, &e);
	else if (kc_cache_stored("down", key.data))
		kc_cache_drop("down", key.data);
}

static void reconcile_key(const struct kc_job *j, struct kc_buf *key)
{
	char extra[700];
	const struct kc_mapping *r = j->target->rule;

	snprintf(extra, sizeof(extra), "%s/%s %s %d", j->target->sa_namespace, j->target->sa_name,
		 r->clusterrole ? r->clusterrole : "-", r->cluster_wide);
	cluster_key(j->cl, extra, key);
}

bool kc_job_reconciled_recently(const struct kc_job *j)
{
	kc_autobuf struct kc_buf key = { 0 };
	time_t at;

	reconcile_key(j, &key);
	at = kc_cache_stored("reconciled", key.data);
	return at && time(NULL) - at < RECONCILE_TTL;
}

void kc_job_mark_reconciled(const struct kc_job *j)
{
	kc_autobuf struct kc_buf key = { 0 };
	struct kc_err e;

	reconcile_key(j, &key);
	kc_cache_put("reconciled", key.data, "1", 1, &e);
}

/* Nothing is minted where this login cannot read its own lock (one GET, by
 * name): the ssh login goes on. A lock read here makes the cluster unwanted:
 * what the user holds here is revoked and cut. (Where refresh could not list
 * the locks, kc_job_held_mints() stops the job after planning.) -1: the job
 * stops (skipped). */
int kc_job_held_or_fleet_locked(struct kc_job *j, struct kc_kube **kube, char *error, size_t n)
{
	struct kc_lock lock;
	struct kc_err e = { "" };
	int rc;

	if (!j->cfg->fleet_namespace || !j->is_login || !j->target || !j->target->rule || !j->user)
		return 0;
	*kube = kc_kube_connect(j->cfg, j->cl, j->deadline_ms, &j->ep, &e);
	rc = *kube ? kc_fleet_get_lock(*kube, j->cfg, j->cl, j->user, time(NULL), &lock, &e) : -1;
	if (rc == 1) {
		j->fleet_locked = true;
		j->fleet_until = lock.until;
		return 0;
	}
	if (rc == 0)
		return 0;
	j->skipped = true;
	snprintf(error, n, "cluster %s: the fleet's lock on %s cannot be read (%s): no token minted", j->cl->name,
		 j->user, e.msg);
	return -1;
}

bool kc_job_held_mints(struct kc_job *j, const struct kc_plan *p, char *error, size_t n)
{
	if (!j->target || !j->target->held || (!p->need_create && !p->need_mint))
		return false;
	kc_job_skip(j, p);
	snprintf(error, n, "cluster %s: the fleet's locks could not be read: nothing is minted here this run",
		 j->cl->name);
	return true;
}

void kc_job_skip(struct kc_job *j, const struct kc_plan *p)
{
	j->skipped = true;
	j->written = p->keep >= 0 && p->old[p->keep].sa_name[0] && p->in.token_file;
	for (size_t i = 0; i < p->n_old; i++)
		j->pending += p->fate[i] != KC_FATE_KEEP && !p->revoked[i];
}

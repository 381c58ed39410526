/* Jobs: plan under the cluster's lock, requests, commit (see lifecycle/job.h). */
#include "lifecycle/job.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle/auditlog.h"
#include "common/cache.h"
#include "lifecycle/cut.h"
#include "lifecycle/fleet.h"
#include "lifecycle/job_cut.h"
#include "lifecycle/job_gates.h"
#include "lifecycle/refuse.h"
#include "kube/kubeapi.h"
#include "kube/tokens.h"
#include "kube/objects.h"
#include "common/log.h"
#include "lifecycle/tally.h"
#include "lifecycle/tokenfile.h"

/* ---- planning --------------------------------------------------------------- */

void kc_job_plan_target(const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
			const struct kc_target *t, bool wanted, struct kc_plan_target *pt)
{
	memset(pt, 0, sizeof(*pt));
	/* Without the account's name the Secret's name is unknown: recover nothing by guesswork. */
	if (cfg->revoke_on_logout && user)
		kc_kube_secret_name(cfg->host_id, user, cl->name, pt->secret, sizeof(pt->secret));
	kc_cluster_identity(cl, pt->endpoint);
	if (!wanted || !t || !t->rule || t->error[0])
		return;
	pt->wanted = true;
	snprintf(pt->sa_namespace, sizeof(pt->sa_namespace), "%s", t->sa_namespace);
	snprintf(pt->sa_name, sizeof(pt->sa_name), "%s", t->sa_name);
	pt->create = t->rule->create;
}

static void fill_target(struct job_ctx *c, struct kc_plan_input *in)
{
	struct kc_job *j = c->j;

	kc_job_plan_target(j->cfg, j->cl, j->user, j->target, j->in_scope && c->n_sessions > 0 && !j->fleet_locked,
			   &in->target);
	j->wanted = in->target.wanted;
	in->target.reconcile = in->target.create && !kc_job_reconciled_recently(j);
}

static int plan(struct job_ctx *c)
{
	struct kc_job *j = c->j;
	struct kc_plan_input in = { .cluster = j->cl->name,
				    .rotate = j->rotate,
				    .refresh_before = j->cfg->refresh_before,
				    .ttl = j->cfg->ttl,
				    .limit_remint = !j->is_login,
				    .now = time(NULL) };
	struct kc_err e;

	if (j->user && j->cfg->revoke_on_logout)
		kc_kube_secret_name(j->cfg->host_id, j->user, j->cl->name, c->secret, sizeof(c->secret));
	if (kc_state_sessions(j->state_dir, false, &c->sessions, &c->n_sessions, NULL, &e) < 0 ||
	    kc_state_grants(j->state_dir, j->cl->name, c->secret, &c->grants, &c->n_grants, &e) < 0) {
		snprintf(c->error, sizeof(c->error), "%s", e.msg);
		return -1;
	}
	in.grants = c->grants;
	in.n_grants = c->n_grants;
	in.token_file = kc_tokenfile_exists(j->uid, j->cl->name);
	fill_target(c, &in);
	if (kc_plan_start(&c->plan, &in) < 0) {
		snprintf(c->error, sizeof(c->error), "cluster %s: too many grant files", j->cl->name);
		return -1;
	}
	return 0;
}

/* Before any request: whatever a crash leaves behind must say "trust nothing".
 * 0, or -1 when it could not be written: then nothing is sent. */
static int mark_interrupted(struct job_ctx *c)
{
	struct kc_job *j = c->j;
	const struct kc_plan_target *t = &c->plan.in.target;
	bool target_file = false;
	struct kc_err e = { "" };
	int rc = 0;

	/* What a TokenRequest of this job may make: sent by its deadline at the latest. */
	time_t now = time(NULL), bound = now + (time_t)((j->deadline_ms - kc_now_ms()) / 1000 + 1) + j->cfg->ttl;
	/* Whether this job may send a create: it may land after the job died. */
	bool creates = t->wanted && t->secret[0] && c->plan.keep < 0;

	for (size_t i = 0; i < c->n_grants; i++) {
		struct kc_grant g = c->grants[i];
		bool target = t->wanted && strcmp(g.sa_namespace, t->sa_namespace) == 0;

		if (target && c->plan.need_mint) {
			g.bound_until = kc_plan_bound_until(&g); /* an older file's last token, at least */
			if (g.bound_until < bound)
				g.bound_until = bound;
		}
		if (target && creates)
			g.creating = now;
		rc |= kc_state_put_grant(j->state_dir, &g, true, &e);
		target_file |= target;
	}
	if (t->wanted && t->secret[0] && !target_file) {
		struct kc_grant g = { .state = KC_GRANT_REVOKE, .since = now, .creating = now, .bound_until = bound };

		snprintf(g.cluster, sizeof(g.cluster), "%s", j->cl->name);
		snprintf(g.sa_namespace, sizeof(g.sa_namespace), "%s", t->sa_namespace);
		snprintf(g.secret, sizeof(g.secret), "%s", t->secret);
		snprintf(g.error, sizeof(g.error), "being made");
		rc |= kc_state_put_grant(j->state_dir, &g, true, &e);
	}
	/* On disk before the first request acts (I1: no Secret made that no file names). */
	rc |= kc_state_sync(j->state_dir);
	if (rc)
		kc_error("cluster %s: uid %u: cannot record the job before its requests: %s; nothing sent", j->cl->name,
			 (unsigned)j->uid, e.msg[0] ? e.msg : strerror(errno));
	return rc ? -1 : 0;
}

/* The marking runs beside the connection's set-up: the first request's
 * connection, TLS handshake and head go while it is written, its body (or a
 * request without one) only once it is on disk (kc_kube_gate()). */
static void *marker_thread(void *arg)
{
	struct job_ctx *c = arg;

	c->mark.rc = mark_interrupted(c);
	return NULL;
}

static void mark_start(struct job_ctx *c)
{
	c->mark.wanted = true;
	c->mark.started = pthread_create(&c->mark.thread, NULL, marker_thread, c) == 0;
	if (!c->mark.started)
		marker_thread(c);
}

/* The gate: 0 once the marking is on disk, -1 when it failed. */
static int mark_wait(void *arg)
{
	struct job_ctx *c = arg;

	if (c->mark.started)
		pthread_join(c->mark.thread, NULL);
	c->mark.started = false;
	return c->mark.rc;
}

/* ---- the requests -------------------------------------------------------------- */

static enum kc_outcome of_rc(int rc, enum kc_outcome one)
{
	return rc == 0 ? KC_OUT_OK : rc == 1 ? one : KC_OUT_FAILED;
}

/* Would the old grants this job replaces make this mint a remap? As the
 * planner's commit decides it (kc_plan_commit). */
static bool is_remap(const struct kc_plan *p)
{
	for (size_t i = 0; i < p->n_old; i++)
		if (p->old[i].state == KC_GRANT_CURRENT && p->old[i].sa_name[0] && p->fate[i] != KC_FATE_KEEP &&
		    strcmp(p->old[i].sa_name, p->in.target.sa_name) != 0)
			return true;
	return false;
}

static int ledger_mint(const struct job_ctx *c, const struct kc_step *s, struct kc_err *e)
{
	const struct kc_job *j = c->j;

	return kc_audit_ledger_mint(j->user, j->uid, j->cl->name, s->sa_namespace, c->plan.in.target.sa_name, s->secret,
				    &c->minted, j->cfg->ttl,
				    is_remap(&c->plan) ? "remap"
				    : j->is_login      ? "login"
						       : "rotation",
				    c->sessions, c->n_sessions, j->deadline_ms, e);
}

static enum kc_outcome send_mint(struct job_ctx *c, const struct kc_step *s, char *uid)
{
	const struct kc_config *cfg = c->j->cfg;
	struct kc_token_spec t = { .sa_namespace = s->sa_namespace,
				   .sa_name = c->plan.in.target.sa_name,
				   .ttl = cfg->ttl,
				   .audiences = cfg->audiences,
				   .n_audiences = cfg->n_audiences,
				   .secret = s->secret,
				   .secret_uid = s->secret_uid };
	struct kc_err e = { "" };
	time_t sent = time(NULL);
	long long started = kc_now_ms();
	double took;
	int rc;

	/* A grant a certificate justifies ends with it: no token outlives the
	 * certificate but by the API server's 10-minute floor (I5). */
	if (c->j->target && c->j->target->cert_until) {
		long left = (long)(c->j->target->cert_until - time(NULL));

		t.ttl = left < KC_MIN_TTL ? KC_MIN_TTL : left < t.ttl ? left : t.ttl;
	}
	kc_kube_minted_clear(&c->minted);
	rc = kc_kube_token_request(c->kube, &t, &c->minted, &e);
	took = (double)(kc_now_ms() - started) / 1000;
	if (rc != KC_MINT_OK) {
		snprintf(c->error, sizeof(c->error), "%s", e.msg);
		return rc == KC_MINT_SA_MISSING	      ? KC_OUT_SA_MISSING
		       : rc == KC_MINT_SECRET_MISSING ? KC_OUT_SECRET_MISSING
						      : KC_OUT_FAILED;
	}
	/* On the ledger before anyone holds it: a token whose line cannot be
	 * written is wiped here and the step fails, so the planner never makes it
	 * current; its Secret stays recorded (its tokens die with it at logout). */
	if (ledger_mint(c, s, &e) < 0) {
		kc_kube_minted_clear(&c->minted);
		snprintf(c->error, sizeof(c->error),
			 "cluster %.100s: a token was minted but not handed out: the audit ledger cannot record it "
			 "(%.800s)",
			 c->j->cl->name, e.msg);
		return KC_OUT_FAILED;
	}
	kc_tally_mint(c->j->cl->name, KC_METRICS_SUCCESS, took);
	snprintf(uid, 64, "%s", c->minted.secret_uid);
	kc_plan_minted(&c->plan, sent, c->minted.lifetime, c->minted.jti);
	return KC_OUT_OK;
}

/* The live sessions a new Secret is made for, and their remote hosts, as
 * comma-separated lists of printable words (at most 16 of them). */
static void origin_lists(const struct job_ctx *c, struct kc_buf *ids, struct kc_buf *rhosts)
{
	for (size_t i = 0; i < c->n_sessions && i < 16; i++) {
		const char *h = c->sessions[i].rhost;

		kc_buf_printf(ids, "%s%s", i ? "," : "", c->sessions[i].id);
		kc_buf_puts(rhosts, i ? "," : "");
		for (size_t k = 0; h[k]; k++)
			kc_buf_append(rhosts,
				      (unsigned char)h[k] > ' ' && (unsigned char)h[k] < 0x7f && h[k] != ',' ? &h[k]
													     : "?",
				      1);
		if (!h[0])
			kc_buf_puts(rhosts, "-");
	}
}

static enum kc_outcome send_step(struct job_ctx *c, const struct kc_step *s, char uid[64])
{
	const struct kc_job *j = c->j;
	const struct kc_target *t = j->target;
	struct kc_err e = { "" };
	enum kc_outcome o = KC_OUT_FAILED;
	kc_autobuf struct kc_buf ids = { 0 }, rhosts = { 0 };
	/* The login facts of the Secret's creation, so the cluster can answer
	 * which bastion login made it. */
	struct kc_secret_origin origin = {
		.user = j->user, .uid = j->uid, .host = j->cfg->host_id, .reason = j->is_login ? "login" : "refresh"
	};

	uid[0] = '\0';
	if (s->kind == KC_STEP_CREATE) {
		origin_lists(c, &ids, &rhosts);
		origin.sessions = ids.data;
		origin.rhosts = rhosts.data;
	}
	switch (s->kind) {
	case KC_STEP_LEARN_UID:
		o = of_rc(kc_kube_secret_uid(c->kube, s->sa_namespace, s->secret, uid, &e), KC_OUT_GONE);
		break;
	case KC_STEP_DELETE:
		o = of_rc(kc_kube_delete_secret(c->kube, s->sa_namespace, s->secret, s->secret_uid, &e), KC_OUT_GONE);
		break;
	case KC_STEP_CREATE:
		o = of_rc(kc_kube_create_secret(c->kube, s->sa_namespace, s->secret, &origin, uid, &e), KC_OUT_EXISTS);
		break;
	case KC_STEP_RECONCILE:
		o = kc_kube_reconcile(c->kube, t->sa_namespace, t->sa_name, t->rule->clusterrole, t->rule->cluster_wide,
				      &e) == 0
			    ? KC_OUT_OK
			    : KC_OUT_FAILED;
		if (o == KC_OUT_OK)
			kc_job_mark_reconciled(j);
		break;
	case KC_STEP_MINT: return send_mint(c, s, uid);
	case KC_STEP_DONE: break;
	}
	if (o == KC_OUT_FAILED)
		snprintf(c->error, sizeof(c->error), "%s", e.msg);
	return o;
}

static const char *const step_name[] = { "done", "learn-uid", "delete", "create", "reconcile", "mint" };
static const char *const outcome_name[] = { "ok", "gone", "exists", "no-serviceaccount", "no-secret", "failed" };

static void send_all(struct job_ctx *c)
{
	struct kc_job *j = c->j;
	struct kc_err e = { "" };
	struct kc_step s;

	if (!c->kube)
		c->kube = kc_kube_connect(j->cfg, j->cl, j->deadline_ms, &j->ep, &e);
	if (!c->kube) {
		snprintf(c->error, sizeof(c->error), "%s", e.msg);
		j->failed = true;
		kc_job_record_health(j, true); /* a cluster that cannot be opened is down too */
		return;
	}
	if (c->mark.wanted)
		kc_kube_gate(c->kube, mark_wait, c);
	while ((s = kc_plan_next(&c->plan)).kind != KC_STEP_DONE) {
		char uid[64];
		enum kc_outcome o = send_step(c, &s, uid);

		kc_plan_record(&c->plan, &s, o, uid);
		kc_debug("cluster %s: %s %s/%s -> %s", j->cl->name, step_name[s.kind], s.sa_namespace, s.secret,
			 outcome_name[o]);
		j->failed |= o == KC_OUT_FAILED;
	}
	j->requests = kc_kube_requests(c->kube);
	/* A turn the run's end cut short that ran out of time learnt nothing of
	 * the cluster: no down mark, or every login would skip it for
	 * network.after_failure after a busy refresh. */
	if (!(j->turn_cut_short && kc_kube_out_of_time(c->kube)))
		kc_job_record_health(j, j->failed && kc_kube_unreachable(c->kube));
}

/* ---- the commit ---------------------------------------------------------------- */

static void remember_peer(struct job_ctx *c, struct kc_grant *g)
{
	const char *peer = c->kube ? kc_kube_peer(c->kube) : "";

	if (!*peer)
		return;
	for (size_t i = 0; i < g->n_addrs; i++)
		if (strcmp(g->addrs[i], peer) == 0)
			return;
	if (g->n_addrs == KC_ADDRS_MAX)
		memmove(g->addrs[0], g->addrs[1], sizeof(g->addrs[0]) * (KC_ADDRS_MAX - 1)), g->n_addrs--;
	snprintf(g->addrs[g->n_addrs++], sizeof(g->addrs[0]), "%s", peer);
}

/* For `check`: one cache entry per revocation that ended by expiry. */
static void note_ended(const struct job_ctx *c, const struct kc_grant *g, const char *until)
{
	kc_autobuf struct kc_buf key = { 0 }, text = { 0 };
	struct kc_err e;

	kc_buf_printf(&key, "%u %s %s %s %s", (unsigned)c->j->uid, c->j->cl->name, g->sa_namespace, g->secret, until);
	kc_buf_printf(&text, "uid %u: cluster %s: Secret %s/%s: every token bound to it expired by %s\n",
		      (unsigned)c->j->uid, c->j->cl->name, g->sa_namespace, g->secret, until);
	kc_cache_put(KC_ENDED_KIND, key.data, text.data, text.len, &e);
}

/* Why a grant goes, for the audit line: the session count first (a last
 * logout ends access whatever else holds), then an administrator's lock. */
static const char *revoke_reason(const struct job_ctx *c)
{
	const struct kc_job *j = c->j;

	if (c->n_sessions == 0)
		return "no-session-left";
	if (j->fleet_locked || (j->target && j->target->locked))
		return "locked";
	return "no-longer-mapped-here";
}

static void audit_revokes(const struct job_ctx *c, const struct kc_commit *k)
{
	for (size_t i = 0; i < k->n_drop; i++) {
		const struct kc_grant *g = &k->drop[i];
		char until[32];

		if (!g->secret[0])
			continue;
		c->j->revoked++;
		kc_tally_revocation(c->j->cl->name, k->drop_expired[i] ? KC_METRICS_EXPIRED : KC_METRICS_SUCCESS);
		if (!k->drop_expired[i]) {
			kc_audit_revoked(c->j->user, c->j->uid, c->j->cl->name, g, false, revoke_reason(c));
			continue;
		}
		/* Said once: the grant file goes with it. */
		kc_format_time(kc_plan_bound_until(g), until, sizeof(until));
		kc_warn("uid %u: cluster %s: the revocation of Secret %s/%s ended: every token bound to it expired by "
			"%s "
			"(the API server refused to delete it: %s)",
			(unsigned)c->j->uid, c->j->cl->name, g->sa_namespace, g->secret, until,
			g->error[0] ? g->error : "-");
		kc_audit_revoked(c->j->user, c->j->uid, c->j->cl->name, g, true, "tokens-expired");
		note_ended(c, g, until);
	}
}

/* What this job tried and could not do: DELETEs that failed (their
 * revocations stay pending) and a mint the plan wanted that it did not get. */
static void tally_failures(const struct job_ctx *c)
{
	const struct kc_plan *p = &c->plan;
	const struct kc_job *j = c->j;

	for (size_t i = 0; i < p->n_old; i++)
		if (p->revoke_failed[i] && !p->revoked[i] && p->old[i].secret[0]) {
			kc_tally_revocation(j->cl->name, KC_METRICS_FAILURE);
			kc_audit_revoke_failed(j->user, j->uid, j->cl->name, &p->old[i], c->error);
		}
	if (p->in.target.wanted && p->need_mint && !p->minted)
		kc_tally_mint(j->cl->name, KC_METRICS_FAILURE, -1);
}

static void write_token(struct job_ctx *c, struct kc_commit *k)
{
	struct kc_job *j = c->j;
	struct kc_err e;

	if (k->token == KC_TOKEN_WRITE &&
	    kc_tokenfile_write(j->uid, j->gid, j->cl->name, c->minted.token, strlen(c->minted.token), &e) < 0) {
		snprintf(c->error, sizeof(c->error), "cluster %.100s: %.900s", j->cl->name, e.msg);
		j->failed = true;
		k->token = KC_TOKEN_REMOVE; /* the grant stays; the next job mints again */
		for (size_t i = 0; i < k->n_put; i++)
			if (k->put[i].state == KC_GRANT_CURRENT)
				k->put[i].sa_name[0] = '\0';
	}
	if (k->token == KC_TOKEN_REMOVE)
		kc_tokenfile_remove(j->uid, j->cl->name);
}

static void commit(struct job_ctx *c)
{
	struct kc_job *j = c->j;
	struct kc_commit k;
	struct kc_err e;

	kc_plan_commit(&c->plan, &k, c->error, time(NULL));
	tally_failures(c);
	write_token(c, &k);
	for (size_t i = 0; i < k.n_drop; i++)
		kc_state_drop_grant(j->state_dir, k.drop[i].cluster, k.drop[i].sa_namespace);
	for (size_t i = 0; i < k.n_put; i++) {
		remember_peer(c, &k.put[i]);
		/* A Secret named after another account (a uid given to a new one)
		 * is retried all the same, but is not this user's to answer for. */
		if (k.put[i].state == KC_GRANT_REVOKE && (!c->secret[0] || strcmp(k.put[i].secret, c->secret) == 0))
			j->pending++;
		else if (k.put[i].state == KC_GRANT_REVOKE)
			j->pending_other++;
		kc_state_put_grant(j->state_dir, &k.put[i], false, &e);
	}
	/* The commit on disk in one go: after a crash the files say what the server
	 * did. A file dropped needs none: if it comes back, its DELETE answers 404. */
	if (k.n_put)
		kc_state_sync(j->state_dir);
	audit_revokes(c, &k);
	if (k.minted && k.token == KC_TOKEN_WRITE) {
		j->minted = true;
		j->shortened = c->minted.shortened;
		j->lifetime = c->minted.lifetime;
		kc_audit_mint(j->user, j->uid, j->cl->name, c->plan.in.target.sa_namespace, c->plan.in.target.sa_name,
			      &c->minted, j->cfg->ttl,
			      k.remap	    ? "remap"
			      : j->is_login ? "login"
					    : "rotation",
			      c->sessions, c->n_sessions);
	}
	j->written = k.written;
	if (k.cut && j->cfg->cut_on_logout)
		kc_job_cut_after(c, !k.written);
}

/* ---- one job ------------------------------------------------------------------------ */

static void finish(struct job_ctx *c)
{
	kc_kube_minted_clear(&c->minted);
	kc_kube_close(c->kube);
	free(c->grants);
	free(c->sessions);
}

/* A cluster skipped as down is not asked again for its endpoint: a deadline
 * already past lets discovery answer from its cache and from nothing else,
 * and from an entry of any age, so that the file keeps the cluster's context
 * while it is down. */
static void resolve_for_kubeconfig(struct kc_job *j)
{
	struct kc_cluster any_age = *j->cl;
	struct kc_err e;

	if (!j->wanted || j->ep.server)
		return;
	if (!j->skipped) {
		if (kc_cluster_resolve(j->cfg, j->cl, j->deadline_ms, &j->ep, &e) < 0)
			kc_warn("%s", e.msg);
		return;
	}
	any_age.eks.discovery_ttl = 0;
	if (kc_cluster_resolve(j->cfg, &any_age, kc_now_ms(), &j->ep, &e) == 0)
		j->ep.cl = j->cl; /* not the copy on this stack */
}

void kc_job_run(struct kc_job *j)
{
	struct job_ctx c = { .j = j };
	struct kc_lift lift = { 0 };
	struct kc_err e;
	long long started = kc_now_ms();
	int lock, probe = -1;

	lock = kc_state_lock_cluster(j->state_dir, j->cl->name, j->deadline_ms, &e);
	if (lock < 0) {
		snprintf(j->error, sizeof(j->error), "%s", e.msg);
		j->failed = true;
		j->pending = 1; /* whatever it had to revoke, it did not */
		return;
	}
	kc_debug("cluster %s: locked", j->cl->name);
	if (kc_job_held_or_fleet_locked(j, &c.kube, c.error, sizeof(c.error)) < 0)
		goto out;
	if (plan(&c) == 0) {
		kc_debug("cluster %s: planned", j->cl->name);
		if (kc_job_held_mints(j, &c.plan, c.error, sizeof(c.error)))
			goto out;
		kc_job_lift_start(&lift, &c);
		kc_job_early_cut_start(&c);
		if (kc_plan_next(&c.plan).kind != KC_STEP_DONE) {
			if (j->honour_down_window && kc_job_in_down_window(j, &probe)) {
				kc_job_skip(j, &c.plan);
				snprintf(c.error, sizeof(c.error),
					 "cluster %s: skipped: it failed less than %lds ago (network.after_failure)",
					 j->cl->name, j->cfg->after_failure);
				goto out;
			}
			/* Every job that sends marks first: a Secret or token made, or a
			 * DELETE landed, by a helper killed before its commit must not
			 * leave a grant the next login keeps as it is. */
			mark_start(&c);
			send_all(&c);
			if (mark_wait(&c) < 0 && !c.error[0])
				snprintf(c.error, sizeof(c.error),
					 "cluster %s: cannot record the job before its requests", j->cl->name);
		}
		kc_debug("cluster %s: requests done", j->cl->name);
		commit(&c);
		kc_debug("cluster %s: committed", j->cl->name);
	} else {
		j->failed = true;
	}
out:
	kc_job_early_cut_join(&c);
	kc_job_lift_join(&lift);
	close(lock);
	if (probe >= 0)
		close(probe);
	snprintf(j->error, sizeof(j->error), "%s", c.error);
	finish(&c);
	resolve_for_kubeconfig(j);
	j->took_ms = kc_now_ms() - started;
	kc_debug("cluster %s: %s%s in %lld ms with %u requests", j->cl->name, j->written ? "written" : "not written",
		 j->skipped ? " (skipped)" : "", j->took_ms, j->requests);
}

static void *job_thread(void *arg)
{
	kc_job_run(arg);
	return NULL;
}

void kc_jobs_run(struct kc_job *jobs, size_t n)
{
	pthread_t *t = n > 1 ? calloc(n, sizeof(*t)) : NULL;
	bool *started = n > 1 ? calloc(n, sizeof(*started)) : NULL;

	for (size_t i = 0; i < n; i++)
		if (!t || !started || pthread_create(&t[i], NULL, job_thread, &jobs[i]) != 0)
			kc_job_run(&jobs[i]); /* one job, or no thread to spare: here */
		else
			started[i] = true;
	for (size_t i = 0; t && started && i < n; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	free(t);
	free(started);
}

void kc_job_clear(struct kc_job *j)
{
	kc_cluster_endpoint_free(&j->ep);
}

/* One user's reconciliation over every cluster (see lifecycle/reconcile.h). */
#include "lifecycle/reconcile.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

#include "kube/cluster.h"
#include "kube/objects.h"
#include "lifecycle/state.h"
#include "lifecycle/status.h"
#include "lifecycle/tokenfile.h"

/* What the jobs left, for `pam-kubeconfig status` (lifecycle/status.h). */
static void write_status(const struct kc_reconcile *r)
{
	const struct kc_status_input in = { .cfg = r->cfg,
					    .uid = r->uid,
					    .gid = r->id ? r->id->gid : 0,
					    .user = r->id ? r->id->name : NULL,
					    .state_dir = r->state_dir,
					    .jobs = r->jobs,
					    .n_jobs = r->n_jobs,
					    .deadline_ms = r->deadline_ms };
	struct kc_err e = { "" };

	if (kc_status_write(&in, &e) < 0)
		kc_warn("uid %u: %s", (unsigned)r->uid, e.msg);
}

int kc_reconcile_run(struct kc_reconcile *r, struct kc_err *err)
{
	const struct kc_config *cfg = r->cfg;

	r->targets = calloc(cfg->n_clusters + 1, sizeof(*r->targets));
	r->jobs = calloc(cfg->n_clusters + 1, sizeof(*r->jobs));
	if (!r->targets || !r->jobs)
		return kc_seterr(err, "out of memory"), -1;
	if (r->id && r->in_scope)
		kc_map_user(cfg, r->id, r->targets);
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct kc_job *j = &r->jobs[r->n_jobs++];

		*j = (struct kc_job){ .cfg = cfg,
				      .cl = &cfg->clusters[i],
				      .user = r->user,
				      .uid = r->uid,
				      .gid = r->id ? r->id->gid : 0,
				      .state_dir = r->state_dir,
				      .target = r->id && r->in_scope ? &r->targets[i] : NULL,
				      .in_scope = r->in_scope,
				      .rotate = r->rotate,
				      .honour_down_window = r->honour_down_window,
				      .is_login = r->is_login,
				      .turn_cut_short = r->turn_cut_short,
				      .deadline_ms = r->deadline_ms };
	}
	kc_jobs_run(r->jobs, r->n_jobs);
	write_status(r);
	return 0;
}

void kc_reconcile_free(struct kc_reconcile *r)
{
	for (size_t i = 0; i < r->n_jobs; i++)
		kc_job_clear(&r->jobs[i]);
	free(r->jobs);
	free(r->targets);
	r->jobs = NULL;
	r->targets = NULL;
	r->n_jobs = 0;
}

size_t kc_reconcile_written(const struct kc_reconcile *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_jobs; i++)
		n += r->jobs[i].wanted && r->jobs[i].written;
	return n;
}

size_t kc_reconcile_entries(const struct kc_reconcile *r, struct kc_merge_entry *out, char (*paths)[160],
			    struct kc_buf *tokens)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_jobs; i++) {
		const struct kc_job *j = &r->jobs[i];

		if (!j->wanted || !j->ep.server)
			continue;
		kc_tokenfile_path(r->uid, j->cl->name, paths[n], 160);
		out[n] = (struct kc_merge_entry){ .name = j->ep.context,
						  .server = j->ep.server,
						  .ca_pem = j->ep.ca_pem,
						  .ca_pem_len = j->ep.ca_pem_len,
						  .insecure_skip_tls_verify = j->ep.insecure,
						  .sa_namespace = j->target->sa_namespace,
						  .token_file = paths[n],
						  .token = NULL };
		/* The old form, for clients without tokenFile: rotation does not reach them. */
		if (r->cfg->inline_token && kc_tokenfile_read(r->uid, j->cl->name, &tokens[n]) == 0) {
			out[n].token = tokens[n].data;
			out[n].token_file = NULL;
		}
		n++;
	}
	return n;
}

int kc_reconcile_write(const struct kc_reconcile *r, struct kc_writer *w, bool remove_if_empty, long long deadline_ms,
		       struct kc_writer_result *res, struct kc_err *err)
{
	struct kc_merge_entry *e = calloc(r->n_jobs + 1, sizeof(*e));
	char(*paths)[160] = calloc(r->n_jobs + 1, sizeof(*paths));
	struct kc_buf *tokens = calloc(r->n_jobs + 1, sizeof(*tokens));
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (!e || !paths || !tokens) {
		kc_seterr(err, "out of memory");
	} else {
		size_t n = kc_reconcile_entries(r, e, paths, tokens);

		rc = kc_writer_merge(w, r->cfg->kubeconfig_path, ".kube/config", remove_if_empty && n == 0, e, n,
				     deadline_ms, res, err);
	}
	for (size_t i = 0; tokens && i < r->n_jobs; i++)
		kc_buf_free(&tokens[i]);
	free(tokens);
	free(paths);
	free(e);
	return rc;
}

void kc_reconcile_digest(const struct kc_reconcile *r, char out[65])
{
	kc_autobuf struct kc_buf b = { .secret = true };

	for (size_t i = 0; i < r->n_jobs; i++) {
		const struct kc_job *j = &r->jobs[i];

		if (!j->wanted)
			continue;
		kc_buf_printf(&b, "%s\n%s\n%s\n%s\n%d\n", j->cl->name, j->ep.context ? j->ep.context : "",
			      j->ep.server ? j->ep.server : "", j->target->sa_namespace, j->ep.insecure);
		if (j->ep.ca_pem)
			kc_buf_append(&b, j->ep.ca_pem, j->ep.ca_pem_len);
		if (r->cfg->inline_token)
			kc_tokenfile_read(r->uid, j->cl->name, &b);
	}
	kc_sha256_hex(b.data ? b.data : "", b.len, out);
}

/* Would a job on this cluster send a request or change a file? When not,
 * *until (optional) is lowered to when its token will be. */
static bool cluster_due(const struct kc_config *cfg, const struct kc_cluster *cl, const struct kc_identity *id,
			const struct kc_target *t, bool wanted, uid_t uid, int state_dir, enum kc_rotate rotate,
			time_t *until)
{
	struct kc_plan_input in = { .cluster = cl->name,
				    .rotate = rotate,
				    .refresh_before = cfg->refresh_before,
				    .ttl = cfg->ttl,
				    .limit_remint = true,
				    .now = time(NULL) };
	struct kc_grant *g = NULL;
	size_t n = 0;
	struct kc_plan *p = malloc(sizeof(*p));
	struct kc_err e;
	bool due;

	if (!p || kc_state_grants(state_dir, cl->name, NULL, &g, &n, &e) < 0) {
		free(p);
		return true;
	}
	in.grants = g;
	in.n_grants = n;
	in.token_file = kc_tokenfile_exists(uid, cl->name);
	kc_job_plan_target(cfg, cl, id ? id->name : NULL, t, wanted, &in.target);
	/* A grant file that cannot be read is due: the job will recover it. So is
	 * a revocation that ends because its tokens expired: its file goes. */
	due = kc_plan_start(p, &in) < 0 || kc_plan_next(p).kind != KC_STEP_DONE ||
	      (in.token_file && !(p->keep >= 0 && p->old[p->keep].sa_name[0]));
	for (size_t k = 0; k < p->n_old && !due; k++)
		due = p->expired[k];
	if (!due && until && p->keep >= 0 && p->old[p->keep].sa_name[0]) {
		time_t fresh = kc_plan_fresh_until(&p->old[p->keep], cfg->refresh_before);

		if (!*until || fresh < *until)
			*until = fresh;
	}
	free(p);
	free(g);
	return due;
}

bool kc_reconcile_due(const struct kc_config *cfg, const struct kc_identity *id, bool in_scope, uid_t uid,
		      int state_dir, enum kc_rotate rotate, time_t *until)
{
	struct kc_target *targets = calloc(cfg->n_clusters + 1, sizeof(*targets));
	struct kc_session_record *sessions = NULL;
	size_t n_sessions = 0;
	bool due = false;
	struct kc_err e;

	if (!targets || kc_state_sessions(state_dir, false, &sessions, &n_sessions, NULL, &e) < 0) {
		free(targets);
		return true;
	}
	if (id && in_scope)
		kc_map_user(cfg, id, targets);
	for (size_t i = 0; i < cfg->n_clusters && !due; i++)
		due = cluster_due(cfg, &cfg->clusters[i], id, &targets[i], id && in_scope && n_sessions > 0, uid,
				  state_dir, rotate, until);
	free(sessions);
	free(targets);
	return due;
}

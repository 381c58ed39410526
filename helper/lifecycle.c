/* open, close, refresh, gc: records under the user's lock, network outside it,
 * the user's file through the writer. */
#include "kc_lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kc_config.h"
#include "kc_kubeapi.h"
#include "kc_kubeconfig.h"
#include "kc_log.h"
#include "kc_mapping.h"
#include "kc_session.h"
#include "kc_userfile.h"

#define RECONCILE_TTL 3600
#define REVOKE_WAIT_MS 5000

/* One cluster's work for one login or refresh. */
struct job {
	const struct kc_target *t;
	char secret[64]; /* "" when tokens are not bound */
	bool create_secret; /* no finished session of this user holds it yet */
	bool delete_first; /* a revocation of it is pending: finish it first */
	bool skipped; /* inside the after_failure window */
	bool secret_made; /* created (or found) by this run */
	bool delete_done;
	bool ok;
	struct kc_minted minted;
	char error[KC_ERR_MAX];
};

static const char *orz(const char *s)
{
	return s && *s ? s : "-";
}

static int load_config(const char *path, struct kc_config **cfg)
{
	struct kc_err err = { "" };

	*cfg = kc_config_load(path, 0, &err);
	if (!*cfg) {
		kc_error("%s", err.msg);
		return KC_EXIT_USAGE;
	}
	return KC_EXIT_OK;
}

/* ---- the after_failure window and the reconcile cache ------------------ */

/* Keyed by what the config says about the cluster, never by what discovery
 * fills in later: the same cluster has the same name before and after. */
static void cache_name(const char *kind, const struct kc_cluster *cl, const char *extra, char *out, size_t len)
{
	kc_autobuf struct kc_buf key = { 0 };
	char hex[65];

	kc_buf_puts(&key, cl->name);
	kc_buf_append(&key, "", 1);
	if (cl->has_eks)
		kc_buf_printf(&key, "eks:%s/%s", cl->eks.cluster_name, cl->eks.region);
	else
		kc_buf_puts(&key, cl->server);
	kc_buf_append(&key, "", 1);
	kc_buf_puts(&key, extra ? extra : "");
	kc_sha256_hex(key.data, key.len, hex);
	snprintf(out, len, "%s-%.24s", kind, hex);
}

static int cache_dir(void)
{
	struct kc_err err;

	return kc_open_state_dir(KC_CACHE_DIR, &err);
}

/* Skip a cluster that failed less than after_failure ago. Past the window one
 * login probes it (holding the marker's lock) while the others keep skipping. */
static bool cluster_skipped(const struct kc_config *cfg, const struct kc_cluster *cl, int *probe_fd)
{
	char name[80];
	struct stat st;
	kc_autoclose int dir = cache_dir();
	int fd;

	*probe_fd = -1;
	if (dir < 0)
		return false;
	cache_name("down", cl, NULL, name, sizeof(name));
	fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && time(NULL) - st.st_mtime < cfg->after_failure) {
		close(fd);
		return true;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return true;
	}
	*probe_fd = fd;
	return false;
}

static void cluster_health(const struct kc_cluster *cl, bool down)
{
	char name[80];
	kc_autoclose int dir = cache_dir();
	int fd;

	if (dir < 0)
		return;
	cache_name("down", cl, NULL, name, sizeof(name));
	if (!down) {
		unlinkat(dir, name, 0);
		return;
	}
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}

static void reconcile_key(const struct kc_target *t, char *out, size_t len)
{
	char extra[600];

	snprintf(extra, sizeof(extra), "%s/%s %s %d", t->sa_namespace, t->sa_name, orz(t->rule->clusterrole),
		 t->rule->cluster_wide);
	cache_name("reconciled", t->cluster, extra, out, len);
}

static bool reconciled_recently(const struct kc_target *t)
{
	char name[80];
	struct stat st;
	kc_autoclose int dir = cache_dir();

	if (dir < 0)
		return false;
	reconcile_key(t, name, sizeof(name));
	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && time(NULL) - st.st_mtime < RECONCILE_TTL;
}

static void mark_reconciled(const struct kc_target *t)
{
	char name[80];
	kc_autoclose int dir = cache_dir();
	int fd;

	if (dir < 0)
		return;
	reconcile_key(t, name, sizeof(name));
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}

/* ---- network work for one cluster --------------------------------------- */

static void run_job(const struct kc_config *cfg, const struct kc_identity *id, struct job *j)
{
	const struct kc_target *t = j->t;
	const struct kc_cluster *cl = t->cluster;
	struct kc_err err = { "" };
	struct kc_kube *k = NULL;
	int probe_fd = -1;
	long long started = kc_now_ms();

	if (cluster_skipped(cfg, cl, &probe_fd)) {
		j->skipped = true;
		snprintf(j->error, sizeof(j->error),
			 "cluster %s: skipped: it failed less than %lds ago (network.after_failure)", cl->name,
			 cfg->after_failure);
		return;
	}
	if (cl->insecure_skip_tls_verify && !cl->ca_pem)
		kc_warn("cluster %s: TLS verification is switched off (insecure_skip_tls_verify)", cl->name);
	k = kc_kube_open(cfg, cl, &err);
	if (!k)
		goto out;
	kc_kube_set_deadline(k, kc_now_ms() + cfg->request_timeout_ms);
	if (j->delete_first) {
		if (kc_kube_delete_secret(k, t->sa_namespace, j->secret, &err) < 0)
			goto out;
		j->delete_done = true;
	}
	if (j->secret[0] && (j->create_secret || j->delete_first)) {
		if (kc_kube_create_secret(k, t->sa_namespace, j->secret, id->name, cfg->host_id, &err) < 0)
			goto out;
		j->secret_made = true;
	}
	if (t->rule->create && !reconciled_recently(t)) {
		if (kc_kube_reconcile(k, t->sa_namespace, t->sa_name, t->rule->clusterrole, t->rule->cluster_wide,
				      &err) < 0)
			goto out;
		mark_reconciled(t);
	}
	if (kc_kube_token_request(k, t->sa_namespace, t->sa_name, cfg->ttl, cfg->audiences, cfg->n_audiences,
				  j->secret[0] ? j->secret : NULL, &j->minted, &err) < 0) {
		/* The cache said the ServiceAccount was there; it may have been deleted since. */
		if (!t->rule->create || kc_kube_unreachable(k) ||
		    kc_kube_reconcile(k, t->sa_namespace, t->sa_name, t->rule->clusterrole, t->rule->cluster_wide,
				      &err) < 0 ||
		    kc_kube_token_request(k, t->sa_namespace, t->sa_name, cfg->ttl, cfg->audiences, cfg->n_audiences,
					  j->secret[0] ? j->secret : NULL, &j->minted, &err) < 0)
			goto out;
		mark_reconciled(t);
	}
	j->ok = true;
out:
	if (!j->ok)
		snprintf(j->error, sizeof(j->error), "%s", err.msg[0] ? err.msg : "unknown error");
	if (k) {
		kc_debug("cluster %s: %s/%s %s in %lld ms with %u requests", cl->name, t->sa_namespace, t->sa_name,
			 j->ok ? "minted" : "failed", kc_now_ms() - started, kc_kube_requests(k));
		cluster_health(cl, kc_kube_unreachable(k) && !j->ok);
		kc_kube_close(k);
	}
	if (probe_fd >= 0)
		close(probe_fd);
}

static void audit_mint(const struct kc_session_args *a, const char *user, const struct job *j, long asked)
{
	char when[32], life[32], want[32];

	kc_format_time(j->minted.expiry, when, sizeof(when));
	kc_format_duration(j->minted.lifetime, life, sizeof(life));
	kc_format_duration(asked, want, sizeof(want));
	kc_audit("mint user=%s session=%s rhost=%s service=%s cluster=%s serviceaccount=%s/%s expires=%s "
		 "lifetime=%s%s%s%s "
		 "jti=%s",
		 user, a ? orz(a->session) : "refresh", a ? orz(a->rhost) : "-", a ? orz(a->service) : "-",
		 j->t->cluster->name, j->t->sa_namespace, j->t->sa_name, when, life,
		 j->minted.shortened ? " shortened-from=" : "", j->minted.shortened ? want : "",
		 j->minted.shortened ? " (capped by the server)" : "", orz(j->minted.jti));
}

/* The file's bytes for every job that succeeded, in config order. */
static int build_file(const struct kc_config *cfg, const struct kc_identity *id, struct job *jobs, size_t n,
		      struct kc_buf *out)
{
	struct kc_kubeconfig_entry *e = calloc(n ? n : 1, sizeof(*e));
	char host[256] = "";
	size_t m = 0;
	int rc;

	if (!e)
		return -1;
	gethostname(host, sizeof(host) - 1);
	for (size_t i = 0; i < n; i++) {
		const struct kc_cluster *cl = jobs[i].t->cluster;

		if (!jobs[i].ok)
			continue;
		e[m] = (struct kc_kubeconfig_entry){ cl->context,
						     cl->server,
						     cl->ca_pem,
						     cl->ca_pem_len,
						     jobs[i].t->sa_namespace,
						     jobs[i].t->sa_name,
						     jobs[i].minted.token,
						     jobs[i].minted.expiry };
		m++;
	}
	rc = kc_kubeconfig_emit(host, cfg->host_id, id->name, e, m, out);
	free(e);
	return rc;
}

static void fill_grant(struct kc_grant *g, const struct job *j)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->cluster, sizeof(g->cluster), "%s", j->t->cluster->name);
	snprintf(g->sa_namespace, sizeof(g->sa_namespace), "%s", j->t->sa_namespace);
	snprintf(g->sa_name, sizeof(g->sa_name), "%s", j->t->sa_name);
	snprintf(g->secret, sizeof(g->secret), "%s", j->secret);
	g->expiry = j->ok ? j->minted.expiry : 0;
	g->lifetime = j->ok ? j->minted.lifetime : 0;
}

static bool grant_finished_elsewhere(const struct kc_user_state *st, const struct job *j, const char *except)
{
	for (size_t i = 0; i < st->n_sessions; i++) {
		const struct kc_session_record *r = &st->sessions[i];

		if (except && strcmp(r->id, except) == 0)
			continue;
		for (size_t g = 0; g < r->n_grants; g++)
			if (r->grants[g].expiry != 0 && strcmp(r->grants[g].cluster, j->t->cluster->name) == 0 &&
			    strcmp(r->grants[g].sa_namespace, j->t->sa_namespace) == 0 &&
			    strcmp(r->grants[g].secret, j->secret) == 0)
				return true;
	}
	return false;
}

static void claim_pending(struct kc_user_state *st, struct kc_pending *p)
{
	struct kc_err e;

	p->revoker = getpid();
	p->revoker_start = kc_proc_start_time(getpid());
	kc_state_put_pending(st, p, &e);
}

static void release_pending(struct kc_user_state *st, const char *cluster, const char *ns, const char *secret,
			    bool done, const char *error)
{
	struct kc_pending *p = kc_state_find_pending(st, cluster, ns, secret);
	struct kc_err e;

	if (!p)
		return;
	if (done) {
		kc_state_drop_pending(st, cluster, ns, secret);
		return;
	}
	p->revoker = 0;
	p->revoker_start = 0;
	snprintf(p->error, sizeof(p->error), "%s", error ? error : "");
	kc_state_put_pending(st, p, &e);
}

/* A revocation nobody works on yet: this process's claim_orphans() takes it. */
static void add_pending(struct kc_user_state *st, const char *cluster, const char *ns, const char *secret,
			const char *why)
{
	struct kc_pending p = { 0 };
	struct kc_err e;

	snprintf(p.cluster, sizeof(p.cluster), "%s", cluster);
	snprintf(p.sa_namespace, sizeof(p.sa_namespace), "%s", ns);
	snprintf(p.secret, sizeof(p.secret), "%s", secret);
	snprintf(p.error, sizeof(p.error), "%s", why);
	p.since = time(NULL);
	kc_state_put_pending(st, &p, &e);
}

/* Deletes the Secrets of pending revocations this process claimed; records the
 * outcome under the lock. Returns how many failed. */
static int revoke_claimed(const struct kc_config *cfg, uid_t uid, struct kc_pending *list, size_t n)
{
	struct kc_user_state st;
	struct kc_err err;
	int failed = 0;
	bool *done = calloc(n ? n : 1, sizeof(bool));
	char(*why)[KC_ERR_MAX] = calloc(n ? n : 1, KC_ERR_MAX);

	if (!done || !why) {
		free(done);
		free(why);
		return (int)n;
	}
	for (size_t i = 0; i < n; i++) {
		const struct kc_cluster *cl = cfg ? kc_config_cluster(cfg, list[i].cluster) : NULL;
		struct kc_kube *k;

		err.msg[0] = '\0';
		if (!cl) {
			snprintf(why[i], KC_ERR_MAX,
				 "cluster %s is no longer in the config; delete Secret %s/%s by hand", list[i].cluster,
				 list[i].sa_namespace, list[i].secret);
		} else if ((k = kc_kube_open(cfg, cl, &err))) {
			kc_kube_set_deadline(k, kc_now_ms() + cfg->request_timeout_ms);
			if (kc_kube_delete_secret(k, list[i].sa_namespace, list[i].secret, &err) == 0)
				done[i] = true;
			kc_kube_close(k);
		}
		if (!done[i] && !why[i][0])
			snprintf(why[i], KC_ERR_MAX, "%s", err.msg);
		if (done[i])
			kc_audit("revoke uid=%u cluster=%s secret=%s/%s", (unsigned)uid, list[i].cluster,
				 list[i].sa_namespace, list[i].secret);
		else {
			kc_error("revocation pending (gc retries): %s", why[i]);
			failed++;
		}
	}
	if (kc_state_lock(uid, true, &st, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			release_pending(&st, list[i].cluster, list[i].sa_namespace, list[i].secret, done[i], why[i]);
		kc_state_unlock(&st);
	}
	free(done);
	free(why);
	return failed;
}

/* ---- open ----------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("MESSAGE=", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

int kc_cmd_open(const struct kc_session_args *a)
{
	struct kc_identity id;
	struct kc_config *cfg = NULL;
	struct kc_writer w = { .pid = -1, .to_child = -1, .from_child = -1 };
	struct kc_target *targets = NULL;
	struct job *jobs = NULL;
	struct kc_session_record rec = { 0 };
	struct kc_user_state st;
	struct kc_err err = { "" };
	size_t n_jobs = 0, n_ok = 0;
	long long started;
	int rc = KC_EXIT_ERROR;

	if (!kc_session_id_valid(a->session)) {
		kc_error("--session must be 1 to %d letters, digits, '-' or '_'", KC_SESSION_ID_MAX);
		return KC_EXIT_USAGE;
	}
	if (kc_identity_load(a->user, &id, &err) < 0) {
		kc_error("%s", err.msg);
		return KC_EXIT_ERROR;
	}
	if (id.uid == 0) {
		kc_identity_free(&id);
		return KC_EXIT_IGNORE;
	}
	/* The writer is forked before any secret (config, credentials) is loaded. */
	if (kc_writer_start(&id, &w, &err) < 0) {
		kc_error("user %s: %s", id.name, err.msg);
		goto out;
	}
	if ((rc = load_config(a->config, &cfg)) != KC_EXIT_OK)
		goto out;
	rc = KC_EXIT_IGNORE;
	if (id.uid < cfg->min_uid)
		goto out;
	targets = calloc(cfg->n_clusters, sizeof(*targets));
	jobs = calloc(cfg->n_clusters, sizeof(*jobs));
	rec.grants = calloc(cfg->n_clusters, sizeof(*rec.grants));
	if (!targets || !jobs || !rec.grants) {
		rc = KC_EXIT_ERROR;
		goto out;
	}
	kc_map_user(cfg, &id, targets);
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		if (targets[i].error[0]) {
			kc_error("%s", targets[i].error);
			say("cluster %s: your user name does not map to a valid ServiceAccount name; ask the admin",
			    targets[i].cluster->name);
			rc = KC_EXIT_ERROR;
		}
		if (!targets[i].rule || targets[i].error[0])
			continue;
		kc_debug("user %s: cluster %s -> %s/%s (rule %zu at %s:%u)", id.name, targets[i].cluster->name,
			 targets[i].sa_namespace, targets[i].sa_name, targets[i].rule_index + 1, cfg->path,
			 targets[i].rule->mark.line);
		jobs[n_jobs].t = &targets[i];
		if (cfg->revoke_on_logout)
			kc_revocation_secret_name(cfg->host_id, id.name, jobs[n_jobs].secret,
						  sizeof(jobs[n_jobs].secret));
		n_jobs++;
	}
	if (n_jobs == 0)
		goto out;
	rc = KC_EXIT_ERROR;

	/* Phase 1, under the lock: record the session (so no close revokes what it
	 * is about to use) and decide what the network must do. */
	snprintf(rec.id, sizeof(rec.id), "%s", a->session);
	rec.pid = a->pid > 0 ? a->pid : getppid();
	rec.pid_start = kc_proc_start_time(rec.pid);
	kc_boot_id(rec.boot_id);
	rec.opened = time(NULL);
	started = kc_now_ms();
	for (;;) {
		bool busy = false;

		if (kc_state_lock(id.uid, true, &st, &err) != 0) {
			kc_error("%s", err.msg);
			goto out;
		}
		for (size_t i = 0; i < n_jobs; i++) {
			struct kc_pending *p = jobs[i].secret[0]
						       ? kc_state_find_pending(&st, jobs[i].t->cluster->name,
									       jobs[i].t->sa_namespace, jobs[i].secret)
						       : NULL;

			if (p && kc_process_alive(p->revoker, p->revoker_start))
				busy = true;
		}
		if (!busy || kc_now_ms() - started > REVOKE_WAIT_MS)
			break;
		/* A logout is deleting this user's Secret right now: let it finish. */
		kc_state_unlock(&st);
		usleep(50 * 1000);
	}
	for (size_t i = 0; i < n_jobs; i++) {
		struct job *j = &jobs[i];
		struct kc_pending *p;

		if (!j->secret[0])
			continue;
		j->create_secret = !grant_finished_elsewhere(&st, j, a->session);
		p = kc_state_find_pending(&st, j->t->cluster->name, j->t->sa_namespace, j->secret);
		if (p) {
			j->delete_first = true;
			claim_pending(&st, p);
		}
		fill_grant(&rec.grants[rec.n_grants++], j);
	}
	if (kc_state_put_session(&st, &rec, &err) < 0) {
		kc_error("%s", err.msg);
		kc_state_unlock(&st);
		goto out;
	}
	kc_state_unlock(&st);

	/* Phase 2: the network, no lock held. */
	for (size_t i = 0; i < n_jobs; i++) {
		run_job(cfg, &id, &jobs[i]);
		if (jobs[i].ok) {
			n_ok++;
			audit_mint(a, id.name, &jobs[i], cfg->ttl);
		}
	}

	/* Phase 3, under the lock: the records and the file. */
	if (kc_state_lock(id.uid, true, &st, &err) != 0) {
		kc_error("%s", err.msg);
		goto out;
	}
	rec.n_grants = 0;
	for (size_t i = 0; i < n_jobs; i++) {
		struct job *j = &jobs[i];

		if (j->delete_first)
			release_pending(&st, j->t->cluster->name, j->t->sa_namespace, j->secret, j->delete_done,
					j->error);
		if (j->ok)
			fill_grant(&rec.grants[rec.n_grants++], j);
		else if (j->secret_made &&
			 !kc_state_secret_in_use(&st, j->t->cluster->name, j->t->sa_namespace, j->secret, a->session))
			add_pending(&st, j->t->cluster->name, j->t->sa_namespace, j->secret,
				    "made at a login whose token request failed");
	}
	if (n_ok == 0) {
		kc_state_drop_session(&st, a->session);
	} else {
		kc_autobuf struct kc_buf file = { .secret = true };

		if (kc_state_put_session(&st, &rec, &err) < 0 || build_file(cfg, &id, jobs, n_jobs, &file) < 0 ||
		    kc_writer_write(&w, cfg->kubeconfig_path, &file, &err) < 0) {
			kc_error("user %s: %s", id.name, err.msg[0] ? err.msg : "cannot write the kubeconfig");
			say("your kubeconfig could not be written: %s", err.msg);
			kc_state_unlock(&st);
			goto out;
		}
	}
	kc_state_unlock(&st);

	for (size_t i = 0; i < n_jobs; i++) {
		struct job *j = &jobs[i];
		char when[32], life[32], want[32];

		if (!j->ok) {
			kc_error("user %s: %s", id.name, j->error);
			say("cluster %s is unavailable (%s); your kubeconfig leaves it out", j->t->cluster->name,
			    j->skipped ? "it failed moments ago" : "see the system log");
			continue;
		}
		kc_format_time(j->minted.expiry, when, sizeof(when));
		kc_format_duration(j->minted.lifetime, life, sizeof(life));
		kc_format_duration(cfg->ttl, want, sizeof(want));
		if (j->minted.shortened) {
			kc_warn("user %s: cluster %s shortened the token lifetime to %s (asked %s)", id.name,
				j->t->cluster->name, life, want);
			say("kubectl: context %s as %s/%s; the cluster limits tokens to %s (not %s): it expires %s",
			    j->t->cluster->context, j->t->sa_namespace, j->t->sa_name, life, want, when);
		} else {
			say("kubectl: context %s as %s/%s until %s", j->t->cluster->context, j->t->sa_namespace,
			    j->t->sa_name, when);
		}
	}
	if (n_ok > 0) {
		if (cfg->set_env)
			printf("KUBECONFIG=%s%s%s\n", id.home, id.home[strlen(id.home) - 1] == '/' ? "" : "/",
			       cfg->kubeconfig_path);
		rc = KC_EXIT_OK;
	}
out:
	fflush(stdout);
	for (size_t i = 0; jobs && i < n_jobs; i++)
		kc_minted_clear(&jobs[i].minted);
	free(jobs);
	free(targets);
	free(rec.grants);
	kc_writer_finish(&w);
	kc_config_free(cfg);
	kc_identity_free(&id);
	return rc;
}

/* ---- close ---------------------------------------------------------------- */

/* Claims every pending revocation nobody is working on; returns them. */
static size_t claim_orphans(struct kc_user_state *st, struct kc_pending **out)
{
	size_t n = 0;

	*out = calloc(st->n_pending + 1, sizeof(**out));
	if (!*out)
		return 0;
	for (size_t i = 0; i < st->n_pending; i++) {
		struct kc_pending *p = &st->pending[i];

		if (kc_process_alive(p->revoker, p->revoker_start))
			continue;
		claim_pending(st, p);
		(*out)[n++] = *p;
	}
	return n;
}

int kc_cmd_close(const struct kc_session_args *a)
{
	struct kc_identity id;
	struct kc_config *cfg = NULL;
	struct kc_writer w = { .pid = -1, .to_child = -1, .from_child = -1 };
	struct kc_user_state st;
	struct kc_session_record *rec;
	struct kc_pending *todo = NULL;
	struct kc_err err = { "" };
	size_t n_todo = 0;
	int rc = KC_EXIT_ERROR, locked;

	if (!kc_session_id_valid(a->session)) {
		kc_error("--session must be 1 to %d letters, digits, '-' or '_'", KC_SESSION_ID_MAX);
		return KC_EXIT_USAGE;
	}
	if (kc_identity_load(a->user, &id, &err) < 0) {
		kc_error("%s", err.msg);
		return KC_EXIT_ERROR;
	}
	if (id.uid == 0) {
		kc_identity_free(&id);
		return KC_EXIT_IGNORE;
	}
	if (kc_writer_start(&id, &w, &err) < 0) {
		kc_error("user %s: %s", id.name, err.msg);
		goto out;
	}
	if ((rc = load_config(a->config, &cfg)) != KC_EXIT_OK)
		goto out;

	locked = kc_state_lock(id.uid, false, &st, &err);
	if (locked < 0) {
		kc_error("%s", err.msg);
		rc = KC_EXIT_ERROR;
		goto out;
	}
	rc = KC_EXIT_IGNORE;
	if (locked == 1)
		goto out;
	rec = kc_state_find_session(&st, a->session);
	if (!rec) {
		kc_state_unlock(&st);
		goto out;
	}
	{
		struct kc_session_record mine = *rec;
		struct kc_grant *grants = malloc((rec->n_grants + 1) * sizeof(*grants));

		if (!grants) {
			kc_state_unlock(&st);
			rc = KC_EXIT_ERROR;
			goto out;
		}
		memcpy(grants, rec->grants, rec->n_grants * sizeof(*grants));
		mine.grants = grants;
		kc_state_drop_session(&st, a->session);
		/* The last session of this user holding a Secret revokes it. */
		for (size_t g = 0; g < mine.n_grants; g++) {
			const struct kc_grant *gr = &mine.grants[g];

			if (gr->secret[0] &&
			    !kc_state_secret_in_use(&st, gr->cluster, gr->sa_namespace, gr->secret, NULL) &&
			    !kc_state_find_pending(&st, gr->cluster, gr->sa_namespace, gr->secret))
				add_pending(&st, gr->cluster, gr->sa_namespace, gr->secret, "logout");
		}
		free(grants);
	}
	n_todo = claim_orphans(&st, &todo);
	kc_debug("user %s: session %s closed; %zu of theirs still open, %zu revocations to do", id.name, a->session,
		 st.n_sessions, n_todo);
	if (st.n_sessions == 0 && cfg->remove_on_logout) {
		int r = kc_writer_remove(&w, cfg->kubeconfig_path, cfg->host_id, &err);

		if (r < 0)
			kc_error("user %s: %s", id.name, err.msg);
		else if (r == 1)
			kc_warn("user %s: %s", id.name, err.msg);
	}
	kc_state_unlock(&st);
	kc_writer_finish(&w);

	rc = revoke_claimed(cfg, id.uid, todo, n_todo) ? KC_EXIT_ERROR : KC_EXIT_OK;
	kc_audit("close user=%s session=%s revoked=%zu", id.name, a->session, n_todo);
out:
	free(todo);
	kc_writer_finish(&w);
	kc_config_free(cfg);
	kc_identity_free(&id);
	return rc;
}

/* ---- gc and refresh: one child process per user ------------------------------ */

/* Runs fn for every user with records, each in a child forked from this
 * process, which has loaded the config but no secret: one user's network work
 * (the helper's token, minted tokens) never sits in the memory that another
 * user's writer is forked from. Returns how many users failed. */
static int for_each_user(const struct kc_config *cfg, int (*fn)(const struct kc_config *, uid_t))
{
	struct kc_err err = { "" };
	uid_t *uids = NULL;
	size_t n = 0;
	int failed = 0;

	if (kc_state_list_uids(&uids, &n, &err) < 0) {
		kc_error("%s", err.msg);
		return 1;
	}
	for (size_t u = 0; u < n; u++) {
		pid_t pid;
		int status;

		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			kc_error("fork: %s", strerror(errno));
			failed++;
			continue;
		}
		if (pid == 0)
			exit(fn(cfg, uids[u]) ? 1 : 0);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	free(uids);
	return failed;
}

/* Prunes stale records of one user, removes the file when no session is left,
 * and retries the revocations nobody is working on. */
static int gc_user(const struct kc_config *cfg, uid_t uid)
{
	struct kc_user_state st;
	struct kc_pending *todo = NULL;
	struct kc_identity id = { 0 };
	struct kc_writer w = { .pid = -1, .to_child = -1, .from_child = -1 };
	struct kc_err err = { "" };
	struct passwd *pw = getpwuid(uid);
	bool have_writer = false;
	size_t n;
	int failed;

	/* The writer first, before this process holds the lock. */
	if (pw && kc_identity_load(pw->pw_name, &id, &err) == 0 && id.uid != 0)
		have_writer = kc_writer_start(&id, &w, &err) == 0;
	if (kc_state_lock(uid, false, &st, &err) != 0) {
		kc_writer_finish(&w);
		kc_identity_free(&id);
		return 0;
	}
	if (st.n_sessions == 0 && st.n_pruned > 0 && cfg->remove_on_logout && have_writer &&
	    kc_writer_remove(&w, cfg->kubeconfig_path, cfg->host_id, &err) < 0)
		kc_error("uid %u: %s", (unsigned)uid, err.msg);
	n = claim_orphans(&st, &todo);
	kc_state_unlock(&st);
	kc_writer_finish(&w);
	kc_identity_free(&id);
	failed = revoke_claimed(cfg, uid, todo, n);
	free(todo);
	return failed;
}

int kc_cmd_gc(const char *config)
{
	struct kc_config *cfg = NULL;
	int rc;

	if ((rc = load_config(config, &cfg)) != KC_EXIT_OK)
		return rc;
	rc = for_each_user(cfg, gc_user) ? KC_EXIT_ERROR : KC_EXIT_OK;
	kc_config_free(cfg);
	return rc;
}

/* ---- refresh ---------------------------------------------------------------- */

static bool account_expired(const char *user)
{
	struct spwd sp, *spp = NULL;
	char buf[4096];

	if (getspnam_r(user, &sp, buf, sizeof(buf), &spp) != 0 || !spp)
		return false;
	return spp->sp_expire > 0 && (long)(time(NULL) / 86400) >= spp->sp_expire;
}

/* Refreshes one user: revokes what no longer maps, re-mints what nears expiry. */
static int refresh_user(const struct kc_config *cfg, uid_t uid)
{
	struct kc_user_state st;
	struct kc_err err = { "" };
	struct kc_identity id = { 0 };
	struct kc_writer w = { .pid = -1, .to_child = -1, .from_child = -1 };
	struct kc_grant *held = NULL;
	struct kc_target *targets = NULL;
	struct job *jobs = NULL;
	struct kc_pending *todo = NULL;
	size_t n_held = 0, n_jobs = 0, n_todo = 0;
	struct passwd *pw = getpwuid(uid);
	bool gone, renew = false, changed = false;
	time_t now = time(NULL);
	int rc = 0;
	bool exists = pw && kc_identity_load(pw->pw_name, &id, &err) == 0 && id.uid != 0;

	/* An account that expired or left scope still has a home whose file goes. */
	gone = !exists || id.uid < cfg->min_uid || account_expired(id.name);
	if (exists && kc_writer_start(&id, &w, &err) < 0) {
		kc_error("uid %u: %s", (unsigned)uid, err.msg);
		kc_identity_free(&id);
		return 1;
	}
	if (kc_state_lock(uid, false, &st, &err) != 0)
		goto out;
	/* Every cluster some live session holds, once. */
	for (size_t s = 0; s < st.n_sessions; s++)
		for (size_t g = 0; g < st.sessions[s].n_grants; g++) {
			const struct kc_grant *gr = &st.sessions[s].grants[g];
			bool dup = false;

			for (size_t h = 0; h < n_held; h++)
				dup |= strcmp(held[h].cluster, gr->cluster) == 0;
			if (dup || gr->expiry == 0)
				continue;
			{
				struct kc_grant *more = realloc(held, (n_held + 1) * sizeof(*held));

				if (!more)
					break;
				held = more;
			}
			held[n_held++] = *gr;
		}
	kc_state_unlock(&st);
	if (n_held == 0)
		goto out;

	targets = calloc(cfg->n_clusters, sizeof(*targets));
	jobs = calloc(cfg->n_clusters, sizeof(*jobs));
	if (!targets || !jobs)
		goto out;
	if (!gone)
		kc_map_user(cfg, &id, targets);
	for (size_t h = 0; h < n_held; h++) {
		const struct kc_grant *gr = &held[h];
		const struct kc_target *t = NULL;

		for (size_t c = 0; c < cfg->n_clusters && !gone; c++)
			if (targets[c].rule && !targets[c].error[0] &&
			    strcmp(targets[c].cluster->name, gr->cluster) == 0 &&
			    strcmp(targets[c].sa_namespace, gr->sa_namespace) == 0 &&
			    strcmp(targets[c].sa_name, gr->sa_name) == 0)
				t = &targets[c];
		if (!t) {
			changed = true;
			kc_audit("refresh uid=%u cluster=%s serviceaccount=%s/%s: no longer mapped; revoking",
				 (unsigned)uid, gr->cluster, gr->sa_namespace, gr->sa_name);
			continue;
		}
		if (gr->expiry - now < gr->lifetime * cfg->refresh_before / 100)
			renew = true;
		jobs[n_jobs].t = t;
		snprintf(jobs[n_jobs].secret, sizeof(jobs[n_jobs].secret), "%s", gr->secret);
		n_jobs++;
	}
	if (!renew && !changed)
		goto out;
	for (size_t i = 0; i < n_jobs; i++) {
		run_job(cfg, &id, &jobs[i]);
		if (jobs[i].ok)
			audit_mint(NULL, id.name, &jobs[i], cfg->ttl);
		else
			kc_error("uid %u: refresh: %s", (unsigned)uid, jobs[i].error);
	}

	if (kc_state_lock(uid, false, &st, &err) != 0)
		goto out;
	/* Update every live session's grants to what holds now. */
	for (size_t s = 0; s < st.n_sessions; s++) {
		struct kc_session_record r = st.sessions[s];
		struct kc_grant *g = calloc(n_jobs + 1, sizeof(*g));
		size_t m = 0;

		if (!g)
			continue;
		for (size_t i = 0; i < n_jobs; i++) {
			const struct kc_grant *old = NULL;

			for (size_t k = 0; k < r.n_grants; k++)
				if (strcmp(r.grants[k].cluster, jobs[i].t->cluster->name) == 0)
					old = &r.grants[k];
			if (jobs[i].ok)
				fill_grant(&g[m++], &jobs[i]);
			else if (old)
				g[m++] = *old;
		}
		r.grants = g;
		r.n_grants = m;
		kc_state_put_session(&st, &r, &err);
		free(g);
	}
	/* Secrets of clusters no longer mapped: revoke. */
	for (size_t h = 0; h < n_held; h++) {
		if (held[h].secret[0] &&
		    !kc_state_secret_in_use(&st, held[h].cluster, held[h].sa_namespace, held[h].secret, NULL))
			add_pending(&st, held[h].cluster, held[h].sa_namespace, held[h].secret, "no longer mapped");
	}
	/* A user who is gone or maps nowhere has no job left: the file goes. */
	{
		size_t n_ok = 0;

		for (size_t i = 0; i < n_jobs; i++)
			n_ok += jobs[i].ok;
		if (n_ok > 0) {
			kc_autobuf struct kc_buf file = { .secret = true };

			if (build_file(cfg, &id, jobs, n_jobs, &file) < 0 ||
			    kc_writer_write(&w, cfg->kubeconfig_path, &file, &err) < 0) {
				kc_error("user %s: refresh: %s", id.name, err.msg);
				rc = 1;
			}
		} else if (n_jobs == 0 && cfg->remove_on_logout && w.pid > 0) {
			kc_writer_remove(&w, cfg->kubeconfig_path, cfg->host_id, &err);
		}
	}
	n_todo = claim_orphans(&st, &todo);
	kc_state_unlock(&st);
	kc_writer_finish(&w);
	if (revoke_claimed(cfg, uid, todo, n_todo))
		rc = 1;
out:
	for (size_t i = 0; jobs && i < n_jobs; i++)
		kc_minted_clear(&jobs[i].minted);
	free(todo);
	free(jobs);
	free(targets);
	free(held);
	kc_writer_finish(&w);
	kc_identity_free(&id);
	return rc;
}

int kc_cmd_refresh(const char *config)
{
	struct kc_config *cfg = NULL;
	int rc;

	if ((rc = load_config(config, &cfg)) != KC_EXIT_OK)
		return rc;
	rc = for_each_user(cfg, refresh_user) ? KC_EXIT_ERROR : KC_EXIT_OK;
	kc_config_free(cfg);
	return rc;
}

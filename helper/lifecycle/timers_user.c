/* refresh's and gc's work for one user (see timers_user.h). */
#include "lifecycle/timers_user.h"

#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "lifecycle/reconcile.h"
#include "lifecycle/state.h"
#include "lifecycle/tokenfile.h"
#include "lifecycle/writer.h"

/* What a timer gives the user's own process (the writer) for their file: a
 * user who stops it costs the run this, not the user's whole deadline. */
#define WRITE_BUDGET_MS 2000

static long account_expiry(const char *user)
{
	struct spwd sp, *spp = NULL;
	char buf[4096];

	if (getspnam_r(user, &sp, buf, sizeof(buf), &spp) != 0 || !spp)
		return -1;
	return spp->sp_expire > 0 ? spp->sp_expire : -1;
}

/* getpwuid(uid), then kc_identity_load() of that name: one user at a time. */
static int lookup_user(uid_t uid, struct kc_identity *id, long *expire, struct kc_err *e)
{
	struct passwd pw;
	char *buf = NULL;
	int rc = kc_getpw(NULL, uid, &pw, &buf);

	if (rc < 0)
		kc_seterr(e, "cannot look up its account (%s)", strerror(-rc));
	rc = rc < 0 ? KC_UNKNOWN : rc > 0 ? KC_ABSENT : kc_identity_load(pw.pw_name, id, e);
	free(buf);
	if (rc == 0)
		*expire = account_expiry(id->name);
	return rc;
}

/* The account behind a uid: 1 when it is still served, 0 when it is not (no
 * such account any more, root, below min_uid, expired), -1 when the account
 * databases could not say: then this round leaves the user as they are, for
 * an LDAP outage must not read as every user having left every group. */
int kc_timers_load_user(const struct user_work *u, uid_t uid, struct kc_identity *id, struct kc_user_access *ua)
{
	struct kc_err e = { "" };
	long expire = -1;
	int rc;

	memset(id, 0, sizeof(*id));
	memset(ua, 0, sizeof(*ua));
	rc = u->accounts ? kc_accounts_identity(u->accounts, uid, id, &expire, &e) : lookup_user(uid, id, &expire, &e);

	if (rc == KC_UNKNOWN) {
		kc_debug("uid %u: %s", (unsigned)uid, e.msg);
		return -1;
	}
	if (rc < 0 || id->uid != uid || uid == 0)
		return 0;
	if (u->access)
		kc_access_apply(u->access, id, -1, NULL, ua);
	return id->uid >= u->cfg->min_uid && !(expire > 0 && (long)(time(NULL) / 86400) >= expire);
}

static void write_file(const struct kc_reconcile *r, struct kc_writer *w, int dir)
{
	struct kc_writer_result res;
	struct kc_err err = { "" };
	char digest[65];

	long long by = kc_now_ms() + WRITE_BUDGET_MS;

	kc_reconcile_digest(r, digest);
	if (kc_reconcile_write(r, w, r->cfg->remove_on_logout, by < r->deadline_ms ? by : r->deadline_ms, &res, &err) <
	    0)
		kc_error("uid %u: %s", (unsigned)r->uid, err.msg);
	else if (res.status != KC_WRITE_OK)
		kc_warn("uid %u: ~/%s: %s", (unsigned)r->uid, r->cfg->kubeconfig_path, res.message);
	else
		kc_state_put_digest(dir, digest);
	kc_buf_free(&res.notes);
}

/* Grants on clusters the config no longer names: their credentials are gone
 * with them, so say what is left and how to remove it. */
static void report_orphans(const struct kc_config *cfg, int dir, uid_t uid)
{
	struct kc_grant *g = NULL;
	size_t n = 0;
	struct kc_err e;

	if (kc_state_grants(dir, NULL, NULL, &g, &n, &e) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (!kc_config_cluster(cfg, g[i].cluster) && g[i].secret[0])
			kc_warn("uid %u: cluster %s is no longer in the config; its Secret %s/%s may remain there: "
				"kubectl --context %s -n %s delete secret %s",
				(unsigned)uid, g[i].cluster, g[i].sa_namespace, g[i].secret, g[i].cluster,
				g[i].sa_namespace, g[i].secret);
	free(g);
}

/* The index entries of this user's dead sessions go once the user is done. */
void kc_timers_drop_dead_entries(const struct user_work *u)
{
	size_t n;
	const struct kc_live_entry *e = kc_live_of(u->live, u->n_live, u->uid, &n);

	for (size_t i = 0; i < n; i++)
		if (e[i].dead)
			kc_live_remove(e[i].name);
}

/* The child's work for one user. Returns its exit status. */
static void spawn_writer(const struct kc_identity *id, struct kc_writer *w)
{
	struct kc_user usr = { .name = id->name,
			       .uid = id->uid,
			       .gid = id->gid,
			       .home = id->home,
			       .groups = id->gids,
			       .n_groups = id->n_gids };
	struct kc_err err;

	if (kc_writer_spawn(&usr, w, &err) < 0)
		kc_warn("uid %u: %s", (unsigned)id->uid, err.msg);
}

/* The jobs' errors logged; the revocations they left for later, counted. */
static size_t report_jobs(const struct kc_reconcile *r)
{
	size_t pending = 0;

	for (size_t i = 0; i < r->n_jobs; i++) {
		pending += r->jobs[i].pending;
		if (r->jobs[i].error[0])
			kc_error("uid %u: %s", (unsigned)r->uid, r->jobs[i].error);
	}
	return pending;
}

int kc_timers_user_child(const struct user_work *u)
{
	struct kc_identity id;
	struct kc_user_access ua;
	int served = kc_timers_load_user(u, u->uid, &id, &ua);
	struct kc_writer w = KC_WRITER_NONE;
	struct kc_reconcile r = { 0 };
	struct kc_session_record *live = NULL;
	size_t n_live = 0, pruned = 0, pending = 0;
	struct kc_err err = { "" };
	char want[65], have[65], gone[256];
	const char *user = id.name;
	int dir = kc_state_open(u->uid, false, &err);

	if (dir < 0)
		return dir == KC_ABSENT ? 0 : 1;
	if (id.name && u->access && u->cfg->ssh_ca_keys) { /* the certificates of the user's live sessions */
		kc_user_access_free(&id, &ua);
		kc_access_apply(u->access, &id, dir, NULL, &ua);
	}
	if (kc_state_sessions(dir, u->gc, &live, &n_live, &pruned, &err) < 0)
		n_live = 1; /* unreadable: conclude nothing */
	/* The account databases could not answer: while a session of the user's
	 * lives nothing is concluded about their mapping; once none does, their
	 * grants go, which needs no mapping. */
	if (served < 0 && n_live > 0) {
		kc_warn("uid %u: cannot look up its account; left as it is until the next round", (unsigned)u->uid);
		free(live);
		close(dir);
		kc_user_access_free(&id, &ua);
		return 1;
	}
	/* An account deleted with its sessions open, or one the directory cannot
	 * tell: its Secrets are still named after it, by the name its records kept. */
	if (!id.name && kc_state_user_name(dir, gone, sizeof(gone)) == 0)
		user = gone;
	/* The writer before any credential is loaded; only when the file may change. */
	if (id.name && (n_live > 0 || u->cfg->remove_on_logout))
		spawn_writer(&id, &w);
	r = (struct kc_reconcile){ .cfg = u->cfg,
				   .id = id.name ? &id : NULL,
				   .uid = u->uid,
				   .user = user,
				   .state_dir = dir,
				   .in_scope = served == 1,
				   .rotate = u->rotate,
				   .honour_down_window = !u->gc,
				   .turn_cut_short = u->turn_cut_short,
				   .deadline_ms = u->deadline_ms };
	if (kc_reconcile_run(&r, &err) < 0)
		kc_error("uid %u: %s", (unsigned)u->uid, err.msg);
	pending = report_jobs(&r);
	kc_reconcile_digest(&r, want);
	if (w.pid > 0 && (kc_state_get_digest(dir, have) < 0 || strcmp(want, have) != 0))
		write_file(&r, &w, dir);
	if (u->gc)
		report_orphans(u->cfg, dir, u->uid);
	if (u->gc && n_live == 0)
		kc_tokenfile_remove_all(u->uid); /* what is left there belongs to no cluster of the config */
	kc_timers_drop_dead_entries(u);
	kc_reconcile_free(&r);
	kc_writer_finish(&w);
	kc_user_access_free(&id, &ua);
	kc_identity_free(&id);
	free(live);
	close(dir);
	return pending ? 1 : 0;
}

/* refresh and gc: the timers' commands. Each user with work is handled in a
 * child of its own, forked from a process that holds the config and no
 * secret, with a deadline: at it the child is killed and the next user's turn
 * comes; no user can hold the others up. */
#include "lifecycle/timers.h"
#include "lifecycle/login.h"

#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/accounts.h"
#include "common/cache.h"
#include "config/config.h"
#include "common/log.h"
#include "lifecycle/cut.h"
#include "lifecycle/live.h"
#include "lifecycle/reconcile.h"
#include "lifecycle/state.h"
#include "lifecycle/tokenfile.h"
#include "lifecycle/verdicts.h"
#include "lifecycle/writer.h"

#define PARALLEL 4
#define KILL_GRACE_MS 500
/* What a timer gives the user's own process (the writer) for their file: a
 * user who stops it costs the run this, not the user's whole deadline. */
#define WRITE_BUDGET_MS 2000

struct user_work {
	const struct kc_config *cfg;
	const struct kc_accounts *accounts; /* NULL: look each user up (config/accounts.h) */
	const struct kc_live_entry *live; /* the index of open sessions, as this run read it */
	size_t n_live;
	uid_t uid;
	enum kc_rotate rotate;
	bool gc;
	long long deadline_ms;
};

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
static int load_user(const struct user_work *u, uid_t uid, struct kc_identity *id)
{
	struct kc_err e = { "" };
	long expire = -1;
	int rc;

	memset(id, 0, sizeof(*id));
	rc = u->accounts ? kc_accounts_identity(u->accounts, uid, id, &expire, &e) : lookup_user(uid, id, &expire, &e);

	if (rc == KC_UNKNOWN) {
		kc_debug("uid %u: %s", (unsigned)uid, e.msg);
		return -1;
	}
	if (rc < 0 || id->uid != uid || uid == 0)
		return 0;
	return id->uid >= u->cfg->min_uid && !(expire > 0 && (long)(time(NULL) / 86400) >= expire);
}

/* The snapshot of the account databases for a command over every user. */
static struct kc_accounts *snapshot(void)
{
	struct kc_err e = { "" };
	struct kc_accounts *a = kc_accounts_snapshot("/etc/nsswitch.conf", &e);

	if (!a && e.msg[0])
		kc_warn("account databases: %s; each user is looked up alone", e.msg);
	return a;
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
static void drop_dead_entries(const struct user_work *u)
{
	size_t n;
	const struct kc_live_entry *e = kc_live_of(u->live, u->n_live, u->uid, &n);

	for (size_t i = 0; i < n; i++)
		if (e[i].dead)
			kc_live_remove(e[i].name);
}

/* The child's work for one user. Returns its exit status. */
static int user_child(const struct user_work *u)
{
	struct kc_identity id;
	int served = load_user(u, u->uid, &id);
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
	if (kc_state_sessions(dir, u->gc, &live, &n_live, &pruned, &err) < 0)
		n_live = 1; /* unreadable: conclude nothing */
	/* The account databases could not answer: while a session of the user's
	 * lives nothing is concluded about their mapping; once none does, their
	 * grants go, which needs no mapping. */
	if (served < 0 && n_live > 0) {
		kc_warn("uid %u: cannot look up its account; left as it is until the next round", (unsigned)u->uid);
		free(live);
		close(dir);
		return 1;
	}
	/* An account deleted with its sessions open, or one the directory cannot
	 * tell: its Secrets are still named after it, by the name its records kept. */
	if (!id.name && kc_state_user_name(dir, gone, sizeof(gone)) == 0)
		user = gone;
	/* The writer before any credential is loaded; only when the file may change. */
	if (id.name && (n_live > 0 || u->cfg->remove_on_logout)) {
		struct kc_user usr = { .name = id.name,
				       .uid = id.uid,
				       .gid = id.gid,
				       .home = id.home,
				       .groups = id.gids,
				       .n_groups = id.n_gids };

		if (kc_writer_spawn(&usr, &w, &err) < 0)
			kc_warn("uid %u: %s", (unsigned)u->uid, err.msg);
	}
	r = (struct kc_reconcile){ .cfg = u->cfg,
				   .id = id.name ? &id : NULL,
				   .uid = u->uid,
				   .user = user,
				   .state_dir = dir,
				   .in_scope = served == 1,
				   .rotate = u->rotate,
				   .honour_down_window = !u->gc,
				   .deadline_ms = u->deadline_ms };
	if (kc_reconcile_run(&r, &err) < 0)
		kc_error("uid %u: %s", (unsigned)u->uid, err.msg);
	for (size_t i = 0; i < r.n_jobs; i++) {
		pending += r.jobs[i].pending;
		if (r.jobs[i].error[0])
			kc_error("uid %u: %s", (unsigned)u->uid, r.jobs[i].error);
	}
	kc_reconcile_digest(&r, want);
	if (w.pid > 0 && (kc_state_get_digest(dir, have) < 0 || strcmp(want, have) != 0))
		write_file(&r, &w, dir);
	if (u->gc)
		report_orphans(u->cfg, dir, u->uid);
	if (u->gc && n_live == 0)
		kc_tokenfile_remove_all(u->uid); /* what is left there belongs to no cluster of the config */
	drop_dead_entries(u);
	kc_reconcile_free(&r);
	kc_writer_finish(&w);
	kc_identity_free(&id);
	free(live);
	close(dir);
	return pending ? 1 : 0;
}

/* ---- children with deadlines ------------------------------------------------------ */

struct child {
	pid_t pid;
	uid_t uid;
	long long deadline_ms;
	bool killed;
};

static int reap(struct child *c, size_t *running)
{
	int status, failed = 0;

	for (size_t i = 0; i < *running;) {
		pid_t r = waitpid(c[i].pid, &status, WNOHANG);
		bool over = kc_now_ms() > c[i].deadline_ms;

		if (r == 0 && over && !c[i].killed) {
			kc_error("uid %u: its work overran its deadline; stopped", (unsigned)c[i].uid);
			kill(c[i].pid, SIGKILL);
			c[i].killed = true;
			c[i].deadline_ms += KILL_GRACE_MS;
		}
		if (r == 0 && !(over && c[i].killed)) {
			i++;
			continue;
		}
		/* Reaped, or killed and still not gone: either way its turn is over. */
		failed += r != c[i].pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		c[i] = c[--*running];
	}
	return failed;
}

/* *started: how many of uids had their turn (the rest are left for the next run). */
static int run_children(struct user_work *work, const uid_t *uids, size_t n, long long deadline_ms, size_t *started)
{
	struct child c[PARALLEL];
	size_t running = 0, next = 0;
	int failed = 0;

	while (next < n || running > 0) {
		while (next < n && running < PARALLEL && kc_now_ms() < deadline_ms) {
			long long mine = kc_now_ms() + KC_USER_DEADLINE_MS;
			pid_t pid;

			work->uid = uids[next++];
			work->deadline_ms = mine < deadline_ms ? mine : deadline_ms;
			fflush(NULL);
			pid = fork();
			if (pid == 0) {
				int rc = user_child(work);

				kc_cut_finish();
				_exit(rc);
			}
			if (pid < 0) {
				kc_error("fork: %s", strerror(errno));
				failed++;
				continue;
			}
			c[running++] = (struct child){ pid, work->uid, work->deadline_ms + 1000, false };
		}
		if (next < n && kc_now_ms() >= deadline_ms) {
			kc_error("%zu users left for the next run: out of time", n - next);
			failed += (int)(n - next);
			if (started)
				*started = next;
			started = NULL;
			next = n;
		}
		failed += reap(c, &running);
		if (running)
			usleep(5000);
	}
	if (started)
		*started = n;
	return failed;
}

/* ---- a fair order: each refresh starts after the user the last one reached -- */

static int by_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts uids and turns them to begin after the cursor the last run left. */
static void fair_order(uid_t *uids, size_t n)
{
	kc_autobuf struct kc_buf saved = { 0 };
	unsigned long cursor = 0;
	size_t first = 0;
	uid_t *turned;
	struct kc_err e;

	if (n < 2)
		return;
	qsort(uids, n, sizeof(*uids), by_uid);
	if (kc_cache_get("refresh", "cursor", 0, 0, &saved, NULL, &e) != 0 || !saved.data ||
	    sscanf(saved.data, "%lu", &cursor) != 1)
		return;
	while (first < n && uids[first] <= cursor)
		first++;
	turned = first < n ? malloc(n * sizeof(*uids)) : NULL;
	if (!turned)
		return;
	memcpy(turned, uids + first, (n - first) * sizeof(*uids));
	memcpy(turned + (n - first), uids, first * sizeof(*uids));
	memcpy(uids, turned, n * sizeof(*uids));
	free(turned);
}

static void save_cursor(const uid_t *uids, size_t started)
{
	char text[24];
	struct kc_err e;

	if (started == 0)
		return;
	snprintf(text, sizeof(text), "%lu", (unsigned long)uids[started - 1]);
	kc_cache_put("refresh", "cursor", text, strlen(text), &e);
}

/* ---- the commands ------------------------------------------------------------------- */

static int load(const char *path, struct kc_config **cfg)
{
	struct kc_err err = { "" };

	*cfg = kc_config_load(path, 0, &err);
	if (!*cfg) {
		kc_error("%s", err.msg);
		return KC_EXIT_USAGE;
	}
	return KC_EXIT_OK;
}

static bool has_dead_session(const struct user_work *work, uid_t uid)
{
	size_t n;
	const struct kc_live_entry *e = kc_live_of(work->live, work->n_live, uid, &n);

	for (size_t i = 0; i < n; i++)
		if (e[i].dead)
			return true;
	return false;
}

/* A user the account databases cannot tell about: due only when none of
 * their sessions lives and a grant of theirs is left to revoke. */
static bool unknown_due(const struct user_work *work, uid_t uid, int dir)
{
	struct kc_session_record *live = NULL;
	size_t n = 0;
	struct kc_err e;
	int rc = kc_state_sessions(dir, false, &live, &n, NULL, &e);

	free(live);
	return rc == 0 && n == 0 && kc_reconcile_due(work->cfg, NULL, false, uid, dir, KC_ROTATE_DUE, NULL);
}

/* The users whose records say there is something to do. A user whose records
 * and mapping are as they were at the last verdict, and whose first rotation
 * has not come, is not read again (lifecycle/verdicts.h), unless the index of
 * open sessions says one of theirs died: no verdict hides that. */
static size_t due_users(const struct user_work *work, const uid_t *uids, size_t n, uid_t *out)
{
	struct kc_verdicts *v = kc_verdicts_load();
	time_t now = time(NULL);
	size_t m = 0, held = 0;

	for (size_t i = 0; i < n; i++) {
		struct kc_identity id;
		struct kc_err e;
		struct stat st;
		char key[65];
		time_t until = 0;
		int served = load_user(work, uids[i], &id);
		int dir = kc_state_open(uids[i], false, &e);
		bool keyed = served >= 0 && dir >= 0 && v && fstat(dir, &st) == 0;

		if (keyed)
			kc_verdict_key(work->cfg, id.name ? &id : NULL, served == 1, &st, key);
		if (dir < 0) {
			/* nothing recorded */
		} else if (served < 0) {
			if (unknown_due(work, uids[i], dir))
				out[m++] = uids[i];
		} else if (keyed && !has_dead_session(work, uids[i]) && kc_verdicts_hold(v, uids[i], key, now)) {
			held++;
		} else if (kc_reconcile_due(work->cfg, id.name ? &id : NULL, served == 1, uids[i], dir, KC_ROTATE_DUE,
					    &until)) {
			out[m++] = uids[i];
		} else {
			struct user_work done = *work;

			done.uid = uids[i];
			drop_dead_entries(&done); /* nothing of the dead sessions' is left to do */
			/* Timestamps move in clock ticks: a directory changed this second
			 * may change again under the same mtime. */
			if (keyed && st.st_mtim.tv_sec < now - 1)
				kc_verdicts_note(v, uids[i], key, now, until);
		}
		if (dir >= 0)
			close(dir);
		kc_identity_free(&id);
	}
	if (v)
		kc_verdicts_save(v);
	kc_verdicts_free(v);
	kc_debug("refresh: %zu users not read again: nothing due by their last verdict", held);
	return m;
}

int kc_cmd_refresh(const char *config, const char *now_user, long deadline_ms)
{
	struct kc_config *cfg = NULL;
	struct user_work work = { .rotate = KC_ROTATE_DUE };
	long long deadline = kc_now_ms() + (deadline_ms > 0 ? deadline_ms : KC_REFRESH_DEADLINE_MS);
	uid_t *uids = NULL, *due = NULL;
	size_t n = 0, m = 0;
	struct kc_err err = { "" };
	int rc;

	if ((rc = load(config, &cfg)) != KC_EXIT_OK)
		return rc;
	kc_cache_put("heartbeat", "refresh", "1", 1, &err);
	work.cfg = cfg;
	if (now_user) {
		struct passwd *pw = getpwnam(now_user);

		if (!pw) {
			kc_error("no such user '%s'", now_user);
			kc_config_free(cfg);
			return KC_EXIT_USAGE;
		}
		work.rotate = KC_ROTATE_NOW;
		rc = run_children(&work, &pw->pw_uid, 1, deadline, NULL) ? KC_EXIT_ERROR : KC_EXIT_OK;
		kc_config_free(cfg);
		return rc;
	}
	if (kc_state_list_uids(&uids, &n, &err) < 0) {
		kc_error("%s", err.msg);
		rc = KC_EXIT_ERROR;
	} else if ((due = calloc(n + 1, sizeof(*due)))) {
		struct kc_accounts *accounts = snapshot();
		struct kc_live_entry *live = NULL;
		size_t started = 0;

		if (kc_live_read(&live, &work.n_live, &err) < 0)
			kc_warn("%s", err.msg);
		work.live = live;
		work.accounts = accounts;
		m = due_users(&work, uids, n, due);
		fair_order(due, m);
		rc = run_children(&work, due, m, deadline, &started) ? KC_EXIT_ERROR : KC_EXIT_OK;
		save_cursor(due, started);
		kc_accounts_free(accounts);
		free(live);
	}
	kc_debug("refresh: %zu users with records, %zu with work due", n, m);
	free(due);
	free(uids);
	kc_config_free(cfg);
	return rc;
}

/* Token directories of uids that have no records at all (a uid reused, a state
 * directory removed by hand): nothing there is anyone's any more. */
static void prune_token_dirs(void)
{
	uid_t *uids = NULL;
	size_t n = 0;
	struct kc_err e;

	if (kc_tokenfile_uids(&uids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int dir = kc_state_open(uids[i], false, &e);

		if (dir == KC_ABSENT)
			kc_tokenfile_remove_all(uids[i]);
		else if (dir >= 0)
			close(dir);
	}
	free(uids);
}

/* Dead index entries of uids that have no records any more. */
static void prune_live(const struct kc_live_entry *live, size_t n)
{
	struct kc_err e;

	for (size_t i = 0; i < n; i++) {
		int dir = live[i].dead ? kc_state_open(live[i].uid, false, &e) : -1;

		if (dir == KC_ABSENT)
			kc_live_remove(live[i].name);
		else if (dir >= 0)
			close(dir);
	}
}

int kc_cmd_gc(const char *config, long deadline_ms)
{
	struct kc_config *cfg = NULL;
	struct user_work work = { .rotate = KC_ROTATE_DUE, .gc = true };
	long long deadline = kc_now_ms() + (deadline_ms > 0 ? deadline_ms : KC_GC_DEADLINE_MS);
	uid_t *uids = NULL;
	size_t n = 0;
	struct kc_err err = { "" };
	int rc;

	if ((rc = load(config, &cfg)) != KC_EXIT_OK)
		return rc;
	work.cfg = cfg;
	if (kc_state_list_uids(&uids, &n, &err) < 0) {
		kc_error("%s", err.msg);
		rc = KC_EXIT_ERROR;
	} else {
		struct kc_accounts *accounts = snapshot();
		struct kc_live_entry *live = NULL;

		if (kc_live_read(&live, &work.n_live, &err) < 0)
			kc_warn("%s", err.msg);
		work.live = live;
		work.accounts = accounts;
		rc = run_children(&work, uids, n, deadline, NULL) ? KC_EXIT_ERROR : KC_EXIT_OK;
		kc_accounts_free(accounts);
		prune_live(live, work.n_live);
		free(live);
	}
	prune_token_dirs();
	free(uids);
	kc_config_free(cfg);
	return rc;
}

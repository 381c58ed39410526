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
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/accounts.h"
#include "common/cache.h"
#include "config/config.h"
#include "common/log.h"
#include "lifecycle/access.h"
#include "lifecycle/cut.h"
#include "lifecycle/live.h"
#include "lifecycle/metrics_publish.h"
#include "lifecycle/reconcile.h"
#include "lifecycle/state.h"
#include "lifecycle/tally.h"
#include "lifecycle/tokenfile.h"
#include "lifecycle/verdicts.h"
#include "lifecycle/timers_user.h"
#include "lifecycle/writer.h"

#define PARALLEL 4
#define KILL_GRACE_MS 500
/* No turn but a run's first starts in its last second: the run's end would
 * cut it mid-request (a TokenRequest answered after it is minted for
 * nothing). The users left have their turn in the next run (refresh's comes
 * first there: its cursor). */
#define LAST_TURN_MS 1000

/* The snapshot of the account databases for a command over every user. */
static struct kc_accounts *snapshot(void)
{
	struct kc_err e = { "" };
	struct kc_accounts *a = kc_accounts_snapshot("/etc/nsswitch.conf", &e);

	if (!a && e.msg[0])
		kc_warn("account databases: %s; each user is looked up alone", e.msg);
	return a;
}

/* What a run over every user reads before it looks at anyone: the locks
 * (with fleet:, one LIST per cluster), the snapshot of the account databases
 * and the index of open sessions, each checked against /proc. Read side by
 * side: with 10,000 sessions open the index takes ~45 ms, the rest ~15 ms
 * and the LISTs' wait, and none needs another. */
struct first_reads {
	const struct kc_config *cfg;
	enum kc_fleet_read fleet;
	struct kc_access *access;
	int access_rc;
	struct kc_err access_err;
	struct kc_accounts *accounts;
	struct kc_live_entry *live;
	size_t n_live;
	int live_rc;
	struct kc_err live_err;
};

static void read_access_accounts(void *ctx)
{
	struct first_reads *r = ctx;

	r->access_rc = kc_access_load(r->access, r->cfg, r->fleet, kc_now_ms() + KC_FLEET_READ_MS, &r->access_err);
	r->accounts = snapshot();
}

static void read_live(void *ctx)
{
	struct first_reads *r = ctx;

	r->live_rc = kc_live_read(&r->live, &r->n_live, &r->live_err);
}

/* Into work (its cfg set) and access; r keeps what is freed after the run. */
static void read_first(struct first_reads *r, struct user_work *work, struct kc_access *access,
		       enum kc_fleet_read fleet)
{
	*r = (struct first_reads){ .cfg = work->cfg, .fleet = fleet, .access = access };
	work->access = access;
	kc_side_by_side(read_live, r, read_access_accounts, r);
	if (r->access_rc < 0)
		kc_error("%s; every user counts as locked in this run", r->access_err.msg);
	if ((work->live_unread = r->live_rc < 0))
		kc_warn("%s: every user is looked at in full this run", r->live_err.msg);
	work->live = r->live;
	work->n_live = r->n_live;
	work->accounts = r->accounts;
}

static void free_first(struct first_reads *r)
{
	kc_accounts_free(r->accounts);
	free(r->live);
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

	if (n > 0)
		kc_cut_collect_begin(deadline_ms); /* one process for the run's second cuts */
	while (next < n || running > 0) {
		while (next < n && running < PARALLEL && kc_now_ms() < deadline_ms - (next ? LAST_TURN_MS : 0)) {
			long long mine = kc_now_ms() + KC_USER_DEADLINE_MS;
			pid_t pid;

			work->uid = uids[next++];
			work->deadline_ms = mine < deadline_ms ? mine : deadline_ms;
			work->turn_cut_short = mine > deadline_ms;
			fflush(NULL);
			pid = fork();
			if (pid == 0) {
				int rc = kc_timers_user_child(work);

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
		if (next < n && kc_now_ms() >= deadline_ms - (next ? LAST_TURN_MS : 0)) {
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
	kc_cut_collect_end();
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
	kc_tally_enable((*cfg)->metrics_dir != NULL);
	return KC_EXIT_OK;
}

/* The earliest end of a live session's certificate (0: none has one). */
static time_t first_cert_end(const struct user_work *work, uid_t uid)
{
	size_t n;
	const struct kc_live_entry *e = kc_live_of(work->live, work->n_live, uid, &n);
	time_t first = 0;

	for (size_t i = 0; i < n; i++)
		if (!e[i].dead && e[i].cert_until && (!first || e[i].cert_until < first))
			first = e[i].cert_until;
	return first;
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

/* The last verdict holds for uid, unless the index of open sessions says one
 * of theirs died, or could not be read. */
static bool verdict_holds(const struct user_work *work, struct kc_verdicts *v, uid_t uid, const char *key, time_t now)
{
	return !work->live_unread && !has_dead_session(work, uid) && kc_verdicts_hold(v, uid, key, now);
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

/* Nothing due for uid: its dead sessions' entries go, and the verdict is
 * noted (key NULL: none can be) to hold until `until` (0: no end). */
static void nothing_due(const struct user_work *work, uid_t uid, struct kc_verdicts *v, const char *key,
			const struct stat *st, time_t until)
{
	struct user_work done = *work;
	time_t now = time(NULL);

	done.uid = uid;
	kc_timers_drop_dead_entries(&done); /* nothing of the dead sessions' is left to do */
	/* Timestamps move in clock ticks: a directory changed this second
	 * may change again under the same mtime. */
	if (key && st->st_mtim.tv_sec < now - 1)
		kc_verdicts_note(v, uid, key, now, until);
}

/* What due_users() learns of one user before deciding anything: the
 * account, the state directory as it stands, the verdict's key. It writes
 * nothing and shares nothing, so the users are looked at on two threads. */
struct look {
	int served; /* kc_timers_load_user() */
	bool recorded; /* the user has a state directory (st) */
	bool keyed;
	struct kc_identity id;
	struct kc_user_access ua;
	struct stat st;
	char key[65];
};

struct looks {
	const struct user_work *work;
	const uid_t *uids;
	struct look *l;
	int root;
	bool want_key;
};

static void look_up(void *ctx, size_t from, size_t to)
{
	const struct looks *a = ctx;

	for (size_t i = from; i < to; i++) {
		struct look *l = &a->l[i];

		l->served = kc_timers_load_user(a->work, a->uids[i], &l->id, &l->ua);
		l->recorded = kc_state_stat(a->root, a->uids[i], &l->st);
		l->keyed = a->want_key && l->served >= 0 && l->recorded;
		if (l->keyed)
			kc_verdict_key(a->work->cfg, l->id.name ? &l->id : NULL, l->served == 1, &l->st, l->key);
	}
}

/* Nothing due for a user read in full: the verdict is noted under the key
 * of the directory as it was read (it may have changed since it was first
 * looked at). */
static void quiet_user(const struct user_work *work, struct kc_verdicts *v, uid_t uid, struct look *l, time_t until)
{
	if (l->keyed)
		kc_verdict_key(work->cfg, l->id.name ? &l->id : NULL, l->served == 1, &l->st, l->key);
	nothing_due(work, uid, v, l->keyed ? l->key : NULL, &l->st, until);
}

/* The users whose records say there is something to do. A user whose records
 * and mapping are as they were at the last verdict, and whose first rotation
 * has not come, is not read again (lifecycle/verdicts.h), unless the index of
 * open sessions says one of theirs died, or could not be read: no verdict
 * hides that. *unsure gets the users left as they are because the account
 * databases could not tell about them (the metrics look at their grant
 * files). */
static size_t due_users(const struct user_work *work, const uid_t *uids, size_t n, uid_t *out, uid_t *unsure,
			size_t *n_unsure)
{
	struct kc_verdicts *v = kc_verdicts_load();
	kc_autoclose int root = kc_state_root();
	struct look *looks = calloc(n + 1, sizeof(*looks));
	time_t now = time(NULL);
	size_t m = 0, held = 0;

	if (!looks) {
		kc_error("out of memory: no user's work is looked at this run");
		kc_verdicts_free(v);
		return 0;
	}
	/* Most of a quiet refresh's CPU with 10,000 sessions: in two halves
	 * side by side, but only from a snapshot of the account databases
	 * (looking users up one by one goes through NSS modules not all of
	 * which may be used from two threads). */
	kc_halves(n, work->accounts ? 512 : SIZE_MAX, look_up, &(struct looks){ work, uids, looks, root, v != NULL });
	for (size_t i = 0; i < n; i++) {
		struct look *l = &looks[i];
		struct kc_identity *id = &l->id;
		struct kc_err e;
		time_t until = 0;
		int dir = -1;
		time_t cert_end = first_cert_end(work, uids[i]);

		/* A user with a certificate session: the key says what the
		 * certificates justify now, and the verdict ends with the first. */
		if (l->recorded && cert_end && id->name && work->access) {
			dir = kc_state_open_stat(uids[i], &l->st, &e);
			/* a key drawn without the certificates says nothing of them */
			l->keyed = l->keyed && dir >= 0;
			if (dir >= 0) {
				kc_user_access_free(id, &l->ua);
				kc_access_apply(work->access, id, dir, NULL, &l->ua);
			}
			if (l->keyed)
				kc_verdict_key(work->cfg, id, l->served == 1, &l->st, l->key);
		}
		if (!l->recorded) {
			/* nothing recorded */
		} else if (l->keyed && verdict_holds(work, v, uids[i], l->key, now)) {
			held++;
		} else if (dir >= 0 || (dir = kc_state_open_stat(uids[i], &l->st, &e)) >= 0) {
			/* Read now (gone since it was looked at: nothing to do). */
			if (l->served < 0)
				/* due, or left as it is (the metrics look at its grants all the same) */
				*(unknown_due(work, uids[i], dir) ? &out[m++] : &unsure[(*n_unsure)++]) = uids[i];
			else if (kc_reconcile_due(work->cfg, id->name ? id : NULL, l->served == 1, uids[i], dir,
						  KC_ROTATE_DUE, &until))
				out[m++] = uids[i];
			else
				quiet_user(work, v, uids[i], l,
					   cert_end && (!until || cert_end < until) ? cert_end : until);
		}
		if (dir >= 0)
			close(dir);
		kc_user_access_free(id, &l->ua);
		kc_identity_free(id);
	}
	free(looks);
	if (v)
		kc_verdicts_save(v);
	kc_verdicts_free(v);
	kc_debug("refresh: %zu users not read again: nothing due by their last verdict", held);
	return m;
}

int kc_timers_user(const char *config, const char *user, bool rotate_now, long deadline_ms)
{
	struct kc_access access = { 0 };
	struct kc_config *cfg = NULL;
	struct user_work work = { .rotate = rotate_now ? KC_ROTATE_NOW : KC_ROTATE_DUE, .access = &access };
	struct passwd *pw;
	struct kc_err err = { "" };
	int rc;

	if ((rc = load(config, &cfg)) != KC_EXIT_OK)
		return rc;
	work.cfg = cfg;
	if (kc_access_load(&access, cfg, KC_FLEET_READ, kc_now_ms() + KC_FLEET_READ_MS, &err) < 0)
		kc_error("%s; every user counts as locked in this run", err.msg);
	if (!(pw = getpwnam(user))) {
		kc_error("no such user '%s'", user);
		rc = KC_EXIT_USAGE;
	} else {
		rc = run_children(&work, &pw->pw_uid, 1,
				  kc_now_ms() + (deadline_ms > 0 ? deadline_ms : KC_USER_DEADLINE_MS), NULL)
			     ? KC_EXIT_ERROR
			     : KC_EXIT_OK;
	}
	kc_access_free(&access);
	kc_config_free(cfg);
	return rc;
}

int kc_cmd_refresh(const char *config, const char *now_user, long deadline_ms)
{
	struct kc_access access = { 0 };
	struct kc_config *cfg = NULL;
	struct user_work work = { .rotate = KC_ROTATE_DUE };
	long long deadline = kc_now_ms() + (deadline_ms > 0 ? deadline_ms : KC_REFRESH_DEADLINE_MS);
	uid_t *uids = NULL, *due = NULL;
	size_t n = 0, m = 0, k = 0;
	struct first_reads r;
	struct kc_err err = { "" };
	int rc;

	if (now_user)
		return kc_timers_user(config, now_user, true, deadline_ms);
	if ((rc = load(config, &cfg)) != KC_EXIT_OK)
		return rc;
	kc_cache_put("heartbeat", "refresh", "1", 1, &err);
	work.cfg = cfg;
	read_first(&r, &work, &access, KC_FLEET_READ);
	if (kc_state_list_uids(&uids, &n, &err) < 0) {
		kc_error("%s", err.msg);
		rc = KC_EXIT_ERROR;
	} else if ((due = calloc(2 * n + 1, sizeof(*due)))) {
		size_t started = 0;

		m = due_users(&work, uids, n, due, due + n, &k);
		fair_order(due, m);
		rc = run_children(&work, due, m, deadline, &started) ? KC_EXIT_ERROR : KC_EXIT_OK;
		save_cursor(due, started);
		memmove(due + m, due + n, k * sizeof(*due));
		kc_metrics_publish(
			&(struct kc_publish){ .cfg = cfg,
					      .job = KC_METRICS_REFRESH,
					      .done = started == m, /* every due user had its turn */
					      .scan = due,
					      .n_scan = m + k,
					      .live = work.live,
					      .n_live = work.n_live,
					      .locked_users = -1 /* issue 25: distinct users in access.locks */ });
	}
	free_first(&r);
	kc_debug("refresh: %zu users with records, %zu with work due", n, m);
	free(due);
	free(uids);
	kc_access_free(&access);
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
	struct kc_access access = { 0 };
	struct kc_config *cfg = NULL;
	struct user_work work = { .rotate = KC_ROTATE_DUE, .gc = true };
	long long deadline = kc_now_ms() + (deadline_ms > 0 ? deadline_ms : KC_GC_DEADLINE_MS);
	uid_t *uids = NULL;
	size_t n = 0;
	struct first_reads r;
	struct kc_err err = { "" };
	int rc;

	if ((rc = load(config, &cfg)) != KC_EXIT_OK)
		return rc;
	work.cfg = cfg;
	/* Before the users are listed: the fleet's locks are repaired whatever
	 * else fails. */
	read_first(&r, &work, &access, KC_FLEET_REPAIR);
	if (kc_state_list_uids(&uids, &n, &err) < 0) {
		kc_error("%s", err.msg);
		rc = KC_EXIT_ERROR;
	} else {
		size_t started = 0;

		rc = run_children(&work, uids, n, deadline, &started) ? KC_EXIT_ERROR : KC_EXIT_OK;
		kc_metrics_publish(
			&(struct kc_publish){ .cfg = cfg,
					      .job = KC_METRICS_GC,
					      .done = started == n,
					      .scan = uids,
					      .n_scan = n,
					      .live = work.live,
					      .n_live = work.n_live,
					      .locked_users = -1 /* issue 25: distinct users in access.locks */ });
		prune_live(work.live, work.n_live);
	}
	free_first(&r);
	prune_token_dirs();
	free(uids);
	kc_access_free(&access);
	kc_config_free(cfg);
	return rc;
}

/* open and close: what the module runs at a login and at its logout. */

#include "lifecycle/login.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle/access.h"
#include "lifecycle/auditlog.h"
#include "lifecycle/logincert.h"
#include "lifecycle/live.h"
#include "common/cache.h"
#include "config/config.h"
#include "common/log.h"
#include "lifecycle/reconcile.h"
#include "lifecycle/state.h"
#include "lifecycle/tally.h"
#include "lifecycle/writer.h"

#define EXIT_MARGIN_MS 300 /* for the answer and the exit, before the module's deadline */
#define WRITER_START_MS 3000
#define WRITER_RESERVE_MS 500
#define HEARTBEAT_STALE 180

static long long deadline_of(const struct kc_session_args *a)
{
	long ms = a->deadline_ms > 0 ? a->deadline_ms : KC_DEFAULT_TIMEOUT_MS;

	return kc_now_ms() + (ms > 2 * EXIT_MARGIN_MS ? ms - EXIT_MARGIN_MS : ms / 2);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs(KC_OUT_MESSAGE, stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static void say_lines(const char *text)
{
	for (const char *p = text; p && *p;) {
		size_t n = strcspn(p, "\n");

		if (n)
			say("%.*s", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

static struct kc_user user_of(const struct kc_identity *id)
{
	return (struct kc_user){ .name = id->name,
				 .uid = id->uid,
				 .gid = id->gid,
				 .home = id->home,
				 .groups = id->gids,
				 .n_groups = id->n_gids };
}

struct login {
	const struct kc_session_args *a;
	struct kc_identity id;
	bool known; /* id is the session's account; else (close) only its uid and name are */
	uid_t uid;
	struct kc_config *cfg;
	struct kc_writer w;
	int dir;
	long long deadline;
	struct kc_access access; /* locks, certificates */
	struct kc_user_access ua;
	struct kc_login_cert cert; /* open: the certificate this login came with */
};

static int start(struct login *l, bool for_open)
{
	struct kc_err err = { "" };
	int rc;

	l->w = (struct kc_writer)KC_WRITER_NONE;
	l->dir = -1;
	l->deadline = deadline_of(l->a);
	if (!kc_session_id_valid(l->a->session)) {
		kc_error("--session must be 1 to %d letters, digits, '-' or '_'", KC_SESSION_ID_MAX);
		return KC_EXIT_USAGE;
	}
	rc = kc_identity_load(l->a->user, &l->id, &err);
	l->known = rc == 0 && (!l->a->uid || l->id.uid == l->a->uid);
	if (rc == 0 && !l->known)
		kc_seterr(&err, "user %s has uid %u now, not %u as at login", l->a->user, (unsigned)l->id.uid,
			  (unsigned)l->a->uid);
	if (!l->known && (for_open || !l->a->uid)) {
		kc_error("%s", err.msg);
		return KC_EXIT_ERROR;
	}
	/* A logout needs no directory: the uid, the name and the grants are on disk. */
	if (!l->known) {
		kc_warn("%s; the logout revokes from the records of uid %u", err.msg, (unsigned)l->a->uid);
		kc_identity_free(&l->id);
	}
	l->uid = l->known ? l->id.uid : l->a->uid;
	if (l->uid == 0)
		return KC_EXIT_IGNORE;
	/* The writer is forked before any secret is loaded (the config holds
	 * none); it drops to the user while the config loads (writer_ready()). */
	if (for_open) {
		struct kc_user u = user_of(&l->id);

		if (kc_writer_spawn(&u, &l->w, &err) < 0) {
			kc_error("user %s: %s", l->id.name, err.msg);
			return KC_EXIT_ERROR;
		}
	}
	kc_debug("user %s: identity%s", l->a->user, for_open ? ", writer forked" : "");
	l->cfg = kc_config_load(l->a->config, 0, &err);
	kc_debug("config loaded");
	if (!l->cfg) {
		kc_error("%s", err.msg);
		return KC_EXIT_USAGE;
	}
	kc_tally_enable(l->cfg->metrics_dir != NULL);
	if (kc_access_load(&l->access, l->cfg, KC_FLEET_NONE, 0, &err) < 0)
		kc_error("%s; every cluster counts as locked for now", err.msg);
	if (l->known)
		kc_access_apply(&l->access, &l->id, -1, NULL, &l->ua);
	return l->uid < l->cfg->min_uid ? KC_EXIT_IGNORE : KC_EXIT_OK;
}

static void end(struct login *l)
{
	fflush(stdout);
	kc_writer_finish(&l->w);
	if (l->dir >= 0)
		close(l->dir);
	kc_config_free(l->cfg);
	kc_user_access_free(&l->id, &l->ua);
	kc_login_cert_free(&l->cert);
	kc_access_free(&l->access);
	kc_identity_free(&l->id);
}

/* The jobs leave the writer a moment of the budget for the user's file. */
static long long jobs_deadline(const struct login *l)
{
	long long left = l->deadline - kc_now_ms();

	return left > 4 * WRITER_RESERVE_MS ? l->deadline - WRITER_RESERVE_MS : l->deadline;
}

/* What a command asks of the jobs. */
enum work {
	LOGIN, /* mint and write */
	OPEN_LEFTOVERS, /* open revokes what it will not serve: a cluster that just failed is not asked again */
	LOGOUT, /* never skips a cluster: its DELETE is tried, its token file removed, its connections cut */
};

static void reconcile(struct login *l, struct kc_reconcile *r, enum work work)
{
	struct kc_err err = { "" };

	*r = (struct kc_reconcile){ .cfg = l->cfg,
				    .id = l->known ? &l->id : NULL,
				    .uid = l->uid,
				    .user = l->a->user,
				    .state_dir = l->dir,
				    .in_scope = l->known,
				    .rotate = KC_ROTATE_DUE,
				    .honour_down_window = work != LOGOUT,
				    .is_login = work == LOGIN,
				    .deadline_ms = jobs_deadline(l) };
	if (kc_reconcile_run(r, &err) < 0)
		kc_error("user %s: %s", l->a->user, err.msg);
}

/* This session's record and its entry in the index go; the logout is said. */
static void drop_session(const struct login *l)
{
	struct kc_session_record ours;

	if (kc_state_get_session(l->dir, l->a->session, &ours) == 0)
		kc_live_drop(l->uid, &ours);
	kc_state_drop_session(l->dir, l->a->session);
	kc_audit_logout(l->a->user, l->uid, l->a->session);
}

/* No writer (the drop failed, or the user stopped it): nothing is sent at all.
 * Waited for only now: it dropped to the user while the config loaded. */
static int writer_ready(struct login *l)
{
	struct kc_err err = { "" };
	long long by = kc_now_ms() + WRITER_START_MS;

	if (kc_writer_ready(&l->w, by < l->deadline ? by : l->deadline, &err) == 0)
		return 0;
	kc_error("user %s: %s", l->id.name, err.msg);
	return -1;
}

/* ---- open ------------------------------------------------------------------------ */

static void say_cluster(const struct login *l, const struct kc_job *j)
{
	const struct kc_target *t = j->target;
	char life[32], want[32];

	if (j->fleet_locked) {
		struct kc_lock k = { .until = j->fleet_until };
		char until[96];

		kc_lock_until_text(&k, until, sizeof(until));
		kc_warn("user %s: cluster %s: locked by an administrator for the fleet (%s)", l->id.name, j->cl->name,
			until);
		say("cluster %s: your access is locked by an administrator %s; ask them (pam-kubeconfig unlock "
		    "--fleet)",
		    j->cl->name, until);
		return;
	}
	if (!j->wanted)
		return;
	if (j->cl->insecure_skip_tls_verify)
		say("cluster %s: TLS verification is switched off for it (insecure_skip_tls_verify): whoever is on the "
		    "network path can pose as it",
		    j->cl->name);
	if (!j->written) {
		if (j->error[0])
			kc_error("user %s: %s", l->id.name, j->error);
		say("cluster %s is unavailable (%s); its context will not work until it is back", j->cl->name,
		    j->skipped ? "it failed moments ago" : "see the system log");
		return;
	}
	if (j->minted && j->shortened) {
		kc_format_duration(j->lifetime, life, sizeof(life));
		kc_format_duration(l->cfg->ttl, want, sizeof(want));
		kc_warn("user %s: cluster %s shortened the token lifetime to %s (asked %s)", l->id.name, j->cl->name,
			life, want);
		say("kubectl: context %s as %s/%s; the cluster limits tokens to %s (not %s): it renews itself while "
		    "you are logged in",
		    j->ep.context ? j->ep.context : j->cl->context, t->sa_namespace, t->sa_name, life, want);
		return;
	}
	say("kubectl: context %s as %s/%s (its token renews itself while you are logged in)",
	    j->ep.context ? j->ep.context : j->cl->context, t->sa_namespace, t->sa_name);
}

static void write_kubeconfig(struct login *l, const struct kc_reconcile *r)
{
	struct kc_writer_result res;
	struct kc_err err = { "" };
	char digest[65];

	kc_reconcile_digest(r, digest);
	if (kc_reconcile_write(r, &l->w, false, l->deadline, &res, &err) < 0) {
		kc_error("user %s: %s", l->id.name, err.msg);
		say("your kubeconfig could not be written: %s", err.msg);
	} else if (res.status != KC_WRITE_OK) {
		kc_error("user %s: ~/%s: %s", l->id.name, l->cfg->kubeconfig_path, res.message);
		say("~/%s was left as it was: %s", l->cfg->kubeconfig_path, res.message);
	} else {
		kc_state_put_digest(l->dir, digest);
	}
	say_lines(res.notes.data);
	kc_buf_free(&res.notes);
}

static void warn_stale_heartbeat(void)
{
	time_t at = kc_cache_stored("heartbeat", "refresh");

	if (!at || time(NULL) - at > HEARTBEAT_STALE)
		kc_warn("the refresh timer has not run for %s: tokens are not rotated and die after token.ttl; "
			"enable pam-kubeconfig-refresh.timer",
			at ? "over 3 minutes" : "ever");
}

static int open_session(struct login *l)
{
	struct kc_session_record rec = { 0 };
	struct kc_err err = { "" };
	const struct kc_session_args *a = l->a;

	l->dir = kc_state_open(l->id.uid, true, &err);
	if (l->dir < 0) {
		kc_error("%s", err.msg);
		return -1;
	}
	kc_state_note_user(l->dir, l->id.name);
	snprintf(rec.id, sizeof(rec.id), "%s", a->session);
	rec.pid = a->pid > 0 ? a->pid : getppid();
	rec.pid_start = kc_proc_start_time(rec.pid);
	kc_boot_id(rec.boot_id);
	rec.opened = time(NULL);
	snprintf(rec.rhost, sizeof(rec.rhost), "%s", a->rhost ? a->rhost : "");
	snprintf(rec.service, sizeof(rec.service), "%s", a->service ? a->service : "");
	snprintf(rec.tty, sizeof(rec.tty), "%s", a->tty ? a->tty : "");
	rec.cert = l->cert.rec;
	/* The certificate before the record that names it: refresh reads it from there. */
	if ((l->cert.cert &&
	     kc_state_put_cert(l->dir, a->session, l->cert.cert->blob, l->cert.cert->blob_len, &err) < 0) ||
	    kc_state_put_session(l->dir, &rec, &err) < 0) {
		kc_error("%s", err.msg);
		return -1;
	}
	kc_live_add(l->uid, &rec);
	kc_audit_login(l->id.name, l->id.uid, &rec);
	return 0;
}

/* How many clusters the mapping gives the user; -1 when a rule matched but
 * gave no valid name (the user is told, and the login is an error). */
static int mapped_anywhere(const struct login *l)
{
	struct kc_target *t = calloc(l->cfg->n_clusters + 1, sizeof(*t));
	int n, bad = 0;

	if (!t)
		return 1;
	n = (int)kc_map_user(l->cfg, &l->id, t);
	for (size_t i = 0; i < l->cfg->n_clusters; i++) {
		const struct kc_lock *k =
			t[i].locked ? kc_locks_holding(&l->access.locks, l->id.name, t[i].cluster->name) : NULL;
		char until[80] = "until it can be read";

		if (!t[i].locked)
			continue;
		if (k)
			kc_lock_until_text(k, until, sizeof(until));
		kc_warn("user %s: cluster %s: locked by an administrator (%s)", l->id.name, t[i].cluster->name, until);
		say("cluster %s: your access is locked by an administrator %s; ask them (pam-kubeconfig unlock)",
		    t[i].cluster->name, until);
	}
	for (size_t i = 0; i < l->cfg->n_clusters; i++)
		if (t[i].error[0]) {
			kc_error("%s", t[i].error);
			say("cluster %s: your user name does not map to a valid ServiceAccount name; ask the admin",
			    t[i].cluster->name);
			bad++;
		}
	free(t);
	return n == 0 && bad ? -1 : n;
}

/* Not mapped (any more): no session is recorded, but what an earlier mapping
 * left for this user goes now. */
static void revoke_unmapped(struct login *l)
{
	struct kc_reconcile r;
	struct kc_err err;

	l->dir = kc_state_open(l->id.uid, false, &err);
	if (l->dir < 0)
		return;
	reconcile(l, &r, OPEN_LEFTOVERS);
	kc_reconcile_free(&r);
}

/* What the locks and certificates allow the user, evaluated again (with the
 * live sessions' certificates, this login's and the locks as they are now). */
static void reapply_access(struct login *l)
{
	struct kc_err err;
	int dir = kc_state_open(l->id.uid, false, &err);

	kc_user_access_free(&l->id, &l->ua);
	kc_access_apply(&l->access, &l->id, dir >= 0 ? dir : -1, l->cert.cert, &l->ua);
	if (dir >= 0)
		close(dir);
}

/* The certificates that count for this login: its own (when the module
 * handed SSH_AUTH_INFO_0 over) and those of the user's other live sessions. */
static void see_certificates(struct login *l)
{
	if (!l->cfg->ssh_ca_keys)
		return;
	if (l->a->auth_info)
		kc_login_cert_read(&l->access, l->id.name, l->a->service, l->deadline, &l->cert);
	reapply_access(l);
}

/* The fleet's locks this login read by name hold for the rest of the command:
 * the pass that follows for the user's other open sessions (is_login false,
 * so it reads no lock itself) must not mint for them either. */
static void keep_fleet_locks(struct login *l, const struct kc_reconcile *r)
{
	bool any = false;

	for (size_t i = 0; i < r->n_jobs; i++) {
		struct kc_lock k = { .until = r->jobs[i].fleet_until, .fleet = true };

		if (!r->jobs[i].fleet_locked)
			continue;
		snprintf(k.user, sizeof(k.user), "%s", l->id.name);
		snprintf(k.cluster, sizeof(k.cluster), "%s", r->jobs[i].cl->name);
		any |= kc_locks_add(&l->access.locks, &k) == 0;
	}
	if (!any)
		return;
	reapply_access(l);
}

int kc_cmd_open(const struct kc_session_args *a)
{
	struct login l = { .a = a };
	struct kc_reconcile r = { 0 };
	int rc = start(&l, true);

	if (rc != KC_EXIT_OK)
		goto out;
	see_certificates(&l);
	switch (mapped_anywhere(&l)) {
	case -1: rc = KC_EXIT_ERROR; goto out;
	case 0:
		revoke_unmapped(&l);
		rc = KC_EXIT_IGNORE;
		goto out;
	default: break;
	}
	rc = KC_EXIT_ERROR;
	if (writer_ready(&l) < 0 || open_session(&l) < 0)
		goto out;
	kc_debug("session recorded");
	reconcile(&l, &r, LOGIN);
	kc_debug("jobs done");
	keep_fleet_locks(&l, &r);
	for (size_t i = 0; i < r.n_jobs; i++)
		say_cluster(&l, &r.jobs[i]);
	if (kc_reconcile_written(&r) == 0) {
		/* Nothing to show for it: the session leaves, and the last one out
		 * revokes. Locked out by the fleet everywhere it maps is no error. */
		size_t locked = 0, mapped = 0;

		for (size_t i = 0; i < r.n_jobs; i++) {
			locked += r.jobs[i].fleet_locked;
			mapped += r.jobs[i].wanted || r.jobs[i].fleet_locked;
		}
		if (locked && locked == mapped)
			rc = KC_EXIT_IGNORE;
		drop_session(&l);
		kc_reconcile_free(&r);
		reconcile(&l, &r, OPEN_LEFTOVERS);
		goto out;
	}
	write_kubeconfig(&l, &r);
	kc_writer_hangup(&l.w); /* it exits while we finish */
	kc_debug("kubeconfig written");
	if (l.cfg->set_env)
		printf(KC_OUT_KUBECONFIG "%s%s%s:%s%s.kube/config\n", l.id.home,
		       l.id.home[strlen(l.id.home) - 1] == '/' ? "" : "/", l.cfg->kubeconfig_path, l.id.home,
		       l.id.home[strlen(l.id.home) - 1] == '/' ? "" : "/");
	warn_stale_heartbeat();
	say("pam-kubeconfig status shows what you hold and when it ends");
	rc = KC_EXIT_OK;
out:
	kc_tally_login(kc_tally_result_of(rc));
	kc_reconcile_free(&r);
	end(&l);
	return rc;
}

/* ---- close ------------------------------------------------------------------------ */

static void remove_ours(struct login *l)
{
	struct kc_writer_result res = { 0 };
	struct kc_err err = { "" };

	if (l->w.pid <= 0)
		return;
	if (kc_writer_merge(&l->w, l->cfg->kubeconfig_path, ".kube/config", true, NULL, 0, l->deadline, &res, &err) < 0)
		kc_error("user %s: %s", l->id.name, err.msg);
	else if (res.status != KC_WRITE_OK)
		kc_warn("user %s: ~/%s: %s", l->id.name, l->cfg->kubeconfig_path, res.message);
	kc_buf_free(&res.notes);
}

/* Without the account (the directory down, or the account deleted), the
 * records must be this user's: the name they keep says. 1 they are, 0 the uid
 * is another account's now and was this one's (its logout drops its record
 * alone: the new owner's jobs revoke what the former one left), -1 neither. */
static int records_are_theirs(const struct login *l)
{
	char name[256];

	if (l->known || kc_state_user_name(l->dir, name, sizeof(name)) != 0 || strcmp(name, l->a->user) == 0)
		return 1;
	if (kc_state_was_user(l->dir, l->a->user))
		return 0;
	kc_error("user %s: the records of uid %u are %s's; nothing revoked", l->a->user, (unsigned)l->uid, name);
	return -1;
}

int kc_cmd_close(const struct kc_session_args *a)
{
	struct login l = { .a = a };
	struct kc_reconcile r = { 0 };
	struct kc_session_record *live = NULL;
	size_t n_live = 0, pending = 0;
	struct kc_err err = { "" };
	int rc = start(&l, false);

	if (rc != KC_EXIT_OK)
		goto out;
	l.dir = kc_state_open(l.uid, false, &err);
	if (l.dir == KC_ABSENT)
		goto out; /* nothing was ever recorded */
	rc = KC_EXIT_ERROR;
	if (l.dir < 0) {
		kc_error("%s", err.msg);
		goto out;
	}
	switch (records_are_theirs(&l)) {
	case -1: goto out;
	case 0:
		drop_session(&l);
		rc = KC_EXIT_OK;
		goto out;
	default: break;
	}
	/* Writer first (before the jobs load credentials), only if it will be needed. */
	if (l.cfg->remove_on_logout && l.known) {
		struct kc_user u = user_of(&l.id);

		if (kc_writer_spawn(&u, &l.w, &err) < 0)
			kc_error("user %s: %s", a->user, err.msg);
	}
	drop_session(&l);
	if (kc_state_sessions(l.dir, false, &live, &n_live, NULL, &err) < 0)
		n_live = 1; /* unreadable: conclude nothing */
	if (l.known && l.cfg->ssh_ca_keys) { /* what the sessions left open can still justify */
		kc_user_access_free(&l.id, &l.ua);
		kc_access_apply(&l.access, &l.id, l.dir, NULL, &l.ua);
	}
	/* Revocation before the home is touched: a stopped writer cannot hold it up.
	 * Without the account, only the last logout acts: it needs no mapping. */
	if (l.known || n_live == 0)
		reconcile(&l, &r, LOGOUT);
	for (size_t i = 0; i < r.n_jobs; i++)
		pending += r.jobs[i].pending;
	if (n_live == 0 && l.cfg->remove_on_logout)
		remove_ours(&l);
	free(live);
	kc_debug("user %s: session %s closed; %zu of theirs still open, %zu revocations pending", a->user, a->session,
		 n_live, pending);
	rc = pending ? KC_EXIT_ERROR : KC_EXIT_OK;
out:
	kc_tally_logout(kc_tally_result_of(rc));
	kc_reconcile_free(&r);
	end(&l);
	return rc;
}

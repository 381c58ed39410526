/* status.json written by root (see lifecycle/status.h and, for the format,
 * asuser/status_file.h). */
#include "lifecycle/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>

#include "common/fileio.h"
#include "lifecycle/plan.h"
#include "lifecycle/state.h"
#include "lifecycle/tokenfile.h"

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static const struct kc_job *job_of(const struct kc_status_input *in, const struct kc_cluster *cl)
{
	for (size_t i = 0; in->jobs && i < in->n_jobs; i++)
		if (in->jobs[i].cl == cl)
			return &in->jobs[i];
	return NULL;
}

/* The cluster's grant files: the pending revocations (and the oldest's
 * since) into c; the current grant holding a token into *cur. */
static void read_grants(const struct kc_status_input *in, const struct kc_cluster *cl, struct kc_status_cluster *c,
			struct kc_grant *cur)
{
	struct kc_grant *g = NULL;
	size_t n = 0;
	struct kc_err e;
	bool found = false;

	if (kc_state_grants(in->state_dir, cl->name, NULL, &g, &n, &e) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		if (g[i].state == KC_GRANT_REVOKE) {
			c->pending_revocations++;
			if (g[i].since && (!c->since || g[i].since < c->since))
				c->since = g[i].since;
		} else if (g[i].sa_name[0] && !found) {
			*cur = g[i];
			found = true;
		}
	}
	free(g);
}

static void current(const struct kc_status_input *in, const struct kc_grant *cur, struct kc_status_cluster *c)
{
	c->state = KC_STATUS_CURRENT;
	c->since = 0;
	copy(c->sa_namespace, sizeof(c->sa_namespace), cur->sa_namespace);
	copy(c->sa_name, sizeof(c->sa_name), cur->sa_name);
	copy(c->jti, sizeof(c->jti), cur->jti);
	c->minted = cur->minted;
	c->expires = cur->lifetime > 0 ? cur->minted + cur->lifetime : 0;
	c->next_rotation = cur->lifetime > 0 ? kc_plan_fresh_until(cur, in->cfg->refresh_before) : 0;
}

/* Mapped, with a live session, and no token now: the cluster failed. */
static void unavailable(const struct kc_job *j, struct kc_status_cluster *c, time_t now)
{
	c->state = KC_STATUS_UNAVAILABLE;
	c->since = now;
	copy(c->sa_namespace, sizeof(c->sa_namespace), j->target ? j->target->sa_namespace : NULL);
	copy(c->sa_name, sizeof(c->sa_name), j->target ? j->target->sa_name : NULL);
	copy(c->reason, sizeof(c->reason),
	     j->skipped ? "the cluster failed moments ago; the next login or refresh tries again"
			: "the last attempt failed (the system log says why); the next refresh tries again");
}

/* What one cluster's grant files, token file and job say; false when there
 * is nothing to say about it. */
static bool cluster_status(const struct kc_status_input *in, const struct kc_cluster *cl, struct kc_status_cluster *c,
			   size_t n_sessions, time_t now)
{
	const struct kc_job *j = job_of(in, cl);
	struct kc_grant cur = { .sa_name = "" };

	memset(c, 0, sizeof(*c));
	copy(c->cluster, sizeof(c->cluster), cl->name);
	copy(c->context, sizeof(c->context), j && j->ep.context ? j->ep.context : cl->context ? cl->context : cl->name);
	copy(c->server, sizeof(c->server), j && j->ep.server ? j->ep.server : cl->server);
	kc_tokenfile_path(in->uid, cl->name, c->token_file, sizeof(c->token_file));
	read_grants(in, cl, c, &cur);
	if (cur.sa_name[0] && kc_tokenfile_exists(in->uid, cl->name)) {
		current(in, &cur, c);
	} else if (j && j->wanted) {
		unavailable(j, c, now);
	} else if (c->pending_revocations) {
		c->state = KC_STATUS_REVOKING;
		copy(c->reason, sizeof(c->reason),
		     "revoked on this host; the API server has not confirmed it yet (gc retries it)");
	} else if (j && j->revoked) {
		c->state = KC_STATUS_REVOKED;
		c->since = now;
		copy(c->reason, sizeof(c->reason),
		     n_sessions ? "you are no longer mapped to it here" : "no session of yours is left on this host");
	} else {
		return false;
	}
	return true;
}

/* Issue 25 fills these: an administrator's lock on the user (s->lock) or on
 * one cluster (c->lock; a standing lock makes the state KC_STATUS_LOCKED),
 * and the SSH certificate that justified a current grant (c->certificate). */
static void annotate(const struct kc_status_input *in, struct kc_status *s)
{
	(void)in;
	(void)s;
}

int kc_status_build(const struct kc_status_input *in, struct kc_status *out, struct kc_err *err)
{
	const struct kc_config *cfg = in->cfg;
	struct kc_session_record *live = NULL;
	size_t n_live = 0;
	time_t now = time(NULL);

	memset(out, 0, sizeof(*out));
	out->version = KC_STATUS_VERSION;
	out->uid = in->uid;
	out->written = now;
	copy(out->user, sizeof(out->user), in->user);
	if (gethostname(out->host, sizeof(out->host) - 1) < 0)
		out->host[0] = '\0';
	snprintf(out->kubeconfig, sizeof(out->kubeconfig), "~/%s", cfg->kubeconfig_path);
	if (kc_state_sessions(in->state_dir, false, &live, &n_live, NULL, err) < 0)
		n_live = 0;
	if (n_live > KC_STATUS_SESSIONS_MAX)
		n_live = KC_STATUS_SESSIONS_MAX;
	out->sessions = calloc(n_live + 1, sizeof(*out->sessions));
	out->clusters = calloc(cfg->n_clusters + 1, sizeof(*out->clusters));
	if (!out->sessions || !out->clusters) {
		free(live);
		kc_status_free(out);
		return kc_seterr(err, "out of memory"), -1;
	}
	for (size_t i = 0; i < cfg->n_clusters && out->n_clusters < KC_STATUS_CLUSTERS_MAX; i++)
		out->n_clusters += cluster_status(in, &cfg->clusters[i], &out->clusters[out->n_clusters], n_live, now);
	for (size_t i = 0; i < n_live; i++) {
		struct kc_status_session *s = &out->sessions[out->n_sessions++];

		copy(s->id, sizeof(s->id), live[i].id);
		copy(s->rhost, sizeof(s->rhost), live[i].rhost);
		copy(s->tty, sizeof(s->tty), live[i].tty);
		s->opened = live[i].opened;
	}
	free(live);
	annotate(in, out);
	return 0;
}

/* ---- JSON ---------------------------------------------------------------------- */

/* Sets key to s unless it is empty; bytes of invalid UTF-8 become '?'. */
static int put_text(json_t *o, const char *key, const char *s)
{
	char clean[2048];
	json_t *v;

	if (!s || !*s)
		return 0;
	v = json_string(s);
	if (!v) {
		copy(clean, sizeof(clean), s);
		for (char *p = clean; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		v = json_string(clean);
	}
	return json_object_set_new(o, key, v);
}

static int put_time(json_t *o, const char *key, time_t t)
{
	char buf[32];

	if (!t)
		return 0;
	kc_format_time(t, buf, sizeof(buf));
	return json_object_set_new(o, key, json_string(buf));
}

static json_t *lock_json(const struct kc_status_lock *l)
{
	json_t *o = json_object();

	if (!o || put_time(o, "since", l->since) || put_time(o, "until", l->until) || put_text(o, "by", l->by) ||
	    put_text(o, "reason", l->reason)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *certificate_json(const struct kc_status_certificate *c)
{
	json_t *o = json_object(), *p = json_array();
	int rc = !o || !p;

	for (size_t i = 0; !rc && i < c->n_principals; i++)
		rc |= json_array_append_new(p, json_string(c->principals[i]));
	if (!rc)
		rc |= put_text(o, "key_id", c->key_id) | put_text(o, "serial", c->serial) |
		      put_time(o, "valid_before", c->valid_before) | json_object_set(o, "principals", p);
	json_decref(p);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *cluster_json(const struct kc_status_cluster *c)
{
	json_t *o = json_object();
	int rc = !o;

	if (rc)
		return NULL;
	rc |= put_text(o, "cluster", c->cluster);
	rc |= put_text(o, "context", c->context);
	rc |= put_text(o, "server", c->server);
	rc |= put_text(o, "state", kc_status_state_name(c->state));
	rc |= put_text(o, "namespace", c->sa_namespace);
	rc |= put_text(o, "serviceaccount", c->sa_name);
	rc |= put_text(o, "token_file", c->token_file);
	rc |= put_text(o, "jti", c->jti);
	rc |= put_time(o, "minted", c->minted);
	rc |= put_time(o, "expires", c->expires);
	rc |= put_time(o, "next_rotation", c->next_rotation);
	rc |= put_time(o, "since", c->since);
	rc |= put_text(o, "reason", c->reason);
	rc |= json_object_set_new(o, "pending_revocations", json_integer(c->pending_revocations));
	if (c->certificate.present)
		rc |= json_object_set_new(o, "certificate", certificate_json(&c->certificate));
	if (c->lock.present)
		rc |= json_object_set_new(o, "lock", lock_json(&c->lock));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int dump_to_buf(const char *data, size_t len, void *arg)
{
	return kc_buf_append(arg, data, len);
}

int kc_status_format(const struct kc_status *s, struct kc_buf *out, struct kc_err *err)
{
	json_t *o = json_object(), *sessions = json_array(), *clusters = json_array();
	int rc = !o || !sessions || !clusters;

	for (size_t i = 0; !rc && i < s->n_sessions; i++) {
		const struct kc_status_session *x = &s->sessions[i];
		json_t *one = json_object();

		rc |= !one || put_text(one, "id", x->id) || put_text(one, "rhost", x->rhost) ||
		      put_text(one, "tty", x->tty) || put_time(one, "opened", x->opened) ||
		      json_array_append(sessions, one);
		json_decref(one);
	}
	for (size_t i = 0; !rc && i < s->n_clusters; i++)
		rc |= json_array_append_new(clusters, cluster_json(&s->clusters[i]));
	if (!rc) {
		rc |= json_object_set_new(o, "version", json_integer(s->version));
		rc |= put_text(o, "user", s->user);
		rc |= json_object_set_new(o, "uid", json_integer((json_int_t)s->uid));
		rc |= put_text(o, "host", s->host);
		rc |= put_time(o, "written", s->written);
		rc |= put_text(o, "kubeconfig", s->kubeconfig);
		rc |= json_object_set(o, "sessions", sessions);
		rc |= json_object_set(o, "clusters", clusters);
		if (s->lock.present)
			rc |= json_object_set_new(o, "lock", lock_json(&s->lock));
	}
	/* Spaces after ':' and ',': the user side reads it as YAML's flow style. */
	if (!rc && (json_dump_callback(o, dump_to_buf, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0 ||
		    kc_buf_puts(out, "\n") < 0))
		rc = 1;
	json_decref(sessions);
	json_decref(clusters);
	json_decref(o);
	if (rc)
		return kc_seterr(err, "status: out of memory"), -1;
	return 0;
}

/* ---- the write ------------------------------------------------------------------ */

/* The user's status lock: only root's helpers take it, each for one read of
 * the records and one write. */
static int lock_status(int dir, long long deadline_ms, struct kc_err *err)
{
	int fd = openat(dir, KC_STATUS_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return kc_seterr(err, "cannot open the status lock: %s", strerror(errno)), -1;
	if (kc_flock_until(fd, LOCK_EX, deadline_ms) < 0) {
		kc_seterr(err, "the status lock is held by another helper; the status file is not rewritten");
		close(fd);
		return -1;
	}
	return fd;
}

int kc_status_write(const struct kc_status_input *in, struct kc_err *err)
{
	struct kc_status s;
	kc_autobuf struct kc_buf text = { 0 };
	kc_autoclose int lock = -1;
	int rc = -1;

	if (!in->user || in->uid == 0)
		return 0;
	lock = lock_status(in->state_dir, in->deadline_ms, err);
	if (lock < 0)
		return -1;
	if (kc_status_build(in, &s, err) < 0)
		return -1;
	/* Nothing to say: no grant, no session, and nothing revoked just now. */
	if (s.n_clusters == 0 && s.n_sessions == 0 && !s.lock.present) {
		kc_tokenfile_unlink(in->uid, KC_STATUS_FILE);
		rc = 0;
	} else if (kc_status_format(&s, &text, err) == 0) {
		rc = kc_tokenfile_put(in->uid, in->gid, KC_STATUS_FILE, text.data, text.len, err);
	}
	kc_status_free(&s);
	return rc;
}

/* The user's session records and grant files (see lifecycle/state.h). */
#include "lifecycle/state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/json_alloc.h"

#define RECORD_MAX (64u << 10)

/* What each file's loss would cost, and so what it is synced for:
 * - a grant file names a Secret of ours: one lost after a crash is a Secret
 *   nobody revokes (I1). Its bytes are synced as written; the caller syncs the
 *   directory once for all it wrote (kc_state_sync()) before the requests the
 *   files cover, and once after its commit;
 * - a session record and the kubeconfig digest: a crash of the machine ends
 *   every session, and a lost digest costs one rewrite of the user's file:
 *   not synced at all (a process crash loses nothing written). */
static const struct kc_write_opts grant_opts = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_FILE };
static const struct kc_write_opts record_opts = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };

bool kc_session_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > KC_SESSION_ID_MAX)
		return false;
	for (; *id; id++)
		if (!isalnum((unsigned char)*id) && *id != '-' && *id != '_')
			return false;
	return true;
}

bool kc_process_alive(pid_t pid, unsigned long long start)
{
	return pid > 0 && start != 0 && kc_proc_start_time(pid) == start;
}

int kc_state_open(uid_t uid, bool create, struct kc_err *err)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/%u", KC_STATE_DIR, (unsigned)uid);
	if (create) {
		fd = kc_open_state_dir(KC_STATE_DIR, err);
		if (fd < 0)
			return -1;
		close(fd);
		return kc_open_state_dir(path, err);
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return KC_ABSENT;
	if (fd < 0)
		return kc_seterr(err, "cannot open %s: %s", path, strerror(errno)), -1;
	return fd;
}

int kc_state_open_stat(uid_t uid, struct stat *st, struct kc_err *err)
{
	int fd = kc_state_open(uid, false, err);

	if (fd >= 0 && fstat(fd, st) != 0) {
		kc_seterr(err, "cannot stat the state of uid %u: %s", (unsigned)uid, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- files as JSON --------------------------------------------------------- */

static int write_json(int dir, const char *name, json_t *j, const struct kc_write_opts *o, struct kc_err *err)
{
	char *text;
	int rc;

	if (!j)
		return kc_seterr(err, "out of memory"), -1;
	text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return kc_seterr(err, "out of memory"), -1;
	rc = kc_write_at(dir, name, text, strlen(text), o, err);
	kc_json_free(text);
	return rc == 0 ? 0 : -1;
}

/* NULL when missing or unreadable; *bad tells the two apart. */
static json_t *read_json(int dir, const char *name, bool *bad)
{
	kc_autobuf struct kc_buf data = { 0 };
	struct stat st;
	struct kc_err e;
	json_t *j = NULL;
	int rc = kc_read_at(dir, name, RECORD_MAX, &data, &st, &e);

	*bad = rc < 0;
	if (rc == 0) {
		j = json_loadb(data.data ? data.data : "", data.len, JSON_REJECT_DUPLICATES, NULL);
		*bad = !json_is_object(j) || st.st_uid != 0;
	}
	if (*bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* Keeps an unreadable file for a human to look at, out of everyone's way. */
static void quarantine(int dir, const char *name)
{
	char to[300];

	snprintf(to, sizeof(to), "quarantine-%s.%lld", name, (long long)time(NULL));
	if (renameat(dir, name, dir, to) < 0)
		unlinkat(dir, name, 0);
}

/* ---- session records ---------------------------------------------------------- */

static json_t *cert_json(const struct kc_session_cert *c)
{
	json_t *p = json_array();
	char serial[32];

	snprintf(serial, sizeof(serial), "%llu", c->serial);
	for (size_t i = 0; p && i < c->n_principals; i++)
		json_array_append_new(p, json_string(c->principals[i]));
	return json_pack("{s:s, s:s, s:I, s:s, s:o}", "key_id", c->key_id, "serial", serial, "valid_before",
			 (json_int_t)c->valid_before, "ca", c->ca, "principals", p);
}

int kc_state_put_session(int dir, const struct kc_session_record *r, struct kc_err *err)
{
	char name[128], start[32];
	json_t *j;

	snprintf(start, sizeof(start), "%llu", r->pid_start);
	snprintf(name, sizeof(name), "session-%s.json", r->id);
	j = json_pack("{s:i, s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:s}", "version", KC_STATE_VERSION, "id", r->id, "pid",
		      (json_int_t)r->pid, "pid_start", start, "boot_id", r->boot_id, "opened", (json_int_t)r->opened,
		      "rhost", r->rhost, "service", r->service, "tty", r->tty);
	if (j && r->cert.present)
		json_object_set_new(j, "certificate", cert_json(&r->cert));
	return write_json(dir, name, j, &record_opts, err);
}

/* A record's certificate: what it says, or nothing (a record without one, or
 * one this helper cannot read: then no rule that needs one matches). */
static void parse_cert(json_t *j, struct kc_session_cert *c)
{
	const char *key_id, *serial, *ca;
	json_int_t until;
	json_t *p, *v;
	size_t i;

	if (!j ||
	    json_unpack(j, "{s:s, s:s, s:I, s:s, s:o}", "key_id", &key_id, "serial", &serial, "valid_before", &until,
			"ca", &ca, "principals", &p) < 0 ||
	    !json_is_array(p))
		return;
	copy_str(c->key_id, sizeof(c->key_id), key_id);
	copy_str(c->ca, sizeof(c->ca), ca);
	c->serial = strtoull(serial, NULL, 10);
	c->valid_before = (time_t)until;
	json_array_foreach(p, i, v) if (json_is_string(v) && c->n_principals < KC_CERT_PRINCIPALS_MAX)
		copy_str(c->principals[c->n_principals++], KC_CERT_PRINCIPAL_LEN, json_string_value(v));
	c->present = true;
}

void kc_state_drop_session(int dir, const char *id)
{
	char name[128];

	snprintf(name, sizeof(name), "session-%s.json", id);
	unlinkat(dir, name, 0);
	snprintf(name, sizeof(name), "cert-%s", id);
	unlinkat(dir, name, 0);
}

int kc_state_put_cert(int dir, const char *id, const void *blob, size_t len, struct kc_err *err)
{
	char name[128];

	snprintf(name, sizeof(name), "cert-%s", id);
	return kc_write_at(dir, name, blob, len, &record_opts, err);
}

int kc_state_get_cert(int dir, const char *id, size_t max, struct kc_buf *out, struct kc_err *err)
{
	char name[128];

	snprintf(name, sizeof(name), "cert-%s", id);
	return kc_read_at(dir, name, max, out, NULL, err);
}

/* Unknown fields are tolerated (a newer helper may add some); missing optional
 * ones are empty. */
static int parse_session(json_t *j, struct kc_session_record *r)
{
	const char *id, *boot, *start, *rhost = "", *service = "", *tty = "";
	json_int_t pid, opened;

	memset(r, 0, sizeof(*r));
	if (json_unpack(j, "{s:s, s:I, s:s, s:s, s:I, s?s, s?s, s?s}", "id", &id, "pid", &pid, "pid_start", &start,
			"boot_id", &boot, "opened", &opened, "rhost", &rhost, "service", &service, "tty", &tty) < 0 ||
	    !kc_session_id_valid(id))
		return -1;
	copy_str(r->id, sizeof(r->id), id);
	copy_str(r->boot_id, sizeof(r->boot_id), boot);
	copy_str(r->rhost, sizeof(r->rhost), rhost);
	copy_str(r->service, sizeof(r->service), service);
	copy_str(r->tty, sizeof(r->tty), tty);
	r->pid = (pid_t)pid;
	r->pid_start = strtoull(start, NULL, 10);
	r->opened = (time_t)opened;
	parse_cert(json_object_get(j, "certificate"), &r->cert);
	return 0;
}

int kc_state_get_session(int dir, const char *id, struct kc_session_record *r)
{
	char name[128];
	bool bad;
	json_t *j;
	int rc;

	snprintf(name, sizeof(name), "session-%s.json", id);
	j = read_json(dir, name, &bad);
	rc = j && parse_session(j, r) == 0 ? 0 : -1;
	json_decref(j);
	return rc;
}

static bool grant_file_exists(int dir, const char *cluster, const char *ns);
static int grant_name(const char *cluster, const char *ns, char *out, size_t len);

/* A record of version 1 carries its grants inside: they become grant files
 * (uid unknown) unless one exists, and the record is rewritten without them. */
static void upgrade_v1(int dir, json_t *j, const struct kc_session_record *r)
{
	json_t *grants = json_object_get(j, "grants"), *g;
	size_t i;
	struct kc_err e;

	json_array_foreach(grants, i, g)
	{
		struct kc_grant gr = { .state = KC_GRANT_CURRENT };
		const char *cluster, *ns, *sa, *secret;
		json_int_t expiry, lifetime;
		char name[256];

		if (json_unpack(g, "{s:s, s:s, s:s, s:s, s:I, s:I}", "cluster", &cluster, "namespace", &ns,
				"serviceaccount", &sa, "secret", &secret, "expiry", &expiry, "lifetime",
				&lifetime) < 0 ||
		    grant_name(cluster, ns, name, sizeof(name)) < 0 || grant_file_exists(dir, cluster, ns))
			continue;
		copy_str(gr.cluster, sizeof(gr.cluster), cluster);
		copy_str(gr.sa_namespace, sizeof(gr.sa_namespace), ns);
		copy_str(gr.sa_name, sizeof(gr.sa_name), sa);
		copy_str(gr.secret, sizeof(gr.secret), secret);
		gr.lifetime = (long)lifetime;
		gr.minted = (time_t)(expiry - lifetime);
		kc_state_put_grant(dir, &gr, false, &e);
	}
	kc_state_sync(dir);
	kc_state_put_session(dir, r, &e);
}

static bool record_live(const struct kc_session_record *r, const char *boot_id)
{
	return strcmp(r->boot_id, boot_id) == 0 && kc_process_alive(r->pid, r->pid_start);
}

static void upgrade_pending(int dir, const char *name);

int kc_state_sessions(int dir, bool prune, struct kc_session_record **live, size_t *n, size_t *pruned,
		      struct kc_err *err)
{
	char boot[64];
	DIR *d;
	struct dirent *de;
	/* A description of its own: a dup() would share the offset with every thread. */
	int dup_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*live = NULL;
	*n = 0;
	if (pruned)
		*pruned = 0;
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return kc_seterr(err, "cannot read the state directory: %s", strerror(errno)), -1;
	}
	kc_boot_id(boot);
	while ((de = readdir(d))) {
		struct kc_session_record r, *more;
		bool bad;
		json_t *j;

		if (strncmp(de->d_name, "pending-", 8) == 0) {
			upgrade_pending(dir, de->d_name);
			continue;
		}
		if (strncmp(de->d_name, "session-", 8) != 0)
			continue;
		j = read_json(dir, de->d_name, &bad);
		if (!j || parse_session(j, &r) < 0) {
			if (prune && (bad || j)) {
				quarantine(dir, de->d_name);
				if (pruned)
					(*pruned)++;
			}
			json_decref(j);
			continue;
		}
		if (json_object_get(j, "grants"))
			upgrade_v1(dir, j, &r);
		json_decref(j);
		if (!record_live(&r, boot)) {
			if (prune) {
				kc_state_drop_session(dir, r.id);
				if (pruned)
					(*pruned)++;
			}
			continue;
		}
		more = realloc(*live, (*n + 1) * sizeof(**live));
		if (!more)
			continue;
		*live = more;
		(*live)[(*n)++] = r;
	}
	closedir(d);
	return 0;
}

/* ---- grant files -------------------------------------------------------------- */

static int grant_name(const char *cluster, const char *ns, char *out, size_t len)
{
	if (!*cluster || !*ns || strchr(cluster, '@') || strchr(cluster, '/') || strchr(ns, '@') || strchr(ns, '/'))
		return -1;
	snprintf(out, len, "grant-%s@%s.json", cluster, ns);
	return 0;
}

static bool grant_file_exists(int dir, const char *cluster, const char *ns)
{
	char name[256];
	struct stat st;

	return grant_name(cluster, ns, name, sizeof(name)) == 0 && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A pending-*.json of version 1 becomes a grant file to revoke. */
static void upgrade_pending(int dir, const char *name)
{
	struct kc_grant g = { .state = KC_GRANT_REVOKE };
	const char *cluster, *ns, *secret;
	bool bad;
	json_t *j = read_json(dir, name, &bad);
	struct kc_err e;

	if (j && json_unpack(j, "{s:s, s:s, s:s}", "cluster", &cluster, "namespace", &ns, "secret", &secret) == 0) {
		copy_str(g.cluster, sizeof(g.cluster), cluster);
		copy_str(g.sa_namespace, sizeof(g.sa_namespace), ns);
		copy_str(g.secret, sizeof(g.secret), secret);
		g.since = time(NULL);
		copy_str(g.error, sizeof(g.error), "carried over from an earlier version");
		if (!grant_file_exists(dir, cluster, ns) && kc_state_put_grant(dir, &g, false, &e) == 0)
			kc_state_sync(dir);
	}
	json_decref(j);
	unlinkat(dir, name, 0);
}

int kc_state_put_grant(int dir, const struct kc_grant *g, bool interrupted, struct kc_err *err)
{
	char name[256];
	json_t *j, *addrs = json_array();

	if (grant_name(g->cluster, g->sa_namespace, name, sizeof(name)) < 0)
		return kc_seterr(err, "bad grant name %s@%s", g->cluster, g->sa_namespace), -1;
	for (size_t i = 0; i < g->n_addrs; i++)
		json_array_append_new(addrs, json_string(g->addrs[i]));
	j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:o}", "version",
		      KC_STATE_VERSION, "cluster", g->cluster, "namespace", g->sa_namespace, "secret", g->secret,
		      "secret_uid", g->secret_uid, "state", g->state == KC_GRANT_CURRENT ? "current" : "revoke",
		      "interrupted", interrupted || g->interrupted, "serviceaccount", g->sa_name, "minted",
		      (json_int_t)g->minted, "lifetime", (json_int_t)g->lifetime, "bound_until",
		      (json_int_t)g->bound_until, "jti", g->jti, "since", (json_int_t)g->since, "error", g->error,
		      "addresses", addrs);
	if (j && (json_object_set_new(j, "endpoint", json_string(g->endpoint)) < 0 ||
		  json_object_set_new(j, "reminted", json_boolean(g->reminted)) < 0 ||
		  (g->creating && json_object_set_new(j, "creating", json_integer((json_int_t)g->creating)) < 0))) {
		json_decref(j);
		j = NULL;
	}
	return write_json(dir, name, j, &grant_opts, err);
}

int kc_state_sync(int dir)
{
	return fsync(dir);
}

void kc_state_drop_grant(int dir, const char *cluster, const char *ns)
{
	char name[256];

	if (grant_name(cluster, ns, name, sizeof(name)) == 0)
		unlinkat(dir, name, 0);
}

static int parse_grant(json_t *j, struct kc_grant *g)
{
	const char *cluster, *ns, *secret, *uid = "", *state, *sa = "", *jti = "", *error = "";
	json_int_t minted = 0, lifetime = 0, since = 0, bound_until = 0;
	int interrupted = 0;
	json_t *addrs = NULL, *a;
	size_t i;

	memset(g, 0, sizeof(*g));
	if (json_unpack(j, "{s:s, s:s, s:s, s?s, s:s, s?b, s?s, s?I, s?I, s?I, s?s, s?I, s?s, s?o}", "cluster",
			&cluster, "namespace", &ns, "secret", &secret, "secret_uid", &uid, "state", &state,
			"interrupted", &interrupted, "serviceaccount", &sa, "minted", &minted, "lifetime", &lifetime,
			"bound_until", &bound_until, "jti", &jti, "since", &since, "error", &error, "addresses",
			&addrs) < 0)
		return -1;
	if (strcmp(state, "current") == 0)
		g->state = KC_GRANT_CURRENT;
	else if (strcmp(state, "revoke") == 0)
		g->state = KC_GRANT_REVOKE;
	else
		return -1;
	copy_str(g->cluster, sizeof(g->cluster), cluster);
	copy_str(g->sa_namespace, sizeof(g->sa_namespace), ns);
	copy_str(g->secret, sizeof(g->secret), secret);
	copy_str(g->secret_uid, sizeof(g->secret_uid), uid);
	copy_str(g->sa_name, sizeof(g->sa_name), sa);
	copy_str(g->jti, sizeof(g->jti), jti);
	copy_str(g->error, sizeof(g->error), error);
	g->interrupted = interrupted;
	g->minted = (time_t)minted;
	g->lifetime = (long)lifetime;
	g->bound_until = (time_t)bound_until;
	copy_str(g->endpoint, sizeof(g->endpoint), json_string_value(json_object_get(j, "endpoint")));
	g->reminted = json_is_true(json_object_get(j, "reminted"));
	g->since = (time_t)since;
	g->creating = (time_t)json_integer_value(json_object_get(j, "creating"));
	json_array_foreach(addrs, i, a)
	{
		if (json_is_string(a) && g->n_addrs < KC_ADDRS_MAX)
			copy_str(g->addrs[g->n_addrs++], sizeof(g->addrs[0]), json_string_value(a));
	}
	return 0;
}

/* "grant-<cluster>@<ns>.json" -> cluster and namespace. */
static int split_grant_name(const char *name, struct kc_grant *g)
{
	const char *p = name + 6, *at = strchr(p, '@'), *dot = strrchr(p, '.');

	if (!at || !dot || dot < at || (size_t)(at - p) > KC_CLUSTER_NAME_MAX ||
	    (size_t)(dot - at - 1) > KC_NAMESPACE_MAX || at == p || dot == at + 1)
		return -1;
	snprintf(g->cluster, sizeof(g->cluster), "%.*s", (int)(at - p), p);
	snprintf(g->sa_namespace, sizeof(g->sa_namespace), "%.*s", (int)(dot - at - 1), at + 1);
	return 0;
}

/* An unreadable grant file: kept aside, and its Secret (named after the user)
 * recorded for revocation with the uid unknown. */
static int recover_grant(int dir, const char *name, const char *secret_name, struct kc_grant *g)
{
	struct kc_err e;

	memset(g, 0, sizeof(*g));
	if (split_grant_name(name, g) < 0) {
		quarantine(dir, name);
		return -1;
	}
	g->state = KC_GRANT_REVOKE;
	g->since = time(NULL);
	copy_str(g->secret, sizeof(g->secret), secret_name);
	copy_str(g->error, sizeof(g->error), "its record was unreadable (kept as quarantine-*)");
	quarantine(dir, name);
	if (kc_state_put_grant(dir, g, false, &e) < 0)
		return -1;
	kc_state_sync(dir);
	return 0;
}

int kc_state_grants(int dir, const char *cluster, const char *secret_name, struct kc_grant **out, size_t *n,
		    struct kc_err *err)
{
	DIR *d;
	struct dirent *de;
	/* A description of its own: a dup() would share the offset with every thread. */
	int dup_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = NULL;
	*n = 0;
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return kc_seterr(err, "cannot read the state directory: %s", strerror(errno)), -1;
	}
	while ((de = readdir(d))) {
		struct kc_grant g, *more;
		bool bad;
		json_t *j;

		if (strncmp(de->d_name, "grant-", 6) != 0 || !strstr(de->d_name, ".json"))
			continue;
		if (cluster) {
			size_t cl = strlen(cluster);

			if (strncmp(de->d_name + 6, cluster, cl) != 0 || de->d_name[6 + cl] != '@')
				continue;
		}
		j = read_json(dir, de->d_name, &bad);
		if (!j && !bad)
			continue; /* gone since readdir */
		if (!j || parse_grant(j, &g) < 0) {
			json_decref(j);
			/* Only a caller that knows the user's Secret name may recover it. */
			if (!secret_name || !*secret_name || recover_grant(dir, de->d_name, secret_name, &g) < 0)
				continue;
		} else {
			json_decref(j);
		}
		more = realloc(*out, (*n + 1) * sizeof(**out));
		if (!more)
			return closedir(d), kc_seterr(err, "out of memory"), -1;
		*out = more;
		(*out)[(*n)++] = g;
	}
	closedir(d);
	return 0;
}

int kc_state_lock_cluster(int dir, const char *cluster, long long deadline_ms, struct kc_err *err)
{
	char name[160];
	int fd;

	snprintf(name, sizeof(name), "cluster-%s.lock", cluster);
	fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_seterr(err, "cannot open the lock for cluster %s: %s", cluster, strerror(errno)), -1;
	/* Only root's helpers take it, each bounded by its own deadline: a wait ends. */
	if (kc_flock_until(fd, LOCK_EX, deadline_ms) < 0) {
		if (errno == ETIMEDOUT)
			kc_seterr(err, "cluster %s: another helper of this user is still at work on it", cluster);
		else
			kc_seterr(err, "cannot lock cluster %s: %s", cluster, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int kc_state_list_uids(uid_t **uids, size_t *n, struct kc_err *err)
{
	return kc_list_uid_dirs(KC_STATE_DIR, uids, n, err);
}

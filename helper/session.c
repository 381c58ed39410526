/* Records of open sessions and pending revocations, per user, under a flock. */
#include "kc_session.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <jansson.h>

#include "kc_json.h"

#define RECORD_MAX (1u << 20)

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

void kc_session_record_free(struct kc_session_record *r)
{
	free(r->grants);
	r->grants = NULL;
	r->n_grants = 0;
}

static void pending_file(const char *cluster, const char *ns, const char *secret, char *out, size_t len)
{
	kc_autobuf struct kc_buf key = { 0 };
	char hex[65];

	kc_buf_puts(&key, cluster);
	kc_buf_append(&key, "", 1);
	kc_buf_puts(&key, ns);
	kc_buf_append(&key, "", 1);
	kc_buf_puts(&key, secret);
	kc_sha256_hex(key.data, key.len, hex);
	snprintf(out, len, "pending-%.20s.json", hex);
}

static int write_json_at(int dir, const char *name, json_t *j, struct kc_err *err)
{
	char tmp[300];
	char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	int fd, rc = -1;

	if (!text)
		return kc_seterr(err, "out of memory"), -1;
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		kc_seterr(err, "cannot write a session record: %s", strerror(errno));
		goto out;
	}
	if (kc_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		kc_seterr(err, "cannot write a session record: %s", strerror(errno));
		close(fd);
		unlinkat(dir, tmp, 0);
		goto out;
	}
	close(fd);
	if (renameat(dir, tmp, dir, name) < 0) {
		kc_seterr(err, "cannot write a session record: %s", strerror(errno));
		unlinkat(dir, tmp, 0);
		goto out;
	}
	rc = 0;
out:
	kc_json_free(text);
	return rc;
}

static json_t *read_json_at(int dir, const char *name)
{
	char buf[65536];
	kc_autobuf struct kc_buf data = { 0 };
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > RECORD_MAX) {
		close(fd);
		return NULL;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0 && data.len < RECORD_MAX)
		kc_buf_append(&data, buf, (size_t)n);
	close(fd);
	if (!data.data)
		return NULL;
	return json_loadb(data.data, data.len, JSON_REJECT_DUPLICATES, NULL);
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static int parse_session(json_t *j, struct kc_session_record *r)
{
	const char *id, *boot;
	json_int_t pid, opened;
	json_t *grants, *g;
	size_t i;
	const char *start;

	memset(r, 0, sizeof(*r));
	if (json_unpack(j, "{s:s, s:I, s:s, s:s, s:I, s:o}", "id", &id, "pid", &pid, "pid_start", &start, "boot_id",
			&boot, "opened", &opened, "grants", &grants) < 0 ||
	    !json_is_array(grants))
		return -1;
	copy_str(r->id, sizeof(r->id), id);
	copy_str(r->boot_id, sizeof(r->boot_id), boot);
	r->pid = (pid_t)pid;
	r->pid_start = strtoull(start, NULL, 10);
	r->opened = (time_t)opened;
	r->grants = calloc(json_array_size(grants) + 1, sizeof(*r->grants));
	if (!r->grants)
		return -1;
	json_array_foreach(grants, i, g)
	{
		struct kc_grant *gr = &r->grants[r->n_grants];
		const char *cluster, *ns, *sa, *secret;
		json_int_t expiry, lifetime;

		if (json_unpack(g, "{s:s, s:s, s:s, s:s, s:I, s:I}", "cluster", &cluster, "namespace", &ns,
				"serviceaccount", &sa, "secret", &secret, "expiry", &expiry, "lifetime", &lifetime) < 0)
			continue;
		copy_str(gr->cluster, sizeof(gr->cluster), cluster);
		copy_str(gr->sa_namespace, sizeof(gr->sa_namespace), ns);
		copy_str(gr->sa_name, sizeof(gr->sa_name), sa);
		copy_str(gr->secret, sizeof(gr->secret), secret);
		gr->expiry = (time_t)expiry;
		gr->lifetime = (long)lifetime;
		r->n_grants++;
	}
	return 0;
}

static int parse_pending(json_t *j, struct kc_pending *p)
{
	const char *cluster, *ns, *secret, *start, *error = "";
	json_int_t revoker, since;

	memset(p, 0, sizeof(*p));
	if (json_unpack(j, "{s:s, s:s, s:s, s:I, s:s, s:I, s?s}", "cluster", &cluster, "namespace", &ns, "secret",
			&secret, "revoker", &revoker, "revoker_start", &start, "since", &since, "error", &error) < 0)
		return -1;
	copy_str(p->cluster, sizeof(p->cluster), cluster);
	copy_str(p->sa_namespace, sizeof(p->sa_namespace), ns);
	copy_str(p->secret, sizeof(p->secret), secret);
	copy_str(p->error, sizeof(p->error), error);
	p->revoker = (pid_t)revoker;
	p->revoker_start = strtoull(start, NULL, 10);
	p->since = (time_t)since;
	return 0;
}

static bool record_live(const struct kc_session_record *r, const char *boot_id)
{
	return strcmp(r->boot_id, boot_id) == 0 && kc_process_alive(r->pid, r->pid_start);
}

static int push_session(struct kc_user_state *st, const struct kc_session_record *r)
{
	struct kc_session_record *p = realloc(st->sessions, (st->n_sessions + 1) * sizeof(*p));

	if (!p)
		return -1;
	st->sessions = p;
	st->sessions[st->n_sessions++] = *r;
	return 0;
}

static int push_pending(struct kc_user_state *st, const struct kc_pending *pe)
{
	struct kc_pending *p = realloc(st->pending, (st->n_pending + 1) * sizeof(*p));

	if (!p)
		return -1;
	st->pending = p;
	st->pending[st->n_pending++] = *pe;
	return 0;
}

int kc_state_lock(uid_t uid, bool create, struct kc_user_state *st, struct kc_err *err)
{
	char path[128], boot[64];
	struct kc_session_record *stale = NULL;
	size_t n_stale = 0;
	int root_fd;
	DIR *d;
	struct dirent *de;

	memset(st, 0, sizeof(*st));
	st->uid = uid;
	st->dir_fd = st->lock_fd = -1;
	snprintf(path, sizeof(path), "%s/%u", KC_STATE_DIR, (unsigned)uid);
	if (!create) {
		st->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (st->dir_fd < 0 && errno == ENOENT)
			return 1;
		if (st->dir_fd < 0)
			return kc_seterr(err, "cannot open %s: %s", path, strerror(errno)), -1;
	} else {
		root_fd = kc_open_state_dir(KC_STATE_DIR, err);
		if (root_fd < 0)
			return -1;
		close(root_fd);
		st->dir_fd = kc_open_state_dir(path, err);
		if (st->dir_fd < 0)
			return -1;
	}
	st->lock_fd = openat(st->dir_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX) < 0) {
		kc_seterr(err, "cannot lock %s: %s", path, strerror(errno));
		kc_state_unlock(st);
		return -1;
	}

	kc_boot_id(boot);
	d = fdopendir(dup(st->dir_fd));
	if (!d) {
		kc_seterr(err, "cannot read %s: %s", path, strerror(errno));
		kc_state_unlock(st);
		return -1;
	}
	while ((de = readdir(d))) {
		json_t *j;

		if (de->d_name[0] == '.')
			continue;
		j = read_json_at(st->dir_fd, de->d_name);
		if (strncmp(de->d_name, "session-", 8) == 0) {
			struct kc_session_record r;

			if (!j || parse_session(j, &r) < 0) {
				unlinkat(st->dir_fd, de->d_name, 0); /* unreadable: nothing to keep */
			} else if (record_live(&r, boot)) {
				if (push_session(st, &r) < 0)
					kc_session_record_free(&r);
			} else {
				struct kc_session_record *p = realloc(stale, (n_stale + 1) * sizeof(*p));

				if (p) {
					stale = p;
					stale[n_stale++] = r;
				} else {
					kc_session_record_free(&r);
				}
				unlinkat(st->dir_fd, de->d_name, 0);
				st->n_pruned++;
			}
		} else if (strncmp(de->d_name, "pending-", 8) == 0) {
			struct kc_pending pe;

			if (j && parse_pending(j, &pe) == 0)
				push_pending(st, &pe);
		}
		json_decref(j);
	}
	closedir(d);

	/* A stale session's Secret that no live session uses must still be revoked. */
	for (size_t i = 0; i < n_stale; i++) {
		for (size_t g = 0; g < stale[i].n_grants; g++) {
			const struct kc_grant *gr = &stale[i].grants[g];
			struct kc_pending pe = { 0 };
			struct kc_err e;

			if (!gr->secret[0] ||
			    kc_state_secret_in_use(st, gr->cluster, gr->sa_namespace, gr->secret, NULL) ||
			    kc_state_find_pending(st, gr->cluster, gr->sa_namespace, gr->secret))
				continue;
			copy_str(pe.cluster, sizeof(pe.cluster), gr->cluster);
			copy_str(pe.sa_namespace, sizeof(pe.sa_namespace), gr->sa_namespace);
			copy_str(pe.secret, sizeof(pe.secret), gr->secret);
			pe.since = time(NULL);
			copy_str(pe.error, sizeof(pe.error), "its session ended without a logout");
			kc_state_put_pending(st, &pe, &e);
		}
		kc_session_record_free(&stale[i]);
	}
	free(stale);
	return 0;
}

void kc_state_unlock(struct kc_user_state *st)
{
	for (size_t i = 0; i < st->n_sessions; i++)
		kc_session_record_free(&st->sessions[i]);
	free(st->sessions);
	free(st->pending);
	if (st->lock_fd >= 0)
		close(st->lock_fd); /* releases the flock */
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	st->sessions = NULL;
	st->pending = NULL;
	st->n_sessions = st->n_pending = 0;
	st->lock_fd = st->dir_fd = -1;
}

struct kc_session_record *kc_state_find_session(struct kc_user_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_sessions; i++)
		if (strcmp(st->sessions[i].id, id) == 0)
			return &st->sessions[i];
	return NULL;
}

int kc_state_put_session(struct kc_user_state *st, const struct kc_session_record *r, struct kc_err *err)
{
	char name[128], start[32];
	json_t *j, *grants = json_array();
	struct kc_session_record *have, copy;
	int rc;

	for (size_t i = 0; i < r->n_grants; i++) {
		const struct kc_grant *g = &r->grants[i];

		json_array_append_new(grants,
				      json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "cluster", g->cluster, "namespace",
						g->sa_namespace, "serviceaccount", g->sa_name, "secret", g->secret,
						"expiry", (json_int_t)g->expiry, "lifetime", (json_int_t)g->lifetime));
	}
	snprintf(start, sizeof(start), "%llu", r->pid_start);
	j = json_pack("{s:s, s:I, s:s, s:s, s:I, s:o}", "id", r->id, "pid", (json_int_t)r->pid, "pid_start", start,
		      "boot_id", r->boot_id, "opened", (json_int_t)r->opened, "grants", grants);
	if (!j)
		return kc_seterr(err, "out of memory"), -1;
	snprintf(name, sizeof(name), "session-%s.json", r->id);
	rc = write_json_at(st->dir_fd, name, j, err);
	json_decref(j);
	if (rc < 0)
		return -1;
	/* Keep the in-memory view in step. */
	copy = *r;
	copy.grants = calloc(r->n_grants + 1, sizeof(*copy.grants));
	if (!copy.grants)
		return kc_seterr(err, "out of memory"), -1;
	memcpy(copy.grants, r->grants, r->n_grants * sizeof(*copy.grants));
	have = kc_state_find_session(st, r->id);
	if (have) {
		kc_session_record_free(have);
		*have = copy;
		return 0;
	}
	if (push_session(st, &copy) < 0) {
		free(copy.grants);
		return kc_seterr(err, "out of memory"), -1;
	}
	return 0;
}

int kc_state_drop_session(struct kc_user_state *st, const char *id)
{
	char name[128];

	snprintf(name, sizeof(name), "session-%s.json", id);
	unlinkat(st->dir_fd, name, 0);
	for (size_t i = 0; i < st->n_sessions; i++) {
		if (strcmp(st->sessions[i].id, id) == 0) {
			kc_session_record_free(&st->sessions[i]);
			st->sessions[i] = st->sessions[--st->n_sessions];
			return 0;
		}
	}
	return -1;
}

struct kc_pending *kc_state_find_pending(struct kc_user_state *st, const char *cluster, const char *ns,
					 const char *secret)
{
	for (size_t i = 0; i < st->n_pending; i++) {
		struct kc_pending *p = &st->pending[i];

		if (strcmp(p->cluster, cluster) == 0 && strcmp(p->sa_namespace, ns) == 0 &&
		    strcmp(p->secret, secret) == 0)
			return p;
	}
	return NULL;
}

int kc_state_put_pending(struct kc_user_state *st, const struct kc_pending *p, struct kc_err *err)
{
	char name[128], start[32];
	struct kc_pending *have;
	json_t *j;
	int rc;

	snprintf(start, sizeof(start), "%llu", p->revoker_start);
	j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s}", "cluster", p->cluster, "namespace", p->sa_namespace,
		      "secret", p->secret, "revoker", (json_int_t)p->revoker, "revoker_start", start, "since",
		      (json_int_t)p->since, "error", p->error);
	if (!j)
		return kc_seterr(err, "out of memory"), -1;
	pending_file(p->cluster, p->sa_namespace, p->secret, name, sizeof(name));
	rc = write_json_at(st->dir_fd, name, j, err);
	json_decref(j);
	if (rc < 0)
		return -1;
	have = kc_state_find_pending(st, p->cluster, p->sa_namespace, p->secret);
	if (have) {
		*have = *p;
		return 0;
	}
	return push_pending(st, p) < 0 ? (kc_seterr(err, "out of memory"), -1) : 0;
}

int kc_state_drop_pending(struct kc_user_state *st, const char *cluster, const char *ns, const char *secret)
{
	char name[128];

	pending_file(cluster, ns, secret, name, sizeof(name));
	unlinkat(st->dir_fd, name, 0);
	for (size_t i = 0; i < st->n_pending; i++) {
		struct kc_pending *p = &st->pending[i];

		if (strcmp(p->cluster, cluster) == 0 && strcmp(p->sa_namespace, ns) == 0 &&
		    strcmp(p->secret, secret) == 0) {
			st->pending[i] = st->pending[--st->n_pending];
			return 0;
		}
	}
	return -1;
}

bool kc_state_secret_in_use(const struct kc_user_state *st, const char *cluster, const char *ns, const char *secret,
			    const char *except_id)
{
	for (size_t i = 0; i < st->n_sessions; i++) {
		const struct kc_session_record *r = &st->sessions[i];

		if (except_id && strcmp(r->id, except_id) == 0)
			continue;
		for (size_t g = 0; g < r->n_grants; g++)
			if (strcmp(r->grants[g].cluster, cluster) == 0 && strcmp(r->grants[g].sa_namespace, ns) == 0 &&
			    strcmp(r->grants[g].secret, secret) == 0)
				return true;
	}
	return false;
}

int kc_state_list_uids(uid_t **uids, size_t *n, struct kc_err *err)
{
	DIR *d = opendir(KC_STATE_DIR);
	struct dirent *de;

	*uids = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : (kc_seterr(err, "cannot read %s: %s", KC_STATE_DIR, strerror(errno)), -1);
	while ((de = readdir(d))) {
		char *end;
		unsigned long v;
		uid_t *p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		v = strtoul(de->d_name, &end, 10);
		if (*end || v == 0)
			continue;
		p = realloc(*uids, (*n + 1) * sizeof(**uids));
		if (!p)
			break;
		*uids = p;
		(*uids)[(*n)++] = (uid_t)v;
	}
	closedir(d);
	return 0;
}

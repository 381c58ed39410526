/* Reading status.json as the user (see asuser/status_file.h), through the
 * common YAML reader: JSON is YAML's flow style. */
#include "asuser/status_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/ytree.h"

#define MAX_NODES 20000
#define MAX_DEPTH 8

static const char *const state_names[KC_STATUS_N_STATES] = {
	[KC_STATUS_CURRENT] = "current", [KC_STATUS_UNAVAILABLE] = "unavailable", [KC_STATUS_REVOKING] = "revoking",
	[KC_STATUS_REVOKED] = "revoked", [KC_STATUS_LOCKED] = "locked",
};

const char *kc_status_state_name(enum kc_status_state s)
{
	return (unsigned)s < KC_STATUS_N_STATES ? state_names[s] : NULL;
}

int kc_status_state_parse(const char *name)
{
	for (int i = 0; i < KC_STATUS_N_STATES; i++)
		if (name && strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

/* ---- values ------------------------------------------------------------------- */

struct reader {
	struct kc_err *err;
	const char *where; /* "clusters[2]" */
};

static int fail(struct reader *r, const char *key, const char *what)
{
	kc_seterr(r->err, "status file: %s%s%s: %s", r->where, *r->where ? "." : "", key, what);
	return -1;
}

static const struct kc_ynode *scalar(const struct kc_ynode *map, const char *key)
{
	const struct kc_ynode *v = kc_ytree_get(map, key);

	return v && v->kind == KC_YSCALAR && !kc_ytree_is_null(v) ? v : NULL;
}

/* A string key into out; absent is "" unless required. */
static int text(struct reader *r, const struct kc_ynode *map, const char *key, bool required, char *out, size_t len)
{
	const struct kc_ynode *v = scalar(map, key);

	out[0] = '\0';
	if (!v)
		return required ? fail(r, key, "missing") : 0;
	if (v->len >= len || memchr(v->value, '\0', v->len))
		return fail(r, key, "too long, or not text");
	memcpy(out, v->value, v->len + 1);
	return 0;
}

static int number(struct reader *r, const struct kc_ynode *map, const char *key, bool required, long *out)
{
	const struct kc_ynode *v = scalar(map, key);
	char *end;

	*out = 0;
	if (!v)
		return required ? fail(r, key, "missing") : 0;
	errno = 0;
	*out = strtol(v->value, &end, 10);
	if (v->style != KC_YPLAIN || end == v->value || *end || errno)
		return fail(r, key, "not a whole number");
	return 0;
}

static int when(struct reader *r, const struct kc_ynode *map, const char *key, bool required, time_t *out)
{
	char buf[64];

	*out = 0;
	if (text(r, map, key, required, buf, sizeof(buf)) < 0)
		return -1;
	if (buf[0] && kc_parse_time(buf, out) != 0)
		return fail(r, key, "not an RFC 3339 time");
	return 0;
}

static const struct kc_ynode *object(struct reader *r, const struct kc_ynode *map, const char *key, int *rc)
{
	const struct kc_ynode *v = kc_ytree_get(map, key);

	if (v && kc_ytree_is_null(v))
		return NULL;
	if (v && v->kind != KC_YMAP)
		*rc = fail(r, key, "not an object");
	return v && v->kind == KC_YMAP ? v : NULL;
}

static const struct kc_ynode *list(struct reader *r, const struct kc_ynode *map, const char *key, int *rc)
{
	const struct kc_ynode *v = kc_ytree_get(map, key);

	if (v && kc_ytree_is_null(v))
		return NULL;
	if (v && v->kind != KC_YSEQ)
		*rc = fail(r, key, "not a list");
	return v && v->kind == KC_YSEQ ? v : NULL;
}

/* ---- the parts ------------------------------------------------------------------- */

static int lock_of(struct reader *r, const struct kc_ynode *map, struct kc_status_lock *l)
{
	int rc = 0;
	const struct kc_ynode *o = object(r, map, "lock", &rc);

	memset(l, 0, sizeof(*l));
	if (!o)
		return rc;
	l->present = true;
	rc |= when(r, o, "since", false, &l->since);
	rc |= when(r, o, "until", false, &l->until);
	rc |= text(r, o, "by", false, l->by, sizeof(l->by));
	rc |= text(r, o, "reason", false, l->reason, sizeof(l->reason));
	return rc ? -1 : 0;
}

static int certificate_of(struct reader *r, const struct kc_ynode *map, struct kc_status_certificate *c)
{
	int rc = 0;
	const struct kc_ynode *o = object(r, map, "certificate", &rc), *p;

	memset(c, 0, sizeof(*c));
	if (!o)
		return rc;
	c->present = true;
	rc |= text(r, o, "key_id", false, c->key_id, sizeof(c->key_id));
	rc |= text(r, o, "serial", false, c->serial, sizeof(c->serial));
	rc |= when(r, o, "valid_before", false, &c->valid_before);
	p = list(r, o, "principals", &rc);
	for (size_t i = 0; p && i < p->n && c->n_principals < KC_STATUS_PRINCIPALS_MAX; i++) {
		const struct kc_ynode *v = p->items[i];

		if (v->kind != KC_YSCALAR || v->len >= sizeof(c->principals[0]) || memchr(v->value, '\0', v->len))
			return fail(r, "principals", "not a list of names");
		memcpy(c->principals[c->n_principals++], v->value, v->len + 1);
	}
	return rc ? -1 : 0;
}

static int session_of(struct reader *r, const struct kc_ynode *o, struct kc_status_session *s)
{
	int rc = 0;

	if (o->kind != KC_YMAP)
		return fail(r, "", "not an object");
	rc |= text(r, o, "id", true, s->id, sizeof(s->id));
	rc |= text(r, o, "rhost", false, s->rhost, sizeof(s->rhost));
	rc |= text(r, o, "tty", false, s->tty, sizeof(s->tty));
	rc |= when(r, o, "opened", false, &s->opened);
	return rc ? -1 : 0;
}

static int cluster_of(struct reader *r, const struct kc_ynode *o, struct kc_status_cluster *c)
{
	char state[32];
	int rc = 0, s;

	if (o->kind != KC_YMAP)
		return fail(r, "", "not an object");
	rc |= text(r, o, "cluster", true, c->cluster, sizeof(c->cluster));
	rc |= text(r, o, "context", false, c->context, sizeof(c->context));
	rc |= text(r, o, "server", false, c->server, sizeof(c->server));
	rc |= text(r, o, "state", true, state, sizeof(state));
	rc |= text(r, o, "namespace", false, c->sa_namespace, sizeof(c->sa_namespace));
	rc |= text(r, o, "serviceaccount", false, c->sa_name, sizeof(c->sa_name));
	rc |= text(r, o, "token_file", false, c->token_file, sizeof(c->token_file));
	rc |= text(r, o, "jti", false, c->jti, sizeof(c->jti));
	rc |= when(r, o, "minted", false, &c->minted);
	rc |= when(r, o, "expires", false, &c->expires);
	rc |= when(r, o, "next_rotation", false, &c->next_rotation);
	rc |= when(r, o, "since", false, &c->since);
	rc |= text(r, o, "reason", false, c->reason, sizeof(c->reason));
	rc |= number(r, o, "pending_revocations", false, &c->pending_revocations);
	rc |= certificate_of(r, o, &c->certificate);
	rc |= lock_of(r, o, &c->lock);
	if (rc)
		return -1;
	if ((s = kc_status_state_parse(state)) < 0)
		return fail(r, "state", "a state this build does not know");
	c->state = (enum kc_status_state)s;
	return 0;
}

/* Each item of key through fn into a new array. */
static int items(struct reader *r, const struct kc_ynode *root, const char *key, size_t max, size_t size,
		 int (*fn)(struct reader *, const struct kc_ynode *, void *), void **out, size_t *n)
{
	int rc = 0;
	const struct kc_ynode *l = list(r, root, key, &rc);
	char where[64];
	char *arr;

	*out = NULL;
	*n = 0;
	if (!l)
		return rc;
	if (l->n > max)
		return fail(r, key, "too many items");
	arr = calloc(l->n + 1, size);
	if (!arr)
		return kc_seterr(r->err, "out of memory"), -1;
	for (size_t i = 0; i < l->n; i++) {
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		r->where = where;
		if (fn(r, l->items[i], arr + i * size) < 0) {
			free(arr);
			r->where = "";
			return -1;
		}
	}
	r->where = "";
	*out = arr;
	*n = l->n;
	return 0;
}

static int session_item(struct reader *r, const struct kc_ynode *o, void *out)
{
	return session_of(r, o, out);
}

static int cluster_item(struct reader *r, const struct kc_ynode *o, void *out)
{
	return cluster_of(r, o, out);
}

static const struct kc_ytree_limits limits = {
	.max_bytes = KC_STATUS_MAX_BYTES,
	.max_nodes = MAX_NODES,
	.max_depth = MAX_DEPTH,
	.max_collection_depth = MAX_DEPTH - 1,
	.flags = KC_YTREE_STRING_KEYS | KC_YTREE_NO_NUL,
};

int kc_status_parse(const char *data, size_t len, struct kc_status *out, struct kc_err *err)
{
	struct reader r = { .err = err, .where = "" };
	struct kc_ytree_error ye;
	struct kc_ynode *root = NULL;
	long version = 0, uid = 0;
	void *arr;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (kc_ytree_read(data, len, &limits, &root, &ye) < 0) {
		kc_seterr(err, "status file: line %u: not JSON this program reads (%s)", ye.mark.line,
			  ye.problem ? ye.problem : "structure");
		return -1;
	}
	if (!root || root->kind != KC_YMAP) {
		kc_seterr(err, "status file: not an object");
		goto out;
	}
	if (number(&r, root, "version", true, &version) < 0)
		goto out;
	if (version != KC_STATUS_VERSION) {
		kc_seterr(err, "status file: version %ld; this program reads version %d", version, KC_STATUS_VERSION);
		goto out;
	}
	out->version = (int)version;
	if (number(&r, root, "uid", true, &uid) < 0 || uid < 0 || (unsigned long)uid > UINT_MAX ||
	    text(&r, root, "user", true, out->user, sizeof(out->user)) < 0 ||
	    text(&r, root, "host", false, out->host, sizeof(out->host)) < 0 ||
	    when(&r, root, "written", true, &out->written) < 0 ||
	    text(&r, root, "kubeconfig", false, out->kubeconfig, sizeof(out->kubeconfig)) < 0 ||
	    lock_of(&r, root, &out->lock) < 0)
		goto out;
	out->uid = (uid_t)uid;
	if (items(&r, root, "sessions", KC_STATUS_SESSIONS_MAX, sizeof(*out->sessions), session_item, &arr,
		  &out->n_sessions) < 0)
		goto out;
	out->sessions = arr;
	if (items(&r, root, "clusters", KC_STATUS_CLUSTERS_MAX, sizeof(*out->clusters), cluster_item, &arr,
		  &out->n_clusters) < 0)
		goto out;
	out->clusters = arr;
	rc = 0;
out:
	kc_ytree_free(root);
	if (rc < 0)
		kc_status_free(out);
	return rc;
}

void kc_status_free(struct kc_status *s)
{
	free(s->sessions);
	free(s->clusters);
	s->sessions = NULL;
	s->clusters = NULL;
	s->n_sessions = s->n_clusters = 0;
}

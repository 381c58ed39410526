/* `pam-kubeconfig status`, run by the user (see asuser/status_cli.h). */
#include "asuser/status_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asuser/kubeconfig_read.h"
#include "asuser/our_entries.h"
#include "asuser/token_claims.h"
#include "common/fileio.h"
#include "common/ytree.h"

#define RUN_DIR "/run/pam_kubeconfig"
#define CONTEXTS_MAX 256

/* One of our contexts in the user's kubeconfig. */
struct our_context {
	char name[256];
	char namespace_[64]; /* the context's namespace: the user may have set another */
	char token_file[160]; /* its user entry's tokenFile */
	bool used; /* matched to a cluster of the status file */
};

struct view {
	struct kc_status st;
	bool have_status;
	char status_error[KC_ERR_MAX]; /* why there is none, when it is not just absent */
	struct our_context ctx[CONTEXTS_MAX];
	size_t n_ctx;
	char kubeconfig[512]; /* the file read, for messages */
	char kubeconfig_error[KC_ERR_MAX];
	struct kc_token_claims claims[KC_STATUS_CLUSTERS_MAX];
	bool valid[KC_STATUS_CLUSTERS_MAX];
	time_t now;
};

/* ---- root's status file ---------------------------------------------------------- */

/* 0 read, KC_ABSENT none (no directory or file: no grant here), -1 (why). */
static int read_status(const char *run_dir, uid_t uid, struct kc_status *st, struct kc_err *err)
{
	kc_autobuf struct kc_buf data = { 0 };
	char path[256];
	struct stat sb;
	kc_autoclose int dir = -1;
	kc_autoclose int fd = -1;

	snprintf(path, sizeof(path), "%s/%u", run_dir, (unsigned)uid);
	/* 0711: the user may pass through it, not list it (O_PATH needs neither). */
	dir = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT ? KC_ABSENT : (kc_seterr(err, "%s: %s", path, strerror(errno)), -1);
	/* Root's directory: only root can have put the file there. */
	if (fstat(dir, &sb) < 0 || sb.st_uid != 0 || (sb.st_mode & 022))
		return kc_seterr(err, "%s is not root's own; its status file is not trusted", path), -1;
	fd = openat(dir, KC_STATUS_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? KC_ABSENT
				       : (kc_seterr(err, "%s/%s: %s", path, KC_STATUS_FILE, strerror(errno)), -1);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (sb.st_uid != uid && sb.st_uid != 0))
		return kc_seterr(err, "%s/%s is not a file root wrote for you", path, KC_STATUS_FILE), -1;
	if (kc_read_fd(fd, KC_STATUS_MAX_BYTES, &data, err) < 0)
		return -1;
	if (kc_status_parse(data.data ? data.data : "", data.len, st, err) < 0)
		return -1;
	if (st->uid != uid) {
		kc_status_free(st);
		return kc_seterr(err, "%s/%s is about uid %u, not you", path, KC_STATUS_FILE, (unsigned)st->uid), -1;
	}
	return 0;
}

/* ---- the user's kubeconfig ------------------------------------------------------- */

static const struct kc_ynode *named_item(const struct kc_ynode *root, const char *list, const char *inner,
					 const char *name)
{
	const struct kc_ynode *l = kc_ytree_get(root, list);

	for (size_t i = 0; l && l->kind == KC_YSEQ && i < l->n; i++)
		if (kc_ytree_is(kc_ytree_get(l->items[i], "name"), name)) {
			const struct kc_ynode *o = kc_ytree_get(l->items[i], inner);

			return o && o->kind == KC_YMAP ? o : NULL;
		}
	return NULL;
}

static void scalar_into(const struct kc_ynode *map, const char *key, char *out, size_t len)
{
	const struct kc_ynode *v = kc_ytree_get(map, key);

	out[0] = '\0';
	if (v && v->kind == KC_YSCALAR && v->len < len)
		memcpy(out, v->value, v->len + 1);
}

/* Our marked contexts, with their user entries' tokenFile. */
static void read_kubeconfig(struct view *v, uid_t uid)
{
	kc_autobuf struct kc_buf data = { .secret = true }; /* an inline token may be in it */
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	const char *rel = v->st.kubeconfig[0] ? v->st.kubeconfig : "~/.kube/config-eks";
	struct kc_ynode *root = NULL;
	const struct kc_ynode *contexts;
	struct kc_err e = { "" };
	kc_autoclose int fd = -1;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp) {
		snprintf(v->kubeconfig_error, sizeof(v->kubeconfig_error), "your account cannot be looked up");
		return;
	}
	snprintf(v->kubeconfig, sizeof(v->kubeconfig), "%s/%s", pw.pw_dir, strncmp(rel, "~/", 2) == 0 ? rel + 2 : rel);
	fd = open(v->kubeconfig, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(v->kubeconfig_error, sizeof(v->kubeconfig_error), "%s", strerror(errno));
		return;
	}
	if (kc_read_fd(fd, KC_KUBECONFIG_MAX_BYTES, &data, &e) < 0 ||
	    kc_kubeconfig_read(data.data ? data.data : "", data.len, &root, &e) < 0) {
		snprintf(v->kubeconfig_error, sizeof(v->kubeconfig_error), "%s", e.msg);
		return;
	}
	contexts = kc_ytree_get(root, "contexts");
	for (size_t i = 0; contexts && contexts->kind == KC_YSEQ && i < contexts->n && v->n_ctx < CONTEXTS_MAX; i++) {
		const struct kc_ynode *item = contexts->items[i], *inner = kc_ytree_get(item, "context"), *user;
		struct our_context *c = &v->ctx[v->n_ctx];
		char user_name[256];

		if (!inner || inner->kind != KC_YMAP || !kc_ours_marked(inner))
			continue;
		memset(c, 0, sizeof(*c));
		scalar_into(item, "name", c->name, sizeof(c->name));
		scalar_into(inner, "namespace", c->namespace_, sizeof(c->namespace_));
		scalar_into(inner, "user", user_name, sizeof(user_name));
		user = named_item(root, "users", "user", user_name);
		if (user)
			scalar_into(user, "tokenFile", c->token_file, sizeof(c->token_file));
		if (c->name[0])
			v->n_ctx++;
	}
	kc_ytree_free(root);
}

/* ---- the verdict ------------------------------------------------------------------- */

/* Valid: root says current and no lock stands, and the token file holds an
 * unexpired token (of that grant, when root recorded its jti). */
static bool judge(const struct view *v, const struct kc_status_cluster *c, const struct kc_token_claims *t)
{
	if (c->state != KC_STATUS_CURRENT || c->lock.present || v->st.lock.present)
		return false;
	if (!t->read || (t->exp && t->exp <= v->now))
		return false;
	return true;
}

/* ---- text ---------------------------------------------------------------------------- */

/* "2026-01-02T03:04:05Z (in 14m)" */
static const char *when_text(time_t t, time_t now, char *out, size_t len)
{
	char at[32], d[32];

	if (!t) {
		snprintf(out, len, "-");
		return out;
	}
	kc_format_time(t, at, sizeof(at));
	kc_format_duration(t > now ? (long)(t - now) : (long)(now - t), d, sizeof(d));
	if (t > now)
		snprintf(out, len, "%s (in %s)", at, d);
	else
		snprintf(out, len, "%s (%s ago)", at, d);
	return out;
}

/* Printable text of something a file said (control bytes as '?'). */
static const char *shown(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; s[i] && i + 1 < len; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
	return i ? out : "-";
}

static const struct our_context *find_context(const struct view *v, const struct kc_status_cluster *c)
{
	for (size_t x = 0; x < v->n_ctx; x++)
		if ((v->ctx[x].token_file[0] && strcmp(v->ctx[x].token_file, c->token_file) == 0) ||
		    strcmp(v->ctx[x].name, c->context) == 0)
			return &v->ctx[x];
	return NULL;
}

/* Which context, its state, and who it acts as. */
static void print_identity(const struct view *v, size_t i, const struct our_context *k, FILE *out)
{
	const struct kc_status_cluster *c = &v->st.clusters[i];
	const struct kc_token_claims *t = &v->claims[i];
	const char *ns = k && k->namespace_[0] ? k->namespace_ : c->sa_namespace;
	bool why = c->reason[0] && !v->valid[i];
	char a[600], b[600];

	fprintf(out, "context %s: %s%s%s\n", shown(c->context, a, sizeof(a)),
		v->valid[i] ? "valid" : kc_status_state_name(c->state), why ? ", " : "",
		why ? shown(c->reason, b, sizeof(b)) : "");
	fprintf(out, "  cluster          %s", shown(c->cluster, a, sizeof(a)));
	if (c->server[0])
		fprintf(out, " (%s)", shown(c->server, b, sizeof(b)));
	fputc('\n', out);
	if (c->sa_name[0])
		fprintf(out, "  serviceaccount   %s/%s\n", shown(c->sa_namespace, a, sizeof(a)),
			shown(c->sa_name, b, sizeof(b)));
	if (ns[0])
		fprintf(out, "  namespace        %s\n", shown(ns, a, sizeof(a)));
	if (t->read && t->subject[0])
		fprintf(out, "  token subject    %s\n", shown(t->subject, a, sizeof(a)));
}

/* label: "locked" for the user, "  lock            " for one context. */
static void print_lock(const struct kc_status_lock *l, const char *label, time_t now, FILE *out)
{
	char a[300], w[96];

	fprintf(out, "%s by %s, %s%s\n", label, shown(l->by, a, sizeof(a)), l->until ? "until " : "until unlocked",
		l->until ? when_text(l->until, now, w, sizeof(w)) : "");
}

/* When it ends, what bounds it, and where it is. */
static void print_bounds(const struct view *v, size_t i, const struct our_context *k, FILE *out)
{
	const struct kc_status_cluster *c = &v->st.clusters[i];
	const struct kc_token_claims *t = &v->claims[i];
	char a[600], w[96];

	if (c->state == KC_STATUS_CURRENT) {
		fprintf(out, "  expires          %s\n",
			when_text(t->read && t->exp ? t->exp : c->expires, v->now, w, sizeof(w)));
		fprintf(out, "  next rotation    %s\n", when_text(c->next_rotation, v->now, w, sizeof(w)));
	} else if (c->since) {
		fprintf(out, "  since            %s\n", when_text(c->since, v->now, w, sizeof(w)));
	}
	if (c->pending_revocations)
		fprintf(out, "  revocations      %ld pending (the API server has not confirmed them yet)\n",
			c->pending_revocations);
	if (c->certificate.present)
		fprintf(out, "  certificate      %s, valid until %s\n", shown(c->certificate.key_id, a, sizeof(a)),
			c->certificate.valid_before ? when_text(c->certificate.valid_before, v->now, w, sizeof(w))
						    : "forever");
	if (c->lock.present)
		print_lock(&c->lock, "  lock            ", v->now, out);
	if (!k)
		fprintf(out, "  kubeconfig       not in %s\n", v->kubeconfig[0] ? v->kubeconfig : "your kubeconfig");
	else if (c->state == KC_STATUS_CURRENT && !t->read)
		fprintf(out, "  token file       %s cannot be read\n", shown(c->token_file, a, sizeof(a)));
}

static void print_cluster(const struct view *v, size_t i, FILE *out)
{
	const struct our_context *k = find_context(v, &v->st.clusters[i]);

	print_identity(v, i, k, out);
	print_bounds(v, i, k, out);
}

static void print_text(const struct view *v, FILE *out)
{
	char a[300], b[300], w[96];
	size_t n_valid = 0;

	for (size_t i = 0; i < v->st.n_clusters; i++)
		n_valid += v->valid[i];
	if (!v->have_status) {
		fprintf(out, "no Kubernetes access of yours on this host%s%s\n", v->status_error[0] ? ": " : "",
			v->status_error);
	} else {
		fprintf(out, "Kubernetes access of %s (uid %u) on %s, as of %s\n", shown(v->st.user, a, sizeof(a)),
			(unsigned)v->st.uid, shown(v->st.host, b, sizeof(b)),
			when_text(v->st.written, v->now, w, sizeof(w)));
		if (v->st.lock.present)
			print_lock(&v->st.lock, "locked", v->now, out);
		for (size_t i = 0; i < v->st.n_clusters; i++) {
			fputc('\n', out);
			print_cluster(v, i, out);
		}
	}
	for (size_t i = 0; i < v->n_ctx; i++)
		if (!v->ctx[i].used)
			fprintf(out, "\ncontext %s: no grant on this host (another bastion's, or none yet)\n",
				shown(v->ctx[i].name, a, sizeof(a)));
	if (v->kubeconfig_error[0] && v->have_status)
		fprintf(out, "\n(%s: %s)\n", v->kubeconfig, v->kubeconfig_error);
	if (v->have_status) {
		fprintf(out, "\nsessions open on this host: %zu\n", v->st.n_sessions);
		for (size_t i = 0; i < v->st.n_sessions; i++) {
			const struct kc_status_session *s = &v->st.sessions[i];

			fprintf(out, "  %s from %s on %s since %s\n", shown(s->id, a, sizeof(a)),
				shown(s->rhost, b, sizeof(b)), s->tty[0] ? s->tty : "-",
				when_text(s->opened, v->now, w, sizeof(w)));
		}
	}
	fprintf(out, "\n%zu of %zu context%s valid\n", n_valid, v->st.n_clusters, v->st.n_clusters == 1 ? "" : "s");
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
	bool utf8 = kc_ytree_valid_utf8(s);

	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else if (*p >= 0x80 && !utf8)
			fputc('?', out);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_key(FILE *out, bool *first, const char *key)
{
	fprintf(out, "%s", *first ? "" : ",");
	*first = false;
	json_str(out, key);
	fputc(':', out);
}

static void json_text(FILE *out, bool *first, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	json_key(out, first, key);
	json_str(out, value);
}

static void json_time(FILE *out, bool *first, const char *key, time_t t)
{
	char buf[32];

	if (!t)
		return;
	kc_format_time(t, buf, sizeof(buf));
	json_text(out, first, key, buf);
}

static void json_lock(FILE *out, bool *first, const struct kc_status_lock *l)
{
	bool f = true;

	if (!l->present)
		return;
	json_key(out, first, "lock");
	fputc('{', out);
	json_time(out, &f, "since", l->since);
	json_time(out, &f, "until", l->until);
	json_text(out, &f, "by", l->by);
	json_text(out, &f, "reason", l->reason);
	fputc('}', out);
}

static void json_cluster(const struct view *v, size_t i, FILE *out)
{
	const struct kc_status_cluster *c = &v->st.clusters[i];
	const struct kc_token_claims *t = &v->claims[i];
	const struct our_context *k = find_context(v, c);
	bool first = true;

	fputc('{', out);
	json_text(out, &first, "context", c->context);
	json_text(out, &first, "cluster", c->cluster);
	json_text(out, &first, "server", c->server);
	json_text(out, &first, "state", kc_status_state_name(c->state));
	json_key(out, &first, "valid");
	fputs(v->valid[i] ? "true" : "false", out);
	json_text(out, &first, "reason", c->reason);
	json_text(out, &first, "serviceaccount_namespace", c->sa_namespace);
	json_text(out, &first, "serviceaccount", c->sa_name);
	json_text(out, &first, "namespace", k && k->namespace_[0] ? k->namespace_ : c->sa_namespace);
	json_time(out, &first, "expires", c->state == KC_STATUS_CURRENT && t->read && t->exp ? t->exp : c->expires);
	json_time(out, &first, "next_rotation", c->next_rotation);
	json_time(out, &first, "minted", c->minted);
	json_time(out, &first, "since", c->since);
	json_text(out, &first, "jti", c->jti);
	json_key(out, &first, "pending_revocations");
	fprintf(out, "%ld", c->pending_revocations);
	json_key(out, &first, "in_kubeconfig");
	fputs(k ? "true" : "false", out);
	if (t->read) {
		bool f = true;

		json_key(out, &first, "token");
		fputc('{', out);
		json_text(out, &f, "subject", t->subject);
		json_text(out, &f, "jti", t->jti);
		json_time(out, &f, "expires", t->exp);
		json_time(out, &f, "issued", t->iat);
		fputc('}', out);
	}
	if (c->certificate.present) {
		bool f = true;

		json_key(out, &first, "certificate");
		fputc('{', out);
		json_text(out, &f, "key_id", c->certificate.key_id);
		json_text(out, &f, "serial", c->certificate.serial);
		json_time(out, &f, "valid_before", c->certificate.valid_before);
		json_key(out, &f, "principals");
		fputc('[', out);
		for (size_t p = 0; p < c->certificate.n_principals; p++) {
			fputs(p ? "," : "", out);
			json_str(out, c->certificate.principals[p]);
		}
		fputs("]}", out);
	}
	json_lock(out, &first, &c->lock);
	fputc('}', out);
}

static void print_json(const struct view *v, FILE *out)
{
	bool first = true, any = false;

	for (size_t i = 0; i < v->st.n_clusters; i++)
		any |= v->valid[i];
	fputc('{', out);
	json_key(out, &first, "valid");
	fputs(any ? "true" : "false", out);
	if (v->have_status) {
		json_text(out, &first, "user", v->st.user);
		json_key(out, &first, "uid");
		fprintf(out, "%u", (unsigned)v->st.uid);
		json_text(out, &first, "host", v->st.host);
		json_time(out, &first, "as_of", v->st.written);
		json_lock(out, &first, &v->st.lock);
	} else {
		json_text(out, &first, "error", v->status_error);
	}
	json_text(out, &first, "kubeconfig", v->kubeconfig);
	json_text(out, &first, "kubeconfig_error", v->kubeconfig_error);
	json_key(out, &first, "contexts");
	fputc('[', out);
	for (size_t i = 0; i < v->st.n_clusters; i++) {
		fputs(i ? "," : "", out);
		json_cluster(v, i, out);
	}
	fputc(']', out);
	json_key(out, &first, "elsewhere");
	fputc('[', out);
	for (size_t i = 0, n = 0; i < v->n_ctx; i++)
		if (!v->ctx[i].used) {
			fputs(n++ ? "," : "", out);
			json_str(out, v->ctx[i].name);
		}
	fputc(']', out);
	json_key(out, &first, "sessions");
	fputc('[', out);
	for (size_t i = 0; i < v->st.n_sessions; i++) {
		const struct kc_status_session *s = &v->st.sessions[i];
		bool f = true;

		fputs(i ? ",{" : "{", out);
		json_text(out, &f, "id", s->id);
		json_text(out, &f, "rhost", s->rhost);
		json_text(out, &f, "tty", s->tty);
		json_time(out, &f, "opened", s->opened);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

/* ---- the command ---------------------------------------------------------------------- */

int kc_cmd_status(const char *run_dir, bool json, FILE *out)
{
	struct view *v = calloc(1, sizeof(*v));
	struct kc_err e = { "" };
	uid_t uid = getuid();
	int rc, any = 0;

	if (!v) {
		fprintf(stderr, "pam-kubeconfig: out of memory\n");
		return KC_STATUS_EXIT_NONE;
	}
	v->now = time(NULL);
	rc = read_status(run_dir ? run_dir : RUN_DIR, uid, &v->st, &e);
	v->have_status = rc == 0;
	if (rc == -1)
		snprintf(v->status_error, sizeof(v->status_error), "%s", e.msg);
	else if (rc != 0)
		snprintf(v->status_error, sizeof(v->status_error), "no session of yours here holds a grant");
	read_kubeconfig(v, uid);
	for (size_t i = 0; i < v->st.n_clusters; i++) {
		const struct our_context *k = find_context(v, &v->st.clusters[i]);

		if (k)
			v->ctx[k - v->ctx].used = true;
		/* The token file root names, in root's directory: never the
		 * kubeconfig's word for it. */
		kc_token_claims_read(v->st.clusters[i].token_file, &v->claims[i]);
		v->valid[i] = judge(v, &v->st.clusters[i], &v->claims[i]);
		any |= v->valid[i];
	}
	if (json)
		print_json(v, out);
	else
		print_text(v, out);
	fflush(out);
	kc_status_free(&v->st);
	free(v);
	return any ? KC_STATUS_EXIT_VALID : KC_STATUS_EXIT_NONE;
}

/* The metrics store and its Prometheus rendering (see lifecycle/metrics.h). Counts are a jansson tree, the same shape
 * for a batch and for the store, so a commit is one merge:
 *   {"version":1,"counters":{"mints_total":{"cluster=prod,result=success":3},...},
 *    "histograms":{"mint_duration_seconds":{"cluster=prod":{"buckets":[...],"sum":1.5,"count":3}}},
 *    "timestamps":{"refresh":1767000000,"gc":1767000000}}
 * A series is named by its labels as "k=v,k=v" (values never hold ',', '=' or
 * quotes: the label check sees to it). */
#include "lifecycle/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/log.h"
#include "lifecycle/state.h"

#define LABEL_MAX 64

struct kc_metrics {
	json_t *root;
};

static const char *store_dir = KC_STATE_DIR;
static const double bucket_bounds[KC_METRICS_N_BUCKETS - 1] = { KC_METRICS_BUCKETS };
static const char *const result_names[KC_METRICS_N_RESULTS] = { "success", "failure", "ignored", "expired" };
static const char *const job_names[] = { "refresh", "gc" };

void kc_metrics_use_dir(const char *dir)
{
	store_dir = dir ? dir : KC_STATE_DIR;
}

/* ---- counting ------------------------------------------------------------------ */

struct kc_metrics *kc_metrics_new(void)
{
	struct kc_metrics *m = calloc(1, sizeof(*m));

	if (m && !(m->root = json_pack("{s:i}", "version", 1))) {
		free(m);
		return NULL;
	}
	return m;
}

void kc_metrics_free(struct kc_metrics *m)
{
	if (!m)
		return;
	json_decref(m->root);
	free(m);
}

/* o[key] as an object, made (or made anew, over a value of another type) when needed. */
static json_t *child(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);

	if (json_is_object(c))
		return c;
	c = json_object();
	return json_object_set_new(o, key, c) == 0 ? c : NULL;
}

static bool label_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	return n > 0 && n <= LABEL_MAX &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* "cluster=C,result=R", either part absent when NULL. */
static int series_key(const char *cluster, int result, char *out, size_t len)
{
	if ((cluster && !label_ok(cluster)) || result >= KC_METRICS_N_RESULTS)
		return -1;
	snprintf(out, len, "%s%s%s%s%s", cluster ? "cluster=" : "", cluster ? cluster : "",
		 cluster && result >= 0 ? "," : "", result >= 0 ? "result=" : "",
		 result >= 0 ? result_names[result] : "");
	return 0;
}

/* One series: a slot for a new one only while the metric has fewer than
 * KC_METRICS_SERIES_MAX (the store is read at every login). */
static json_t *series(json_t *root, const char *kind, const char *metric, const char *key)
{
	json_t *family = child(child(root, kind), metric), *s = json_object_get(family, key);

	if (!family || (!s && json_object_size(family) >= KC_METRICS_SERIES_MAX))
		return NULL;
	return s ? s : json_null();
}

static int add_counter(json_t *root, const char *metric, const char *key, json_int_t n)
{
	json_t *family = child(child(root, "counters"), metric), *s = series(root, "counters", metric, key);

	if (!s)
		return -1;
	return json_object_set_new(family, key, json_integer(json_integer_value(s) + n));
}

/* counts: per bucket (not cumulative), the last one +Inf. */
static int add_observations(json_t *root, const char *key, const json_int_t counts[KC_METRICS_N_BUCKETS], double sum,
			    json_int_t count)
{
	json_t *family = child(child(root, "histograms"), "mint_duration_seconds");
	json_t *s = series(root, "histograms", "mint_duration_seconds", key), *buckets, *h;

	if (!s)
		return -1;
	buckets = json_object_get(s, "buckets");
	if (!json_is_array(buckets) || json_array_size(buckets) != KC_METRICS_N_BUCKETS)
		buckets = NULL;
	h = json_pack("{s:[],s:f,s:I}", "buckets", "sum", json_number_value(json_object_get(s, "sum")) + sum, "count",
		      (json_int_t)(json_integer_value(json_object_get(s, "count")) + count));
	for (size_t i = 0; h && i < KC_METRICS_N_BUCKETS; i++)
		json_array_append_new(json_object_get(h, "buckets"),
				      json_integer(json_integer_value(json_array_get(buckets, i)) + counts[i]));
	return json_object_set_new(family, key, h);
}

static int set_latest(json_t *root, const char *job, json_int_t when)
{
	json_t *t = child(root, "timestamps");

	if (!t)
		return -1;
	if (json_integer_value(json_object_get(t, job)) >= when)
		return 0;
	return json_object_set_new(t, job, json_integer(when));
}

int kc_metrics_login(struct kc_metrics *m, enum kc_metrics_result r)
{
	char key[160];

	return series_key(NULL, (int)r, key, sizeof(key)) < 0 ? -1 : add_counter(m->root, "logins_total", key, 1);
}

int kc_metrics_logout(struct kc_metrics *m, enum kc_metrics_result r)
{
	char key[160];

	return series_key(NULL, (int)r, key, sizeof(key)) < 0 ? -1 : add_counter(m->root, "logouts_total", key, 1);
}

int kc_metrics_mint(struct kc_metrics *m, const char *cluster, enum kc_metrics_result r, double seconds)
{
	json_int_t counts[KC_METRICS_N_BUCKETS] = { 0 };
	char key[160];
	size_t b = 0;

	if (!cluster || series_key(cluster, (int)r, key, sizeof(key)) < 0 ||
	    add_counter(m->root, "mints_total", key, 1) < 0)
		return -1;
	if (seconds < 0)
		return 0;
	while (b < KC_METRICS_N_BUCKETS - 1 && seconds > bucket_bounds[b])
		b++;
	counts[b] = 1;
	series_key(cluster, -1, key, sizeof(key));
	return add_observations(m->root, key, counts, seconds, 1);
}

int kc_metrics_revocation(struct kc_metrics *m, const char *cluster, enum kc_metrics_result r)
{
	char key[160];

	if (!cluster || series_key(cluster, (int)r, key, sizeof(key)) < 0)
		return -1;
	return add_counter(m->root, "revocations_total", key, 1);
}

int kc_metrics_cut(struct kc_metrics *m, const char *cluster, unsigned long connections)
{
	char key[160];

	if (!cluster || series_key(cluster, -1, key, sizeof(key)) < 0 || connections > (unsigned long)LLONG_MAX)
		return -1;
	return add_counter(m->root, "connections_cut_total", key, (json_int_t)connections);
}

int kc_metrics_job_done(struct kc_metrics *m, enum kc_metrics_job job, time_t when)
{
	if ((unsigned)job > KC_METRICS_GC)
		return -1;
	return set_latest(m->root, job_names[job], (json_int_t)when);
}

/* ---- the store ----------------------------------------------------------------- */

/* Adds every count of from to into (a batch to the store). */
static void merge(json_t *into, json_t *from)
{
	const char *metric, *key;
	json_t *family, *v;

	json_object_foreach(json_object_get(from, "counters"), metric, family)
	{
		json_object_foreach(family, key, v)
		{
			add_counter(into, metric, key, json_integer_value(v));
		}
	}
	json_object_foreach(json_object_get(json_object_get(from, "histograms"), "mint_duration_seconds"), key, v)
	{
		json_int_t counts[KC_METRICS_N_BUCKETS];

		for (size_t i = 0; i < KC_METRICS_N_BUCKETS; i++)
			counts[i] = json_integer_value(json_array_get(json_object_get(v, "buckets"), i));
		add_observations(into, key, counts, json_number_value(json_object_get(v, "sum")),
				 json_integer_value(json_object_get(v, "count")));
	}
	json_object_foreach(json_object_get(from, "timestamps"), key, v)
	{
		set_latest(into, key, json_integer_value(v));
	}
}

/* The store's tree from its open fd; an empty one when the file is empty or
 * cannot be used (then said once): counts start again from zero. */
static json_t *read_store(int fd)
{
	kc_autobuf struct kc_buf data = { 0 };
	struct stat st;
	struct kc_err e;
	json_t *root = NULL;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077))
		kc_warn("the metrics store %s/%s is not root's own; counting again from zero", store_dir,
			KC_METRICS_STORE);
	else if (lseek(fd, 0, SEEK_SET) < 0 || kc_read_fd(fd, KC_METRICS_STORE_MAX, &data, &e) < 0)
		kc_warn("the metrics store %s/%s: %s; counting again from zero", store_dir, KC_METRICS_STORE, e.msg);
	else if (data.len && !(root = json_loadb(data.data, data.len, JSON_REJECT_DUPLICATES, NULL)))
		kc_warn("the metrics store %s/%s is not JSON; counting again from zero", store_dir, KC_METRICS_STORE);
	if (root && !json_is_object(root)) {
		json_decref(root);
		root = NULL;
	}
	return root ? root : json_pack("{s:i}", "version", 1);
}

/* The store, opened (made when missing) and locked: only root's helpers take
 * the lock, each for one small read and write. A wait ends at the deadline. */
static int open_store(long long deadline_ms, int op, struct kc_err *err)
{
	kc_autoclose int dir = kc_open_state_dir(store_dir, err);
	int fd;

	if (dir < 0)
		return -1;
	fd = openat(dir, KC_METRICS_STORE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return kc_seterr(err, "cannot open the metrics store %s/%s: %s", store_dir, KC_METRICS_STORE,
				 strerror(errno)),
		       -1;
	if (kc_flock_until(fd, op, deadline_ms) < 0) {
		kc_seterr(err, "the metrics store is busy; these counts are lost");
		close(fd);
		return -1;
	}
	return fd;
}

static int dump_to_buf(const char *data, size_t len, void *arg)
{
	return kc_buf_append(arg, data, len);
}

/* Under the lock: the store read, the batch added, the store rewritten in
 * place (no new file each time: an open's commit stays cheap). Not synced: a
 * crash loses counts, never a fact, and a store a crash left torn reads as
 * not JSON, a counter reset, which Prometheus handles. */
static int commit_locked(int fd, json_t *batch, struct kc_err *err)
{
	kc_autobuf struct kc_buf out = { 0 };
	json_t *root = read_store(fd);
	int rc = -1;

	if (!root)
		return kc_seterr(err, "out of memory"), -1;
	merge(root, batch);
	if (json_dump_callback(root, dump_to_buf, &out, JSON_COMPACT) < 0 || kc_buf_puts(&out, "\n") < 0)
		kc_seterr(err, "out of memory");
	else if (out.len > KC_METRICS_STORE_MAX)
		kc_seterr(err, "the metrics store would be larger than %u bytes; not written", KC_METRICS_STORE_MAX);
	else if (fchmod(fd, 0600) < 0 || pwrite(fd, out.data, out.len, 0) != (ssize_t)out.len ||
		 ftruncate(fd, (off_t)out.len) < 0)
		kc_seterr(err, "cannot write the metrics store %s/%s: %s", store_dir, KC_METRICS_STORE,
			  strerror(errno));
	else
		rc = 0;
	json_decref(root);
	return rc;
}

int kc_metrics_commit(const struct kc_metrics *batch, long long deadline_ms, struct kc_err *err)
{
	kc_autoclose int fd = -1;

	if (json_object_size(batch->root) <= 1) /* "version" alone: nothing counted */
		return 0;
	fd = open_store(deadline_ms, LOCK_EX, err);
	return fd < 0 ? -1 : commit_locked(fd, batch->root, err);
}

int kc_metrics_load(struct kc_metrics **out, struct kc_err *err)
{
	kc_autoclose int fd = open_store(kc_now_ms() + 2000, LOCK_SH, err);
	struct kc_metrics *m;

	*out = NULL;
	if (fd < 0)
		return -1;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->root = read_store(fd))) {
		free(m);
		return kc_seterr(err, "out of memory"), -1;
	}
	*out = m;
	return 0;
}

/* ---- the text exposition ----------------------------------------------------------- */

#define PREFIX "pam_kubeconfig_"

static const int login_results[] = { KC_METRICS_SUCCESS, KC_METRICS_FAILURE, KC_METRICS_IGNORED, -1 };
static const int mint_results[] = { KC_METRICS_SUCCESS, KC_METRICS_FAILURE, -1 };
static const int revocation_results[] = { KC_METRICS_SUCCESS, KC_METRICS_FAILURE, KC_METRICS_EXPIRED, -1 };
static const int no_results[] = { -1 };

static const struct counter_family {
	const char *key; /* in the store; the name is PREFIX key */
	const char *help;
	const int *results; /* the series present from the start, -1 ended */
	bool by_cluster;
} counter_families[] = {
	{ "logins_total", "Logins (PAM open_session) the helper handled, by result.", login_results, false },
	{ "logouts_total", "Logouts (PAM close_session) the helper handled, by result.", login_results, false },
	{ "mints_total", "Tokens minted for users (TokenRequest), by cluster and result.", mint_results, true },
	{ "revocations_total",
	  "Revocations of a user's tokens (their Secret deleted), by cluster and result; expired: a pending one ended "
	  "once every token bound to it had expired.",
	  revocation_results, true },
	{ "connections_cut_total",
	  "TCP connections to an API server cut after a user's access there ended, by cluster.", no_results, true },
};

/* A series' labels as the exposition writes them (cluster="prod",result="success"),
 * or false for a key this file never makes. */
static bool labels_text(const char *key, char *out, size_t len)
{
	char copy[160], *save = NULL;
	size_t off = 0;

	if (snprintf(copy, sizeof(copy), "%s", key) >= (int)sizeof(copy))
		return false;
	out[0] = '\0';
	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(part, '=');

		if (!eq || !label_ok(eq + 1) || (strncmp(part, "cluster=", 8) != 0 && strncmp(part, "result=", 7) != 0))
			return false;
		*eq = '\0';
		off += (size_t)snprintf(out + off, len - off, "%s%s=\"%s\"", off ? "," : "", part, eq + 1);
		if (off >= len)
			return false;
	}
	return true;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of o, sorted; caller frees the array (not the keys). */
static const char **sorted_keys(json_t *o, size_t *n)
{
	const char **keys = calloc(json_object_size(o) + 1, sizeof(*keys)), *key;
	json_t *v;

	*n = 0;
	if (!keys)
		return NULL;
	json_object_foreach(o, key, v)
	{
		keys[(*n)++] = key;
	}
	qsort(keys, *n, sizeof(*keys), by_name);
	return keys;
}

/* The shortest of %.15g and %.17g that reads back as v: a Unix time whole,
 * 0.35 as 0.35. */
static const char *number(double v, char out[32])
{
	snprintf(out, 32, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, 32, "%.17g", v);
	return out;
}

static void family_head(struct kc_buf *out, const char *name, const char *type, const char *help)
{
	kc_buf_printf(out, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name, type);
}

static int render_counters(json_t *root, const struct counter_family *f, struct kc_buf *out)
{
	json_t *family = json_object_get(json_object_get(root, "counters"), f->key);
	size_t n;
	kc_autofree const char **keys = sorted_keys(family, &n);

	if (!keys)
		return -1;
	family_head(out, f->key, "counter", f->help);
	for (size_t i = 0; i < n; i++) {
		char labels[200];

		if (labels_text(keys[i], labels, sizeof(labels)))
			kc_buf_printf(out, PREFIX "%s%s%s%s %lld\n", f->key, *labels ? "{" : "", labels,
				      *labels ? "}" : "",
				      (long long)json_integer_value(json_object_get(family, keys[i])));
	}
	return 0;
}

static int render_histogram(json_t *root, struct kc_buf *out)
{
	json_t *family = json_object_get(json_object_get(root, "histograms"), "mint_duration_seconds");
	size_t n;
	kc_autofree const char **keys = sorted_keys(family, &n);

	if (!keys)
		return -1;
	family_head(out, "mint_duration_seconds", "histogram",
		    "Time from a TokenRequest's start to its answer, by cluster.");
	for (size_t i = 0; i < n; i++) {
		json_t *h = json_object_get(family, keys[i]), *buckets = json_object_get(h, "buckets");
		long long total = 0;
		char labels[200], num[32];

		if (!labels_text(keys[i], labels, sizeof(labels)))
			continue;
		for (size_t b = 0; b < KC_METRICS_N_BUCKETS; b++) {
			char le[32] = "+Inf";

			total += json_integer_value(json_array_get(buckets, b));
			if (b < KC_METRICS_N_BUCKETS - 1)
				snprintf(le, sizeof(le), "%g", bucket_bounds[b]);
			kc_buf_printf(out, PREFIX "mint_duration_seconds_bucket{%s%sle=\"%s\"} %lld\n", labels,
				      *labels ? "," : "", le, total);
		}
		kc_buf_printf(out, PREFIX "mint_duration_seconds_sum{%s} %s\n", labels,
			      number(json_number_value(json_object_get(h, "sum")), num));
		kc_buf_printf(out, PREFIX "mint_duration_seconds_count{%s} %lld\n", labels,
			      (long long)json_integer_value(json_object_get(h, "count")));
	}
	return 0;
}

static void gauge(struct kc_buf *out, const char *name, const char *help, double v)
{
	char num[32];

	if (v < 0)
		return;
	family_head(out, name, "gauge", help);
	kc_buf_printf(out, PREFIX "%s %s\n", name, number(v, num));
}

static void render_gauges(json_t *root, const struct kc_metrics_gauges *g, struct kc_buf *out)
{
	json_t *t = json_object_get(root, "timestamps");

	gauge(out, "last_refresh_success_timestamp_seconds",
	      "When refresh last ran to its end (every user visited), in seconds since the epoch (0: never).",
	      (double)json_integer_value(json_object_get(t, "refresh")));
	gauge(out, "last_gc_success_timestamp_seconds",
	      "When gc last ran to its end (every user visited), in seconds since the epoch (0: never).",
	      (double)json_integer_value(json_object_get(t, "gc")));
	if (!g)
		return;
	gauge(out, "pending_revocations", "Revocations pending: Secrets of ours not yet confirmed deleted.",
	      (double)g->pending_revocations);
	gauge(out, "pending_revocation_oldest_age_seconds", "How long the oldest pending revocation has been pending.",
	      g->oldest_pending_seconds);
	gauge(out, "sessions", "Open login sessions held (the live index).", (double)g->sessions);
	gauge(out, "users", "Users with at least one open login session.", (double)g->users);
	gauge(out, "locked_users", "Users an administrator has locked out.", (double)g->locked_users);
}

/* The series every scrape should show, at 0 until they count. Best effort:
 * a metric at KC_METRICS_SERIES_MAX renders what it has. */
static void preset(json_t *root, const char *const *clusters, size_t n_clusters)
{
	static const json_int_t zero[KC_METRICS_N_BUCKETS] = { 0 };
	char key[160];

	for (size_t f = 0; f < sizeof(counter_families) / sizeof(counter_families[0]); f++) {
		const struct counter_family *cf = &counter_families[f];

		for (size_t c = 0; c < (cf->by_cluster ? n_clusters : 1); c++) {
			const int *r = cf->results; /* {-1}: one series without a result */

			do {
				if (series_key(cf->by_cluster ? clusters[c] : NULL, *r, key, sizeof(key)) == 0)
					add_counter(root, cf->key, key, 0);
			} while (*r++ >= 0 && *r >= 0);
		}
	}
	for (size_t c = 0; c < n_clusters; c++)
		if (series_key(clusters[c], -1, key, sizeof(key)) == 0)
			add_observations(root, key, zero, 0, 0);
}

int kc_metrics_render(const struct kc_metrics *m, const char *const *clusters, size_t n_clusters,
		      const struct kc_metrics_gauges *g, struct kc_buf *out, struct kc_err *err)
{
	json_t *root = json_deep_copy(m->root);
	int rc = -1;

	if (!root) {
		kc_seterr(err, "metrics: out of memory");
		goto out;
	}
	preset(root, clusters, n_clusters);
	for (size_t f = 0; f < sizeof(counter_families) / sizeof(counter_families[0]); f++)
		if (render_counters(root, &counter_families[f], out) < 0) {
			kc_seterr(err, "metrics: out of memory");
			goto out;
		}
	if (render_histogram(root, out) < 0) {
		kc_seterr(err, "metrics: out of memory");
		goto out;
	}
	render_gauges(root, g, out);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

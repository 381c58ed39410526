/* Unit tests for the metrics (lifecycle/metrics.h, metrics_textfile.h): the
 * exposition text exactly, counts added to the store by commits (also from
 * racing processes, none lost), the store's lock deadline, labels refused, and
 * the textfile directory walk: a symbolic link anywhere, a directory others may
 * write, or one not root's is refused, Debian's layout is accepted. Run as
 * root (the store and the textfile are root's; the walk needs chown).
 * KC_METRICS_SAMPLE=FILE also writes a rendered sample there (for promtool). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "lifecycle/metrics.h"
#include "lifecycle/metrics_textfile.h"

#define NOBODY 65534
#define CHILDREN 4
#define PER_CHILD 500

static char base[PATH_MAX];

/* A private directory whose parents are root's and writable by root alone
 * (the textfile walk refuses a world-writable parent, and so it should): under
 * /run as root, else beside the test binary. Not the clone's own tree, which
 * may sit in /tmp. */
static int setup(void **state)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	(void)state;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	if (geteuid() == 0)
		snprintf(base, sizeof(base), "/run/kc-test-metrics-XXXXXX");
	else
		snprintf(base, sizeof(base), "%s/metrics-XXXXXX", dirname(exe));
	if (!mkdtemp(base))
		return -1;
	kc_metrics_use_dir(base);
	return 0;
}

/* base/rel into out (PATH_MAX bytes). */
static const char *in_base(const char *rel, char *out)
{
	assert_true(snprintf(out, PATH_MAX, "%s/%s", base, rel) < PATH_MAX);
	return out;
}

static void remove_tree(int dir)
{
	DIR *d = fdopendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			remove_tree(sub);
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		} else {
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	if (d)
		closedir(d);
}

static int teardown(void **state)
{
	(void)state;
	remove_tree(open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	rmdir(base);
	kc_metrics_use_dir(NULL);
	return 0;
}

static const char expected[] =
	"# HELP pam_kubeconfig_logins_total Logins (PAM open_session) the helper handled, by result.\n"
	"# TYPE pam_kubeconfig_logins_total counter\n"
	"pam_kubeconfig_logins_total{result=\"failure\"} 1\n"
	"pam_kubeconfig_logins_total{result=\"ignored\"} 0\n"
	"pam_kubeconfig_logins_total{result=\"success\"} 2\n"
	"# HELP pam_kubeconfig_logouts_total Logouts (PAM close_session) the helper handled, by result.\n"
	"# TYPE pam_kubeconfig_logouts_total counter\n"
	"pam_kubeconfig_logouts_total{result=\"failure\"} 0\n"
	"pam_kubeconfig_logouts_total{result=\"ignored\"} 0\n"
	"pam_kubeconfig_logouts_total{result=\"success\"} 1\n"
	"# HELP pam_kubeconfig_mints_total Tokens minted for users (TokenRequest), by cluster and result.\n"
	"# TYPE pam_kubeconfig_mints_total counter\n"
	"pam_kubeconfig_mints_total{cluster=\"prod\",result=\"failure\"} 1\n"
	"pam_kubeconfig_mints_total{cluster=\"prod\",result=\"success\"} 2\n"
	"pam_kubeconfig_mints_total{cluster=\"staging\",result=\"failure\"} 0\n"
	"pam_kubeconfig_mints_total{cluster=\"staging\",result=\"success\"} 0\n"
	"# HELP pam_kubeconfig_revocations_total Revocations of a user's tokens (their Secret deleted), by cluster "
	"and result; expired: a pending one ended once every token bound to it had expired.\n"
	"# TYPE pam_kubeconfig_revocations_total counter\n"
	"pam_kubeconfig_revocations_total{cluster=\"prod\",result=\"expired\"} 1\n"
	"pam_kubeconfig_revocations_total{cluster=\"prod\",result=\"failure\"} 0\n"
	"pam_kubeconfig_revocations_total{cluster=\"prod\",result=\"success\"} 1\n"
	"pam_kubeconfig_revocations_total{cluster=\"staging\",result=\"expired\"} 0\n"
	"pam_kubeconfig_revocations_total{cluster=\"staging\",result=\"failure\"} 0\n"
	"pam_kubeconfig_revocations_total{cluster=\"staging\",result=\"success\"} 0\n"
	"# HELP pam_kubeconfig_connections_cut_total TCP connections to an API server cut after a user's access "
	"there ended, by cluster.\n"
	"# TYPE pam_kubeconfig_connections_cut_total counter\n"
	"pam_kubeconfig_connections_cut_total{cluster=\"prod\"} 3\n"
	"pam_kubeconfig_connections_cut_total{cluster=\"staging\"} 0\n"
	"# HELP pam_kubeconfig_mint_duration_seconds Time from a TokenRequest's start to its answer, by cluster.\n"
	"# TYPE pam_kubeconfig_mint_duration_seconds histogram\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"0.05\"} 1\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"0.1\"} 1\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"0.25\"} 1\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"0.5\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"1\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"2.5\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"5\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"10\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"prod\",le=\"+Inf\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_sum{cluster=\"prod\"} 0.35\n"
	"pam_kubeconfig_mint_duration_seconds_count{cluster=\"prod\"} 2\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"0.05\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"0.1\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"0.25\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"0.5\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"1\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"2.5\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"5\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"10\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_bucket{cluster=\"staging\",le=\"+Inf\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_sum{cluster=\"staging\"} 0\n"
	"pam_kubeconfig_mint_duration_seconds_count{cluster=\"staging\"} 0\n"
	"# HELP pam_kubeconfig_last_refresh_success_timestamp_seconds When refresh last ran to its end (every user "
	"visited), in seconds since the epoch (0: never).\n"
	"# TYPE pam_kubeconfig_last_refresh_success_timestamp_seconds gauge\n"
	"pam_kubeconfig_last_refresh_success_timestamp_seconds 1767225600\n"
	"# HELP pam_kubeconfig_last_gc_success_timestamp_seconds When gc last ran to its end (every user visited), in "
	"seconds since the epoch (0: never).\n"
	"# TYPE pam_kubeconfig_last_gc_success_timestamp_seconds gauge\n"
	"pam_kubeconfig_last_gc_success_timestamp_seconds 0\n"
	"# HELP pam_kubeconfig_pending_revocations Revocations pending: Secrets of ours not yet confirmed deleted.\n"
	"# TYPE pam_kubeconfig_pending_revocations gauge\n"
	"pam_kubeconfig_pending_revocations 2\n"
	"# HELP pam_kubeconfig_pending_revocation_oldest_age_seconds How long the oldest pending revocation has "
	"been pending.\n"
	"# TYPE pam_kubeconfig_pending_revocation_oldest_age_seconds gauge\n"
	"pam_kubeconfig_pending_revocation_oldest_age_seconds 930.5\n"
	"# HELP pam_kubeconfig_sessions Open login sessions held (the live index).\n"
	"# TYPE pam_kubeconfig_sessions gauge\n"
	"pam_kubeconfig_sessions 5\n"
	"# HELP pam_kubeconfig_users Users with at least one open login session.\n"
	"# TYPE pam_kubeconfig_users gauge\n"
	"pam_kubeconfig_users 3\n"
	"# HELP pam_kubeconfig_locked_users Users an administrator has locked out.\n"
	"# TYPE pam_kubeconfig_locked_users gauge\n"
	"pam_kubeconfig_locked_users 0\n";

static const char *const clusters[] = { "prod", "staging" };
static const struct kc_metrics_gauges gauges = {
	.pending_revocations = 2, .oldest_pending_seconds = 930.5, .sessions = 5, .users = 3, .locked_users = 0
};

/* The counts behind `expected`, split over two batches when two is set. */
static void count(struct kc_metrics *a, struct kc_metrics *b)
{
	assert_int_equal(kc_metrics_login(a, KC_METRICS_SUCCESS), 0);
	assert_int_equal(kc_metrics_login(b, KC_METRICS_SUCCESS), 0);
	assert_int_equal(kc_metrics_login(a, KC_METRICS_FAILURE), 0);
	assert_int_equal(kc_metrics_logout(b, KC_METRICS_SUCCESS), 0);
	assert_int_equal(kc_metrics_mint(a, "prod", KC_METRICS_SUCCESS, 0.3), 0);
	assert_int_equal(kc_metrics_mint(b, "prod", KC_METRICS_FAILURE, -1), 0); /* no request made */
	assert_int_equal(kc_metrics_mint(b, "prod", KC_METRICS_SUCCESS, 0.05), 0); /* le is inclusive */
	assert_int_equal(kc_metrics_revocation(a, "prod", KC_METRICS_SUCCESS), 0);
	assert_int_equal(kc_metrics_revocation(b, "prod", KC_METRICS_EXPIRED), 0);
	assert_int_equal(kc_metrics_cut(a, "prod", 1), 0);
	assert_int_equal(kc_metrics_cut(b, "prod", 2), 0);
	assert_int_equal(kc_metrics_job_done(a, KC_METRICS_REFRESH, 1767225600), 0);
	assert_int_equal(kc_metrics_job_done(b, KC_METRICS_REFRESH, 1767225540), 0); /* older: the latest stays */
}

static void test_render_exact(void **state)
{
	struct kc_metrics *m = kc_metrics_new();
	kc_autobuf struct kc_buf out = { 0 };
	struct kc_err err;
	const char *sample = getenv("KC_METRICS_SAMPLE");

	(void)state;
	assert_non_null(m);
	count(m, m);
	assert_int_equal(kc_metrics_render(m, clusters, 2, &gauges, &out, &err), 0);
	assert_string_equal(out.data, expected);
	if (sample) {
		FILE *f = fopen(sample, "we");

		assert_non_null(f);
		assert_int_equal(fputs(out.data, f) >= 0, 1);
		assert_int_equal(fclose(f), 0);
	}
	kc_metrics_free(m);
}

static void test_labels_refused(void **state)
{
	struct kc_metrics *m = kc_metrics_new();
	kc_autobuf struct kc_buf out = { 0 };
	struct kc_err err;
	char name[80];

	(void)state;
	assert_int_equal(kc_metrics_mint(m, "pr od", KC_METRICS_SUCCESS, 1), -1);
	assert_int_equal(kc_metrics_mint(m, "prod\"} 1\nevil", KC_METRICS_SUCCESS, 1), -1);
	assert_int_equal(kc_metrics_revocation(m, "", KC_METRICS_SUCCESS), -1);
	assert_int_equal(kc_metrics_revocation(m, NULL, KC_METRICS_SUCCESS), -1);
	assert_int_equal(kc_metrics_cut(m, "a,result=b", 1), -1);
	assert_int_equal(kc_metrics_login(m, KC_METRICS_N_RESULTS), -1);
	assert_int_equal(kc_metrics_job_done(m, (enum kc_metrics_job)7, 1), -1);
	memset(name, 'a', 65);
	name[65] = '\0';
	assert_int_equal(kc_metrics_revocation(m, name, KC_METRICS_SUCCESS), -1);
	/* A bounded number of series per metric. */
	for (int i = 0; i < KC_METRICS_SERIES_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(kc_metrics_cut(m, name, 1), 0);
	}
	assert_int_equal(kc_metrics_cut(m, "one-more", 1), -1);
	assert_int_equal(kc_metrics_cut(m, "c7", 1), 0); /* an existing series still counts */
	assert_int_equal(kc_metrics_render(m, NULL, 0, NULL, &out, &err), 0);
	assert_non_null(strstr(out.data, "pam_kubeconfig_connections_cut_total{cluster=\"c7\"} 2\n"));
	assert_null(strstr(out.data, "pam_kubeconfig_pending_revocations")); /* no gauges given */
	kc_metrics_free(m);
}

static void commit(struct kc_metrics *m)
{
	struct kc_err err;

	assert_int_equal(kc_metrics_commit(m, kc_now_ms() + 5000, &err), 0);
	kc_metrics_free(m);
}

static void test_store(void **state)
{
	struct kc_metrics *a = kc_metrics_new(), *b = kc_metrics_new(), *loaded;
	kc_autobuf struct kc_buf out = { 0 };
	struct kc_err err;
	struct stat st;
	char p[PATH_MAX];

	(void)state;
	assert_int_equal(geteuid(), 0); /* the store is root's */
	assert_int_equal(kc_metrics_load(&loaded, &err), 0); /* no store yet: all zero */
	assert_int_equal(kc_metrics_render(loaded, NULL, 0, NULL, &out, &err), 0);
	assert_non_null(strstr(out.data, "pam_kubeconfig_logins_total{result=\"success\"} 0\n"));
	kc_metrics_free(loaded);
	count(a, b);
	commit(a);
	commit(b);
	commit(kc_metrics_new()); /* nothing counted: nothing written */
	assert_int_equal(kc_metrics_load(&loaded, &err), 0);
	kc_buf_free(&out);
	assert_int_equal(kc_metrics_render(loaded, clusters, 2, &gauges, &out, &err), 0);
	assert_string_equal(out.data, expected); /* two commits add up to one batch */
	kc_metrics_free(loaded);
	in_base(KC_METRICS_STORE, p);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	/* A store that is not JSON starts again from zero rather than stop counting. */
	{
		const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };
		int dir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct kc_metrics *c = kc_metrics_new();

		assert_int_equal(kc_write_at(dir, KC_METRICS_STORE, "{\"counters\":", 12, &o, &err), 0);
		close(dir);
		assert_int_equal(kc_metrics_login(c, KC_METRICS_IGNORED), 0);
		commit(c);
	}
	assert_int_equal(kc_metrics_load(&loaded, &err), 0);
	kc_buf_free(&out);
	assert_int_equal(kc_metrics_render(loaded, NULL, 0, NULL, &out, &err), 0);
	assert_non_null(strstr(out.data, "pam_kubeconfig_logins_total{result=\"ignored\"} 1\n"));
	assert_non_null(strstr(out.data, "pam_kubeconfig_logins_total{result=\"success\"} 0\n"));
	kc_metrics_free(loaded);
}

/* Logins racing: every count lands, and the commits did overlap in time. */
static void test_concurrent_commits(void **state)
{
	int go[2], times[2];
	pid_t pids[CHILDREN];
	long long latest_start = 0, earliest_end = LLONG_MAX;
	struct kc_metrics *loaded;
	kc_autobuf struct kc_buf out = { 0 };
	struct kc_err err;
	char want[128];

	(void)state;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(times), 0);
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			long long t[2];
			char b;
			int bad = 0;

			close(go[1]);
			if (read(go[0], &b, 1) < 0)
				_exit(2);
			t[0] = kc_now_ms();
			for (int i = 0; i < PER_CHILD; i++) {
				struct kc_metrics *m = kc_metrics_new();

				bad |= !m || kc_metrics_login(m, KC_METRICS_SUCCESS) < 0 ||
				       kc_metrics_commit(m, kc_now_ms() + 5000, &err) < 0;
				kc_metrics_free(m);
			}
			t[1] = kc_now_ms();
			bad |= write(times[1], t, sizeof(t)) < 0;
			_exit(bad);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int c = 0; c < CHILDREN; c++) {
		long long t[2];
		int status;

		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_int_equal(read(times[0], t, sizeof(t)), (ssize_t)sizeof(t));
		latest_start = t[0] > latest_start ? t[0] : latest_start;
		earliest_end = t[1] < earliest_end ? t[1] : earliest_end;
	}
	close(times[0]);
	close(times[1]);
	assert_true(latest_start < earliest_end); /* they raced */
	assert_int_equal(kc_metrics_load(&loaded, &err), 0);
	assert_int_equal(kc_metrics_render(loaded, NULL, 0, NULL, &out, &err), 0);
	snprintf(want, sizeof(want), "pam_kubeconfig_logins_total{result=\"success\"} %d\n", CHILDREN * PER_CHILD);
	assert_non_null(strstr(out.data, want));
	kc_metrics_free(loaded);
}

static void test_lock_deadline(void **state)
{
	struct kc_metrics *m = kc_metrics_new();
	struct kc_err err;
	char p[PATH_MAX];
	long long t0;
	int fd;

	(void)state;
	in_base(KC_METRICS_STORE, p);
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(kc_metrics_login(m, KC_METRICS_SUCCESS), 0);
	t0 = kc_now_ms();
	assert_int_equal(kc_metrics_commit(m, t0 + 100, &err), -1);
	assert_true(kc_now_ms() - t0 < 600); /* a login is not held up */
	assert_non_null(strstr(err.msg, "busy"));
	close(fd);
	assert_int_equal(kc_metrics_commit(m, kc_now_ms() + 1000, &err), 0);
	kc_metrics_free(m);
}

/* ---- the textfile directory ------------------------------------------------------ */

static void mkdir_as(const char *rel, mode_t mode, uid_t owner)
{
	char p[PATH_MAX];

	in_base(rel, p);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0); /* whatever the umask */
	assert_int_equal(chown(p, owner, 0), 0);
}

static void link_at(const char *rel, const char *target)
{
	char p[PATH_MAX];

	in_base(rel, p);
	assert_int_equal(symlink(target, p), 0);
}

/* Writes into base/rel; 0 or -1 with err. */
static int write_to(const char *rel, struct kc_err *err)
{
	char p[PATH_MAX];

	in_base(rel, p);
	return kc_metrics_textfile_write(p, "x 1\n", 4, err);
}

static void refused(const char *rel, const char *why)
{
	struct kc_err err;

	assert_int_equal(write_to(rel, &err), -1);
	if (!strstr(err.msg, why))
		fail_msg("%s: \"%s\" does not say \"%s\"", rel, err.msg, why);
}

static void test_textfile_dir(void **state)
{
	struct kc_err err;
	struct stat st;
	char p[PATH_MAX], target[PATH_MAX];
	int fd;

	(void)state;
	assert_int_equal(geteuid(), 0); /* chown to build the tree; the file is root's */
	/* Debian's layout: a parent the exporter's user owns, writable by it alone. */
	mkdir_as("prometheus", 0755, NOBODY);
	mkdir_as("prometheus/node-exporter", 0755, 0);
	assert_int_equal(write_to("prometheus/node-exporter", &err), 0);
	in_base("prometheus/node-exporter/" KC_METRICS_TEXTFILE, p);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_uid, 0);
	/* A link where the file goes is replaced, not followed. */
	in_base("victim", target);
	fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(write_to("prometheus/node-exporter", &err), 0);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* A symbolic link anywhere on the way. */
	link_at("exporter-link", "prometheus/node-exporter");
	refused("exporter-link", "is a symbolic link");
	link_at("parent-link", "prometheus");
	refused("parent-link/node-exporter", "is a symbolic link");
	/* Writable by others: the directory, or a parent (root's or not). */
	mkdir_as("group-writable", 0775, 0);
	refused("group-writable", "writable by group or others");
	mkdir_as("world", 0777, 0);
	mkdir_as("world/node-exporter", 0755, 0);
	refused("world/node-exporter", "world is writable by group or others");
	mkdir_as("sticky", 01777, 0);
	mkdir_as("sticky/node-exporter", 0755, 0);
	refused("sticky/node-exporter", "writable by group or others");
	mkdir_as("prometheus/group", 0770, NOBODY);
	mkdir_as("prometheus/group/node-exporter", 0755, 0);
	refused("prometheus/group/node-exporter", "writable by group or others");
	/* The directory itself must be root's. */
	mkdir_as("prometheus/mine", 0755, NOBODY);
	refused("prometheus/mine", "owned by uid 65534");
	/* Not a directory, missing, relative, or with a .. in it. */
	refused("victim", "is not a directory");
	refused("missing", "does not exist");
	refused("prometheus/../prometheus/node-exporter", ". or .. components");
	assert_int_equal(kc_metrics_textfile_write("var/lib/prometheus", "", 0, &err), -1);
	assert_non_null(strstr(err.msg, "absolute path"));
	/* The walk alone (what `check` runs). */
	in_base("prometheus//node-exporter/", p);
	fd = kc_metrics_textfile_open_dir(p, &err);
	assert_true(fd >= 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_labels_refused),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_textfile_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

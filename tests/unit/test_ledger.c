/* Unit tests for the root ledger (lifecycle/ledger.h, ledger_read.h): the line
 * format, appends read back, a torn tail closed by the next append and skipped
 * by the reader, appends from racing processes never interleaved, a failed
 * write that leaves no partial line, the lock's deadline, and the rotations
 * (.1, .N.gz, dateext) read oldest first. Run as root (the ledger is root's). */
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
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/subprocess.h"
#include "lifecycle/ledger.h"
#include "lifecycle/ledger_read.h"

#define CHILDREN 8
#define PER_CHILD 150

static char dir[PATH_MAX];

/* A private directory beside the test binary (not /tmp: the ledger's must not
 * be writable by others, and neither are the build tree's). */
static int setup(void **state)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	(void)state;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s/ledger-XXXXXX", dirname(exe));
	if (!mkdtemp(dir))
		return -1;
	kc_ledger_use_dir(dir);
	return 0;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	(void)state;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
	kc_ledger_use_dir(NULL);
	return 0;
}

static void path_of(const char *name, char *out, size_t len)
{
	assert_true(snprintf(out, len, "%s/%s", dir, name) < (int)len);
}

static void write_file(const char *name, const char *data, mode_t mode)
{
	char p[PATH_MAX];
	int fd;

	path_of(name, p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static char *slurp(const char *name)
{
	static char buf[1 << 16];
	char p[PATH_MAX];
	int fd;
	ssize_t n;

	path_of(name, p, sizeof(p));
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static int append_seq_err(long seq, const char *user, struct kc_err *err)
{
	json_t *detail = json_pack("{s:I}", "seq", (json_int_t)seq);
	const struct kc_ledger_entry e = { .time = 1767225600,
					   .host = "bastion-1",
					   .event = KC_LEDGER_ROTATION,
					   .user = user,
					   .uid = 1001,
					   .cluster = "prod",
					   .detail = detail };
	int rc = kc_ledger_append(&e, kc_now_ms() + 5000, err), saved = errno;

	json_decref(detail);
	errno = saved;
	return rc;
}

static int append_seq(long seq, const char *user)
{
	struct kc_err err;

	return append_seq_err(seq, user, &err);
}

/* What a read hands on, gathered. */
struct seen {
	long seq[CHILDREN * PER_CHILD + 16];
	size_t n;
	char first_user[64];
	size_t first_sessions;
	char first_rhost[64];
	time_t first_exp;
};

static int gather(const struct kc_ledger_entry *e, const struct kc_ledger_where *w, void *arg)
{
	struct seen *s = arg;

	assert_non_null(w->file);
	assert_true(w->line > 0);
	if (s->n == 0) {
		snprintf(s->first_user, sizeof(s->first_user), "%s", e->user ? e->user : "(none)");
		s->first_sessions = e->n_sessions;
		snprintf(s->first_rhost, sizeof(s->first_rhost), "%s",
			 e->n_sessions && e->sessions[0].rhost ? e->sessions[0].rhost : "(none)");
		s->first_exp = e->exp;
	}
	if (s->n < sizeof(s->seq) / sizeof(s->seq[0]))
		s->seq[s->n++] = (long)json_integer_value(json_object_get(e->detail, "seq"));
	return 0;
}

static void test_format(void **state)
{
	const struct kc_ledger_session sessions[] = { { "s1", "10.0.0.7" }, { "s2", NULL } };
	json_t *detail = json_pack("{s:s,s:b}", "lifetime", "15m", "shortened", 0);
	const struct kc_ledger_entry e = { .time = 1767225600,
					   .host = "bastion-1",
					   .event = KC_LEDGER_MINT,
					   .user = "al\xff"
						   "ice",
					   .uid = 1001,
					   .sessions = sessions,
					   .n_sessions = 2,
					   .cluster = "prod",
					   .serviceaccount = "team-a/alice",
					   .secret = "team-a/pam-kubeconfig-0123",
					   .jti = "j-1",
					   .exp = 1767226500,
					   .reason = "login",
					   .detail = detail };
	const struct kc_ledger_entry clash = { .event = KC_LEDGER_CUT, .detail = json_object_get(detail, "nope") };
	kc_autobuf struct kc_buf out = { 0 };
	struct kc_err err;
	json_t *bad = json_pack("{s:s}", "jti", "forged");

	(void)state;
	assert_int_equal(kc_ledger_format(&e, &out, &err), 0);
	assert_string_equal(
		out.data,
		"{\"time\":\"2026-01-01T00:00:00Z\",\"host\":\"bastion-1\",\"event\":\"mint\",\"user\":\"al?ice\","
		"\"uid\":1001,\"sessions\":[{\"id\":\"s1\",\"rhost\":\"10.0.0.7\"},{\"id\":\"s2\",\"rhost\":\"-\"}],"
		"\"cluster\":\"prod\",\"serviceaccount\":\"team-a/alice\",\"secret\":\"team-a/pam-kubeconfig-0123\","
		"\"jti\":\"j-1\",\"exp\":\"2026-01-01T00:15:00Z\",\"reason\":\"login\",\"lifetime\":\"15m\","
		"\"shortened\":false}\n");
	kc_buf_free(&out);
	assert_int_equal(kc_ledger_format(&clash, &out, &err), 0); /* no user: no uid */
	assert_null(strstr(out.data, "uid"));
	assert_non_null(strstr(out.data, "\"event\":\"cut\""));
	kc_buf_free(&out);
	/* Detail never overrides a field of the line's own. */
	{
		const struct kc_ledger_entry forged = { .event = KC_LEDGER_MINT, .jti = "real", .detail = bad };

		assert_int_equal(kc_ledger_format(&forged, &out, &err), -1);
		assert_non_null(strstr(err.msg, "jti"));
	}
	assert_string_equal(kc_ledger_event_name(KC_LEDGER_REVOKE_FAILED), "revoke-failed");
	assert_int_equal(kc_ledger_event_parse("unlock"), KC_LEDGER_UNLOCK);
	assert_int_equal(kc_ledger_event_parse("mint "), -1);
	json_decref(bad);
	json_decref(detail);
}

static void test_append_and_read(void **state)
{
	const struct kc_ledger_session sessions[] = { { "s1", "10.0.0.7" } };
	const struct kc_ledger_entry e = { .event = KC_LEDGER_MINT,
					   .user = "alice",
					   .uid = 1001,
					   .sessions = sessions,
					   .n_sessions = 1,
					   .cluster = "prod",
					   .jti = "j-1",
					   .exp = 1767226500 };
	struct kc_ledger_stats stats;
	struct seen s = { 0 };
	struct kc_err err;
	struct stat st;
	char p[PATH_MAX];

	(void)state;
	assert_int_equal(geteuid(), 0); /* the ledger and its checks are root's */
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0); /* none yet */
	assert_int_equal(stats.records, 0);
	assert_int_equal(kc_ledger_append(&e, kc_now_ms() + 5000, &err), 0);
	assert_int_equal(append_seq(2, "bob"), 0);
	path_of(KC_LEDGER_NAME, p, sizeof(p));
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 2);
	assert_int_equal(stats.skipped, 0);
	assert_int_equal(stats.files, 1);
	assert_string_equal(s.first_user, "alice");
	assert_int_equal(s.first_sessions, 1);
	assert_string_equal(s.first_rhost, "10.0.0.7");
	assert_int_equal(s.first_exp, 1767226500);
	assert_int_equal(s.seq[1], 2);
	/* The same file named by its path. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(kc_ledger_read(p, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 2);
}

static void test_torn_tail(void **state)
{
	struct kc_ledger_stats stats;
	struct seen s = { 0 };
	struct kc_err err;
	const char *torn = "{\"time\":\"2026-01-01T00:00:00Z\",\"host\":\"b\",\"event\":\"mint\",\"user\":\"mallo";
	char *text, *at;

	(void)state;
	assert_int_equal(append_seq(1, "alice"), 0);
	/* What a write cut short leaves: a line without its end. */
	write_file(KC_LEDGER_NAME, torn, 0600);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 1);
	assert_int_equal(stats.skipped, 1); /* the torn tail is no record */
	assert_int_equal(append_seq(2, "alice"), 0);
	text = slurp(KC_LEDGER_NAME);
	at = strstr(text, torn);
	assert_non_null(at);
	/* The torn line was closed: the next record starts on a line of its own. */
	assert_int_equal(at[strlen(torn)], '\n');
	assert_memory_equal(at + strlen(torn) + 1, "{\"time\":", 8);
	memset(&s, 0, sizeof(s));
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 2);
	assert_int_equal(stats.skipped, 1);
	assert_int_equal(s.seq[0], 1);
	assert_int_equal(s.seq[1], 2);
	/* Lines that are not records are skipped too, and counted. */
	write_file(KC_LEDGER_NAME, "not json\n{\"time\":\"x\",\"host\":\"b\",\"event\":\"mint\"}\n[1]\n", 0600);
	write_file(KC_LEDGER_NAME, "{\"time\":\"2026-01-01T00:00:00Z\",\"host\":\"b\",\"event\":\"forged\"}\n", 0600);
	write_file(KC_LEDGER_NAME,
		   "{\"time\":\"2026-01-01T00:00:00Z\",\"host\":\"b\",\"host\":\"c\",\"event\":\"mint\"}\n", 0600);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 2);
	assert_int_equal(stats.skipped, 6);
}

/* Appends racing from several processes: every line whole, none lost, each
 * process's in its order; the processes' appends overlapped in time. */
static void test_concurrent_appends(void **state)
{
	int go[2], times[2];
	pid_t pids[CHILDREN];
	long long start[CHILDREN], end[CHILDREN], latest_start = 0, earliest_end = LLONG_MAX;
	struct kc_ledger_stats stats;
	static struct seen s;
	struct kc_err err;
	long next[CHILDREN] = { 0 };

	(void)state;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(times), 0);
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			char b;
			long long t[2];
			int bad = 0;

			close(go[1]);
			if (read(go[0], &b, 1) < 0) /* all start together */
				_exit(2);
			t[0] = kc_now_ms();
			for (long i = 0; i < PER_CHILD; i++)
				bad |= append_seq(c * 100000 + i, "alice") != 0;
			t[1] = kc_now_ms();
			bad |= write(times[1], (long long[3]){ c, t[0], t[1] }, 3 * sizeof(long long)) < 0;
			_exit(bad);
		}
	}
	close(go[0]);
	close(go[1]); /* the start */
	for (int c = 0; c < CHILDREN; c++) {
		int status;
		long long t[3];

		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_int_equal(read(times[0], t, sizeof(t)), (ssize_t)sizeof(t));
		start[t[0]] = t[1];
		end[t[0]] = t[2];
	}
	close(times[0]);
	close(times[1]);
	for (int c = 0; c < CHILDREN; c++) {
		latest_start = start[c] > latest_start ? start[c] : latest_start;
		earliest_end = end[c] < earliest_end ? end[c] : earliest_end;
	}
	/* Had they not overlapped, the test would have shown nothing. */
	assert_true(latest_start < earliest_end);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.skipped, 0);
	assert_int_equal(stats.records, CHILDREN * PER_CHILD);
	for (size_t i = 0; i < s.n; i++) {
		long c = s.seq[i] / 100000, k = s.seq[i] % 100000;

		assert_true(c >= 0 && c < CHILDREN);
		assert_int_equal(k, next[c]); /* in order, none twice, none lost */
		next[c]++;
	}
}

/* A write the kernel cuts short (here a file-size limit, as a full disk
 * would): the append fails with the kernel's reason and leaves no partial
 * line; the next append, with room, is whole. */
static void test_failed_write(void **state)
{
	struct kc_ledger_stats stats;
	struct seen s = { 0 };
	struct kc_err err;
	char p[PATH_MAX];
	struct stat before, after;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(append_seq(1, "alice"), 0);
	path_of(KC_LEDGER_NAME, p, sizeof(p));
	assert_int_equal(stat(p, &before), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit lim = { (rlim_t)before.st_size + 40, RLIM_INFINITY };

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
			_exit(3);
		_exit(append_seq_err(2, "alice", &err) == -1 && errno == EFBIG && strstr(err.msg, "File too large")
			      ? 0
			      : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(after.st_size, before.st_size); /* cut back: nothing partial */
	assert_int_equal(append_seq(3, "alice"), 0);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.records, 2);
	assert_int_equal(stats.skipped, 0);
	assert_int_equal(s.seq[1], 3);
}

static void test_lock_deadline(void **state)
{
	char p[PATH_MAX];
	struct kc_err err;
	struct stat st;
	long long t0;
	int fd;

	(void)state;
	assert_int_equal(append_seq(1, "alice"), 0);
	path_of(KC_LEDGER_LOCK_NAME, p, sizeof(p));
	fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	t0 = kc_now_ms();
	{
		const struct kc_ledger_entry e = { .event = KC_LEDGER_LOCK, .user = "alice", .uid = 1001 };

		assert_int_equal(kc_ledger_append(&e, t0 + 200, &err), -1);
		assert_int_equal(errno, ETIMEDOUT);
		assert_non_null(strstr(err.msg, "lock"));
	}
	assert_true(kc_now_ms() - t0 >= 190);
	assert_true(kc_now_ms() - t0 < 1000); /* never waits past its deadline */
	path_of(KC_LEDGER_NAME, p, sizeof(p));
	assert_int_equal(stat(p, &st), 0);
	assert_null(strstr(slurp(KC_LEDGER_NAME), "\"lock\""));
	close(fd);
	assert_int_equal(append_seq(2, "alice"), 0);
}

/* The ledger is not followed through a link nor kept where others may write. */
static void test_refused(void **state)
{
	char p[PATH_MAX], target[PATH_MAX];
	struct kc_err err;

	(void)state;
	path_of("elsewhere", target, sizeof(target));
	path_of(KC_LEDGER_NAME, p, sizeof(p));
	write_file("elsewhere", "", 0600);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(append_seq_err(1, "alice", &err), -1);
	assert_string_equal(slurp("elsewhere"), ""); /* nothing written through the link */
	unlink(p);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(append_seq_err(1, "alice", &err), -1);
	assert_non_null(strstr(err.msg, "must be a directory owned by root"));
	assert_int_equal(chmod(dir, 0750), 0);
	assert_int_equal(append_seq(1, "alice"), 0);
	write_file("ledger.jsonl.1", "", 0600); /* a rotation others may write: not trusted */
	path_of("ledger.jsonl.1", p, sizeof(p));
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(kc_ledger_read(NULL, gather, &(struct seen){ 0 }, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "ledger.jsonl.1"));
}

static void gzip_file(const char *name)
{
	char p[PATH_MAX];
	static char a0[] = "gzip", a1[] = "-n";
	char *const argv[] = { a0, a1, p, NULL };
	const struct kc_subprocess sp = { .path = "/bin/gzip", .argv = argv, .timeout_ms = 10000 };
	struct kc_subprocess_result res;

	path_of(name, p, sizeof(p));
	assert_int_equal(kc_subprocess_run(&sp, NULL, &res), 0);
	assert_int_equal(res.exit_status, 0);
}

/* Rotations as logrotate leaves them, plus names that are not ours. */
static void test_rotations(void **state)
{
	static const struct {
		const char *name;
		long first, last;
		bool gz;
	} files[] = {
		{ "ledger.jsonl-20250101", 1, 2, true }, /* dateext, oldest */
		{ "ledger.jsonl.3", 3, 4, true },	 { "ledger.jsonl.2", 5, 6, true },
		{ "ledger.jsonl.1", 7, 8, false }, /* delaycompress: the newest rotation stays plain */
		{ "ledger.jsonl", 9, 10, false },
	};
	struct kc_ledger_stats stats;
	static struct seen s;
	struct kc_err err;

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		for (long i = files[f].first; i <= files[f].last; i++)
			assert_int_equal(append_seq(i, "alice"), 0);
		if (strcmp(files[f].name, KC_LEDGER_NAME) != 0) {
			char from[PATH_MAX], to[PATH_MAX];

			path_of(KC_LEDGER_NAME, from, sizeof(from));
			path_of(files[f].name, to, sizeof(to));
			assert_int_equal(rename(from, to), 0); /* as logrotate does */
			if (files[f].gz)
				gzip_file(files[f].name);
		}
	}
	/* gzip at work on .1: both names; the plain one is read, once. */
	write_file("ledger.jsonl.1.gz", "partial", 0600);
	write_file("ledger.jsonl.old", "{}\n", 0600);
	write_file("other.jsonl.1", "{}\n", 0600);
	assert_int_equal(kc_ledger_read(NULL, gather, &s, &stats, &err), 0);
	assert_int_equal(stats.files, 5);
	assert_int_equal(stats.skipped, 0);
	assert_int_equal(s.n, 10);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.seq[i], (long)i + 1); /* oldest first */
	/* A .gz that is not gzip is an error naming it, not silence. */
	write_file("ledger.jsonl.4.gz", "not gzip", 0600);
	assert_int_equal(kc_ledger_read(NULL, gather, &(struct seen){ 0 }, &stats, &err), -1);
	assert_non_null(strstr(err.msg, "ledger.jsonl.4.gz"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotations, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for durations, times, base64, root-file reads and log lines. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/util.h"

/* refresh's children share its stderr: each line is one write, whole, or a
 * reader (journald, the module) gets two lines spliced into one. */
static void test_log_lines_do_not_interleave(void **state)
{
	enum { WRITERS = 6, LINES = 400 };
	int fds[2];
	FILE *in;
	char line[512];
	unsigned n = 0, bad = 0;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	for (int w = 0; w < WRITERS; w++) {
		if (fork() == 0) {
			dup2(fds[1], 2);
			close(fds[0]);
			for (int i = 0; i < LINES; i++)
				kc_error("uid %d: cluster c%d: skipped: it failed less than 30s ago "
					 "(network.after_failure)",
					 w, i);
			_exit(0);
		}
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		n++;
		bad += strncmp(line, "pam-kubeconfig: error: uid ", 27) != 0 ||
		       strstr(line + 1, "pam-kubeconfig") != NULL;
	}
	fclose(in);
	while (wait(NULL) > 0)
		;
	assert_int_equal(n, WRITERS * LINES);
	assert_int_equal(bad, 0);
}

static void test_durations(void **state)
{
	long s;
	int pct;
	char buf[32];

	(void)state;
	assert_int_equal(kc_parse_duration("8h", &s), 0);
	assert_int_equal(s, 28800);
	assert_int_equal(kc_parse_duration("1h30m", &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(kc_parse_duration("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(kc_parse_duration("", &s), -1);
	assert_int_equal(kc_parse_duration("8", &s), -1);
	assert_int_equal(kc_parse_duration("8d", &s), -1);
	assert_int_equal(kc_parse_duration("-1h", &s), -1);
	assert_int_equal(kc_parse_duration("99999999999999999999h", &s), -1);
	assert_int_equal(kc_parse_percent("20%", &pct), 0);
	assert_int_equal(pct, 20);
	assert_int_equal(kc_parse_percent("100%", &pct), -1);
	kc_format_duration(5400, buf, sizeof(buf));
	assert_string_equal(buf, "1h30m");
	kc_format_duration(86400, buf, sizeof(buf));
	assert_string_equal(buf, "24h");
}

static void test_times(void **state)
{
	time_t t;
	char buf[32];

	(void)state;
	assert_int_equal(kc_parse_time("2026-11-29T08:00:00Z", &t), 0);
	kc_format_time(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-29T08:00:00Z");
	assert_int_equal(kc_parse_time("2026-11-29T10:00:00+02:00", &t), 0);
	kc_format_time(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-29T08:00:00Z");
	assert_int_equal(kc_parse_time("2026-11-29T08:00:00.123Z", &t), 0);
	assert_int_equal(kc_parse_time("yesterday", &t), -1);
	assert_int_equal(kc_parse_time("2026-11-29T08:00:00Zjunk", &t), -1);
}

static void test_base64(void **state)
{
	unsigned char *raw;
	size_t n;
	char *s;

	(void)state;
	s = kc_base64_encode("hi?>", 4, false);
	assert_string_equal(s, "aGk/Pg==");
	free(s);
	s = kc_base64_encode("hi?>", 4, true);
	assert_string_equal(s, "aGk_Pg");
	free(s);
	assert_int_equal(kc_base64_decode("aGk/Pg==", 8, &raw, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(raw, "hi?>", 4);
	free(raw);
	assert_int_equal(kc_base64_decode("a*b", 3, &raw, &n), -1);
}

static void test_root_file_checks(void **state)
{
	char path[] = "/tmp/kc-unit-XXXXXX";
	int fd = mkstemp(path);
	struct kc_buf b = { 0 };
	struct kc_err err;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "secret\n", 7), 7);
	close(fd);
	chmod(path, 0600);
	if (getuid() == 0) {
		assert_int_equal(kc_read_root_file(path, 100, 077, true, &b, &err), 0);
		assert_string_equal(b.data, "secret\n");
		assert_true(b.secret);
		kc_buf_free(&b);
		chmod(path, 0640);
		assert_int_equal(kc_read_root_file(path, 100, 077, true, &b, &err), -1);
		assert_non_null(strstr(err.msg, "must not be readable or writable by group or others"));
		chmod(path, 0600);
		assert_int_equal(kc_read_root_file(path, 3, 077, true, &b, &err), -1);
		assert_non_null(strstr(err.msg, "more than the 3 allowed"));
	} else {
		assert_int_equal(kc_read_root_file(path, 100, 077, true, &b, &err), -1);
		assert_non_null(strstr(err.msg, "must be owned by root"));
	}
	unlink(path);
}

/* kc_halves: every item once, by one of two threads when there are enough. */
struct counted {
	unsigned char *seen;
	pthread_t who[2];
	int n_who;
	pthread_mutex_t lock;
};

static void count_items(void *ctx, size_t from, size_t to)
{
	struct counted *c = ctx;
	pthread_t self = pthread_self();

	for (size_t i = from; i < to; i++)
		c->seen[i]++;
	pthread_mutex_lock(&c->lock);
	if (c->n_who < 2)
		c->who[c->n_who++] = self;
	pthread_mutex_unlock(&c->lock);
}

static void test_halves(void **state)
{
	const size_t sizes[] = { 0, 1, 511, 512, 10001 };

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		struct counted c = { .seen = calloc(n + 1, 1), .lock = PTHREAD_MUTEX_INITIALIZER };

		assert_non_null(c.seen);
		kc_halves(n, 512, count_items, &c);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(c.seen[i], 1);
		/* below the minimum, one call here; from it, two calls, one on another thread */
		assert_int_equal(c.n_who, n < 512 ? 1 : 2);
		if (n >= 512)
			assert_false(pthread_equal(c.who[0], c.who[1]));
		free(c.seen);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_lines_do_not_interleave),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_root_file_checks),
		cmocka_unit_test(test_halves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for refresh's verdicts (lifecycle/verdicts.h): a verdict holds only
 * under the same key, inside [since, until) and never past KC_VERDICT_MAX_S;
 * the key moves with the state directory and with what the mapping gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cache.h"
#include "config/config.h"
#include "lifecycle/verdicts.h"

static char dir[] = "/tmp/kc-verdicts-XXXXXX";

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	kc_cache_use_dir(dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static const char *key_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *key_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* One refresh that notes verdicts, then what the next one sees. */
static void test_hold_window_and_key(void **state)
{
	struct kc_verdicts *v = kc_verdicts_load();
	time_t now = time(NULL);

	(void)state;
	assert_non_null(v);
	assert_false(kc_verdicts_hold(v, 1001, key_a, now)); /* nothing stored yet */
	kc_verdicts_note(v, 1001, key_a, now, now + 100);
	kc_verdicts_note(v, 1002, key_a, now, 0); /* no token to rotate: the cap */
	kc_verdicts_note(v, 1003, key_a, now, now + 5000); /* past the cap: the cap */
	kc_verdicts_save(v);
	kc_verdicts_free(v);

	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 1001, key_a, now + 99));
	assert_false(kc_verdicts_hold(v, 1001, key_a, now + 100)); /* the rotation has come */
	assert_false(kc_verdicts_hold(v, 1001, key_b, now)); /* records or mapping changed */
	assert_false(kc_verdicts_hold(v, 1001, key_a, now - 1)); /* the clock went back */
	assert_true(kc_verdicts_hold(v, 1002, key_a, now + KC_VERDICT_MAX_S - 1));
	assert_false(kc_verdicts_hold(v, 1002, key_a, now + KC_VERDICT_MAX_S));
	assert_false(kc_verdicts_hold(v, 1003, key_a, now + KC_VERDICT_MAX_S));
	assert_false(kc_verdicts_hold(v, 1004, key_a, now));
	kc_verdicts_save(v); /* what held is carried over, with its own since and until */
	kc_verdicts_free(v);

	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 1001, key_a, now + 50));
	assert_false(kc_verdicts_hold(v, 1001, key_a, now + 100));
	kc_verdicts_free(v);
}

static void test_key_follows_directory_and_mapping(void **state)
{
	struct kc_cluster clusters[1] = { { .name = (char *)"c1" } };
	struct kc_config cfg = { .clusters = clusters, .n_clusters = 1, .refresh_before = 20, .host_id = (char *)"h" };
	char *groups[] = { (char *)"g1" };
	struct kc_identity id = { .name = (char *)"alice", .uid = 1001, .groups = groups, .n_groups = 1 };
	struct stat st = { .st_dev = 1, .st_ino = 2 };
	char k1[65], k2[65], k3[65], k4[65];

	(void)state;
	kc_verdict_key(&cfg, &id, true, &st, k1);
	kc_verdict_key(&cfg, &id, true, &st, k2);
	assert_string_equal(k1, k2);
	st.st_mtim.tv_nsec = 1; /* a record replaced */
	kc_verdict_key(&cfg, &id, true, &st, k3);
	assert_string_not_equal(k1, k3);
	kc_verdict_key(&cfg, &id, false, &st, k4); /* the account left scope */
	assert_string_not_equal(k3, k4);
	cfg.refresh_before = 99; /* the rotation point moved */
	kc_verdict_key(&cfg, &id, true, &st, k4);
	assert_string_not_equal(k3, k4);
}

/* A stored set with broken lines: each whole line is read on its own, the
 * rest are passed over (a cut last line among them). */
static void test_broken_lines_are_passed_over(void **state)
{
	char text[1024];
	time_t now = time(NULL);
	struct kc_verdicts *v;
	struct kc_err e;

	(void)state;
	snprintf(text, sizeof(text),
		 "2001 %s %lld %lld\n"
		 "garbage\n"
		 "2002 %.63s %lld %lld\n"
		 "2003 %s %lld\n"
		 "2004 %s %lld %lld trailing\n"
		 "2005 %s %lld %lld\n"
		 " 2007 %s %lld %lld\n"
		 "2006 %s %lld %lld",
		 key_a, (long long)now, (long long)now + 100, key_a, (long long)now, (long long)now + 100, key_a,
		 (long long)now, key_a, (long long)now, (long long)now + 100, key_b, (long long)now,
		 (long long)now + 100, key_a, (long long)now, (long long)now + 100, key_a, (long long)now,
		 (long long)now + 100);
	assert_int_equal(kc_cache_put("refresh", "verdicts", text, strlen(text), &e), 0);
	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 2001, key_a, now));
	assert_false(kc_verdicts_hold(v, 2002, key_a, now));
	assert_false(kc_verdicts_hold(v, 2003, key_a, now));
	assert_false(kc_verdicts_hold(v, 2004, key_a, now));
	assert_true(kc_verdicts_hold(v, 2005, key_b, now));
	assert_false(kc_verdicts_hold(v, 2006, key_a, now)); /* cut: no end of line */
	assert_false(kc_verdicts_hold(v, 2007, key_a, now)); /* not a number where the uid goes */
	kc_verdicts_free(v);
}

static ino_t stored_inode(void)
{
	char cmd[256];
	FILE *f;
	unsigned long long ino = 0;

	snprintf(cmd, sizeof(cmd), "stat -c %%i %s/refresh-* 2>/dev/null", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu", &ino), 1);
	pclose(f);
	return (ino_t)ino;
}

/* A run that notes a fresh verdict for 3001 and 3002; the stored set's inode. */
static ino_t store_two(time_t now)
{
	struct kc_verdicts *v = kc_verdicts_load();

	kc_verdicts_note(v, 3001, key_a, now, now + 100);
	kc_verdicts_note(v, 3002, key_a, now, now + 100);
	kc_verdicts_save(v);
	kc_verdicts_free(v);
	return stored_inode();
}

/* A run in which every verdict held and none is new leaves the stored set
 * as it is; one that drops or adds a verdict writes it. */
static void test_a_quiet_run_does_not_write_the_set(void **state)
{
	time_t now = time(NULL);
	struct kc_verdicts *v;
	ino_t first;

	(void)state;
	first = store_two(now);

	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 3001, key_a, now));
	assert_true(kc_verdicts_hold(v, 3002, key_a, now));
	kc_verdicts_save(v);
	kc_verdicts_free(v);
	assert_int_equal(stored_inode(), first);

	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 3001, key_a, now));
	assert_false(kc_verdicts_hold(v, 3002, key_b, now)); /* 3002's records changed */
	kc_verdicts_save(v);
	kc_verdicts_free(v);
	assert_int_not_equal(stored_inode(), first);
	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 3001, key_a, now));
	assert_false(kc_verdicts_hold(v, 3002, key_a, now)); /* dropped with its key */
	kc_verdicts_free(v);

	/* One uid held twice (its directory listed under two names) does not
	 * stand for another whose verdict was dropped. */
	first = store_two(now);
	v = kc_verdicts_load();
	assert_true(kc_verdicts_hold(v, 3001, key_a, now));
	assert_true(kc_verdicts_hold(v, 3001, key_a, now));
	kc_verdicts_save(v);
	kc_verdicts_free(v);
	assert_int_not_equal(stored_inode(), first);
	v = kc_verdicts_load();
	assert_false(kc_verdicts_hold(v, 3002, key_a, now));
	kc_verdicts_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold_window_and_key),
		cmocka_unit_test(test_key_follows_directory_and_mapping),
		cmocka_unit_test(test_broken_lines_are_passed_over),
		cmocka_unit_test(test_a_quiet_run_does_not_write_the_set),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests for the account snapshot (config/accounts.h): it answers every
 * account of this machine exactly as the one-at-a-time lookups do, and it is
 * taken only where nsswitch.conf says enumeration is the whole truth. */
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/accounts.h"

static char conf_path[] = "/tmp/kc-nsswitch-XXXXXX";

static struct kc_accounts *with_conf(const char *text)
{
	struct kc_err err;
	int fd = mkstemp(conf_path);
	struct kc_accounts *a;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, 0644);
	close(fd);
	a = kc_accounts_snapshot(conf_path, &err);
	unlink(conf_path);
	strcpy(conf_path, "/tmp/kc-nsswitch-XXXXXX");
	return a;
}

static void test_taken_only_for_files_and_systemd(void **state)
{
	struct kc_accounts *a;

	(void)state;
	a = with_conf("# comment\npasswd: files systemd\ngroup:\tfiles [SUCCESS=merge] systemd # x\nshadow: files\n");
	assert_non_null(a);
	kc_accounts_free(a);
	assert_null(with_conf("passwd: files sss\ngroup: files\nshadow: files\n"));
	assert_null(with_conf("passwd: files\ngroup: files ldap\nshadow: files\n"));
	assert_null(with_conf("passwd: compat\ngroup: compat\nshadow: compat\n"));
	assert_null(with_conf("passwd: files\ngroup: files\n")); /* shadow not named */
	assert_null(with_conf("passwd: files\ngroup: [NOTFOUND=return]\nshadow: files\n")); /* no source */
	/* As glibc reads it: the last line wins, blanks may lead and precede ':'. */
	assert_null(with_conf("passwd: files\ngroup: files\nshadow: files\npasswd: files systemd sss\n"));
	assert_null(with_conf("passwd: files\ngroup: files\nshadow: files\n  group : files ldap\n"));
	/* getgrouplist() follows initgroups: when there is one. */
	assert_null(with_conf("passwd: files\ngroup: files\nshadow: files\ninitgroups: files sss\n"));
	a = with_conf("passwd: files sss\npasswd: files\ngroup: files\nshadow: files\ninitgroups: files\n");
	assert_non_null(a);
	kc_accounts_free(a);
}

static int has(const struct kc_identity *id, const char *group)
{
	for (size_t i = 0; i < id->n_groups; i++)
		if (!strcmp(id->groups[i], group))
			return 1;
	return 0;
}

/* Every account of this machine (with a big group, when the tests made one):
 * the same name, home, gid and set of groups as getpwuid + kc_identity_load. */
static void test_same_answers_as_lookups(void **state)
{
	struct kc_accounts *a = with_conf("passwd: files systemd\ngroup: files systemd\nshadow: files\n");
	struct passwd *pw;
	struct kc_err err;
	size_t checked = 0;

	(void)state;
	assert_non_null(a);
	setpwent();
	while ((pw = getpwent())) {
		struct kc_identity one, snap;
		struct passwd *first = getpwuid(pw->pw_uid);
		long expire;
		char name[256];

		snprintf(name, sizeof(name), "%s", first->pw_name);
		assert_int_equal(kc_accounts_identity(a, pw->pw_uid, &snap, &expire, &err), 0);
		assert_int_equal(kc_identity_load(name, &one, &err), 0);
		assert_string_equal(snap.name, one.name);
		assert_string_equal(snap.home, one.home);
		assert_int_equal(snap.uid, one.uid);
		assert_int_equal(snap.gid, one.gid);
		for (size_t i = 0; i < one.n_groups; i++)
			assert_true(has(&snap, one.groups[i]));
		for (size_t i = 0; i < snap.n_groups; i++)
			assert_true(has(&one, snap.groups[i]));
		kc_identity_free(&one);
		kc_identity_free(&snap);
		checked++;
	}
	endpwent();
	assert_true(checked > 0);
	{
		struct kc_identity id;
		long expire;

		assert_int_equal(kc_accounts_identity(a, 4000000000u, &id, &expire, &err), KC_ABSENT);
		assert_non_null(strstr(err.msg, "no account has uid"));
	}
	kc_accounts_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_taken_only_for_files_and_systemd),
		cmocka_unit_test(test_same_answers_as_lookups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

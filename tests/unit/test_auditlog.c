/* Unit tests for reading the audit lines of lifecycle/auditlog.h: the reader finds
 * each key's value, a key is never matched as a prefix of another, and a value
 * that does not fit is refused, never cut short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin/audit.h"

static void test_kind(void **state)
{
	(void)state;
	assert_int_equal(kc_audit_line_kind("mint user=a"), KC_AUDIT_MINT);
	assert_int_equal(kc_audit_line_kind("login user=a"), KC_AUDIT_LOGIN);
	assert_int_equal(kc_audit_line_kind("logout user=a"), KC_AUDIT_LOGOUT);
	assert_int_equal(kc_audit_line_kind("revoke user=a"), KC_AUDIT_REVOKE);
	assert_int_equal(kc_audit_line_kind("minted user=a"), KC_AUDIT_NONE);
	assert_int_equal(kc_audit_line_kind("sshd: login user=a"), KC_AUDIT_NONE);
}

static void test_value(void **state)
{
	static const char line[] = "mint user=alice uid=1001 cluster=prod serviceaccount=team-a/alice jti=abc "
				   "expires=2025-01-01T00:00:00Z lifetime=15m reason=rotation sessions=s1,s2 "
				   "rhosts=h1,- time=2025-01-01T00:00:00Z";
	char v[64];

	(void)state;
	assert_true(kc_audit_line_value(line, "sessions", v, sizeof(v)));
	assert_string_equal(v, "s1,s2");
	assert_true(kc_audit_line_value(line, "user", v, sizeof(v)));
	assert_string_equal(v, "alice");
	assert_true(kc_audit_line_value(line, "rhosts", v, sizeof(v)));
	assert_string_equal(v, "h1,-");
	assert_true(kc_audit_line_value(line, "time", v, sizeof(v)));
	assert_string_equal(v, "2025-01-01T00:00:00Z");
	assert_false(kc_audit_line_value(line, "session", v, sizeof(v))); /* a key, not a prefix */
	assert_false(kc_audit_line_value(line, "mint", v, sizeof(v))); /* the kind is no key */
	assert_false(kc_audit_line_value(line, "serviceaccount", v, 4)); /* does not fit */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind),
		cmocka_unit_test(test_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

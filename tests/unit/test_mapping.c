/* Unit tests for the mapping: templates, {user_safe}, first match per cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kc_config.h"
#include "kc_mapping.h"

static void test_user_safe(void **state)
{
	char a[KC_NAME_MAX], b[KC_NAME_MAX], c[KC_NAME_MAX];

	(void)state;
	kc_user_safe("alice", a, sizeof(a));
	assert_string_equal(a, "alice"); /* unchanged: no hash */
	kc_user_safe("first_last", a, sizeof(a));
	kc_user_safe("First.Last", b, sizeof(b));
	kc_user_safe("first-last", c, sizeof(c));
	assert_true(strncmp(a, "first-last-", 11) == 0 && strlen(a) == 19);
	assert_true(strncmp(b, "first-last-", 11) == 0 && strlen(b) == 19);
	assert_string_equal(c, "first-last");
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_true(kc_valid_dns_subdomain(a) && kc_valid_dns_subdomain(b));
}

static void test_dns_names(void **state)
{
	(void)state;
	assert_true(kc_valid_dns_label("team-a"));
	assert_false(kc_valid_dns_label("Team-a"));
	assert_false(kc_valid_dns_label("-a"));
	assert_false(kc_valid_dns_label("a-"));
	assert_false(kc_valid_dns_label("a.b"));
	assert_false(kc_valid_dns_label(""));
	assert_true(kc_valid_dns_subdomain("a.b-c"));
	assert_false(kc_valid_dns_subdomain("a..b"));
	assert_false(kc_valid_dns_subdomain("a_b"));
	assert_false(kc_valid_dns_label("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
}

static void test_templates(void **state)
{
	char out[KC_NAME_MAX], why[256];

	(void)state;
	assert_int_equal(kc_template_expand("u-{user}", "bob", out, sizeof(out)), 0);
	assert_string_equal(out, "u-bob");
	assert_int_equal(kc_template_expand("u-{user_safe}", "Bob", out, sizeof(out)), 0);
	assert_true(strncmp(out, "u-bob-", 6) == 0);
	assert_int_equal(kc_template_check("u-{user_safe}", false, why, sizeof(why)), 0);
	assert_int_equal(kc_template_check("u-{users}", false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "unknown placeholder"));
	assert_int_equal(kc_template_check("U_{user}", false, why, sizeof(why)), -1);
}

static const char cfg_text[] =
	"clusters:\n"
	"  - {name: a, server: https://a, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
	"  - {name: b, server: https://b, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
	"mappings:\n"
	"  - {user: alice, cluster: a, serviceaccount: team-a/alice}\n"
	"  - {group: ops, cluster: a, serviceaccount: bastion-access/ops}\n"
	"  - {group: ops, cluster: b, serviceaccount: bastion-access/ops-b}\n"
	"  - {user: \"*\", cluster: a, serviceaccount: \"bastion-users/u-{user_safe}\"}\n"
	"  - {user: \"*\", cluster: b, serviceaccount: \"bastion-users/{user}\"}\n";

static struct kc_config *load(void)
{
	struct kc_err err;
	struct kc_config *cfg = kc_config_parse("m.yaml", cfg_text, strlen(cfg_text), KC_LOAD_NO_FILES, &err);

	if (!cfg)
		fail_msg("%s", err.msg);
	return cfg;
}

static void test_first_match_per_cluster(void **state)
{
	struct kc_config *cfg = load();
	char *groups[] = { (char *)"alice", (char *)"ops" };
	struct kc_identity alice = { (char *)"alice", 1000, 1000, (char *)"/home/alice", groups, 2 };
	char *none[] = { (char *)"carol" };
	struct kc_identity carol = { (char *)"Carol.X", 1001, 1001, (char *)"/home/carol", none, 1 };
	struct kc_target t[2];

	(void)state;
	assert_int_equal(kc_map_user(cfg, &alice, t), 2);
	assert_string_equal(t[0].sa_namespace, "team-a"); /* the user rule comes first */
	assert_string_equal(t[0].sa_name, "alice");
	assert_int_equal(t[0].rule_index, 0);
	assert_string_equal(t[1].sa_name, "ops-b"); /* group rule, cluster b */

	/* "*" with {user_safe} works; with {user} the name is invalid and says so. */
	assert_int_equal(kc_map_user(cfg, &carol, t), 1);
	assert_true(strncmp(t[0].sa_name, "u-carol-x-", 10) == 0);
	assert_non_null(t[1].rule);
	assert_non_null(strstr(t[1].error, "m.yaml:9:"));
	assert_non_null(strstr(t[1].error, "use {user_safe}"));
	kc_config_free(cfg);
}

static void test_no_match(void **state)
{
	static const char text[] =
		"clusters:\n"
		"  - {name: a, server: https://a, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"mappings:\n"
		"  - {user: alice, cluster: a, serviceaccount: team-a/alice}\n";
	struct kc_err err;
	struct kc_config *cfg = kc_config_parse("m.yaml", text, strlen(text), KC_LOAD_NO_FILES, &err);
	char *groups[] = { (char *)"bob" };
	struct kc_identity bob = { (char *)"bob", 1000, 1000, (char *)"/home/bob", groups, 1 };
	struct kc_target t[1];

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(kc_map_user(cfg, &bob, t), 0);
	assert_null(t[0].rule);
	kc_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_safe), cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_templates), cmocka_unit_test(test_first_match_per_cluster),
		cmocka_unit_test(test_no_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

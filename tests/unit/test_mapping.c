/* Unit tests for the mapping: templates, {user_safe}, first match per cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/mapping.h"

static void test_user_safe(void **state)
{
	char a[KC_NAME_MAX], b[KC_NAME_MAX], c[KC_NAME_MAX];

	(void)state;
	assert_int_equal(kc_user_safe("alice", a, sizeof(a)), 5);
	assert_string_equal(a, "alice"); /* unchanged names keep their ServiceAccounts */
	kc_user_safe("first-last", c, sizeof(c));
	assert_string_equal(c, "first-last");
	kc_user_safe("first_last", a, sizeof(a));
	kc_user_safe("First.Last", b, sizeof(b));
	assert_string_equal(a, "first--095last");
	assert_string_equal(b, "--first--046--last");
	kc_user_safe("bob-", c, sizeof(c)); /* a trailing '-' is escaped: the result stays valid */
	assert_string_equal(c, "bob--045");
	kc_user_safe("a--b", c, sizeof(c)); /* "--" marks a change: an unchanged name never holds it */
	assert_string_equal(c, "a--045-b");
	/* Too long for the buffer: refused, never cut short. */
	assert_int_equal(kc_user_safe("Alice", a, 5), -1);
	assert_int_equal(kc_user_safe("", a, sizeof(a)), -1);
}

/* The review's example: a changed and an unchanged name that met in one. */
static void test_user_safe_issue_pair(void **state)
{
	char a[KC_NAME_MAX], b[KC_NAME_MAX];

	(void)state;
	kc_user_safe("sa.victim", a, sizeof(a));
	kc_user_safe("sa-victim-fc32e39e", b, sizeof(b));
	assert_string_not_equal(a, b);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static unsigned next_rand(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

/* A random name from every character class a passwd entry can hold. */
static void random_name(char *out, size_t max_len)
{
	static const char *const classes[] = {
		"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "-", "._@$~+= ",
		"\x01\x7f\x80\xc3\xa9\xff"
	};
	size_t n = 1 + next_rand((unsigned)max_len);

	for (size_t i = 0; i < n; i++) {
		/* Mostly plain letters, so that unchanged names turn up too. */
		unsigned k = next_rand(11);
		const char *cls = classes[k < 5 ? 0 : k - 5];

		out[i] = cls[next_rand((unsigned)strlen(cls))];
	}
	out[n] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* decode(encode(x)) == x over random names of every class and length; an
 * encoding changes a name exactly when it must, and distinct names never meet. */
static void test_user_safe_round_trip(void **state)
{
	enum { N = 20000 };
	char **enc = calloc(N, sizeof(char *)), **names = calloc(N, sizeof(char *));
	size_t unchanged = 0, changed = 0;

	(void)state;
	assert_non_null(enc);
	assert_non_null(names);
	for (size_t i = 0; i < N; i++) {
		char name[64], e[KC_NAME_MAX], d[KC_NAME_MAX];
		int n;

		random_name(name, i % 4 == 0 ? 48 : 12);
		n = kc_user_safe(name, e, sizeof(e));
		assert_true(n > 0);
		assert_int_equal(strspn(e, "abcdefghijklmnopqrstuvwxyz0123456789-"), (size_t)n);
		assert_int_equal(kc_user_safe_decode(e, d, sizeof(d)), (int)strlen(name));
		assert_string_equal(d, name);
		if (strcmp(e, name) == 0) {
			assert_true(kc_user_safe_unchanged(name) && !strstr(e, "--"));
			unchanged++;
		} else {
			assert_false(kc_user_safe_unchanged(name));
			assert_non_null(strstr(e, "--"));
			assert_false(kc_user_safe_unchanged(e)); /* a form no unchanged name has */
			changed++;
		}
		assert_non_null(enc[i] = strdup(e));
		assert_non_null(names[i] = strdup(name));
	}
	assert_true(unchanged > 1000 && changed > 1000);
	/* Injective: equal encodings come from equal names. */
	{
		char **pairs = calloc(N, sizeof(char *));

		assert_non_null(pairs);
		for (size_t i = 0; i < N; i++) {
			size_t l = strlen(enc[i]) + strlen(names[i]) + 2;

			assert_non_null(pairs[i] = malloc(l));
			snprintf(pairs[i], l, "%s%c%s", enc[i], 1, names[i]);
		}
		qsort(pairs, N, sizeof(char *), cmp_str);
		for (size_t i = 1; i < N; i++) {
			size_t a = strcspn(pairs[i - 1], "\x01"), b = strcspn(pairs[i], "\x01");

			if (a == b && strncmp(pairs[i - 1], pairs[i], a) == 0)
				assert_string_equal(pairs[i - 1] + a, pairs[i] + b);
		}
		for (size_t i = 0; i < N; i++)
			free(pairs[i]);
		free(pairs);
	}
	for (size_t i = 0; i < N; i++) {
		free(enc[i]);
		free(names[i]);
	}
	free(enc);
	free(names);
}

/* Names kc_user_safe() never writes do not decode. */
static void test_user_safe_decode_refuses(void **state)
{
	char d[KC_NAME_MAX];
	static const char *const bad[] = { "--098ob", "-bob", "bob-", "a---b", "a--045--045b", "--000",
					   "--256",   "--04", "x--",  "Abc",   "a.b",	       "" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kc_user_safe_decode(bad[i], d, sizeof(d)), -1);
	assert_int_equal(kc_user_safe_decode("a--b", d, sizeof(d)), 2); /* "aB" */
	assert_int_equal(kc_user_safe_decode("--first--046--last", d, sizeof(d)), 10);
	assert_string_equal(d, "First.Last");
}

/* A result that does not fit where the template puts it is refused, saying so. */
static void test_user_safe_length_limits(void **state)
{
	char name[200], out[KC_NAME_MAX];
	static const char text[] =
		"clusters:\n"
		"  - {name: a, server: https://a, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"  - {name: b, server: https://b, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"mappings:\n"
		"  - {user: \"*\", cluster: a, serviceaccount: \"u-{user_safe}/x\"}\n"
		"  - {user: \"*\", cluster: b, serviceaccount: \"bastion-users/u-{user_safe}\"}\n";
	struct kc_err err;
	struct kc_config *cfg = kc_config_parse("m.yaml", text, strlen(text), KC_LOAD_NO_FILES, &err);
	char *groups[] = { (char *)"g" };
	struct kc_identity id = {
		.name = name, .uid = 1000, .gid = 1000, .home = (char *)"/home/x", .groups = groups, .n_groups = 1
	};
	struct kc_target t[2];

	(void)state;
	assert_non_null(cfg);
	/* 61 unchanged characters: "u-" + 61 = 63 fits a namespace exactly. */
	memset(name, 'a', 61);
	name[61] = '\0';
	assert_int_equal(kc_map_user(cfg, &id, t), 2);
	assert_int_equal(strlen(t[0].sa_namespace), 63);
	/* 62 do not: the namespace is refused with its length and limit; the
	 * ServiceAccount name (a subdomain: 253) is fine. */
	strcat(name, "a");
	assert_int_equal(kc_map_user(cfg, &id, t), 1);
	assert_non_null(strstr(t[0].error, "would be 64 characters long; a namespace holds at most 63"));
	assert_int_equal(strlen(t[1].sa_name), 64);
	/* 50 uppercase letters: 150 characters, beyond a namespace, within a name. */
	memset(name, 'A', 50);
	name[50] = '\0';
	assert_int_equal(kc_map_user(cfg, &id, t), 1);
	assert_int_equal(strlen(t[1].sa_name), 152);
	/* 51 bytes to escape five ways: 255 + 2 > 253, refused as too long. */
	memset(name, '.', 51);
	name[51] = '\0';
	assert_int_equal(kc_map_user(cfg, &id, t), 0);
	assert_non_null(strstr(t[1].error, "would be 257 characters long; a ServiceAccount name holds at most 253"));
	assert_non_null(strstr(t[1].error, "m.yaml:6:"));
	assert_true(kc_template_expand("u-{user_safe}", name, out, sizeof(out)) == 257);
	kc_config_free(cfg);
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
	/* Kubernetes caps a subdomain at 253 in all, not its labels at 63. */
	assert_true(kc_valid_dns_subdomain("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(kc_valid_dns_subdomain("a.-b"));
	assert_false(kc_valid_dns_subdomain("a."));
}

static void test_templates(void **state)
{
	char out[KC_NAME_MAX], why[256];

	(void)state;
	assert_int_equal(kc_template_expand("u-{user}", "bob", out, sizeof(out)), 5);
	assert_string_equal(out, "u-bob");
	assert_int_equal(kc_template_expand("u-{user_safe}", "Bob", out, sizeof(out)), 7);
	assert_string_equal(out, "u---bob");
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
	struct kc_identity alice = { .name = (char *)"alice",
				     .uid = 1000,
				     .gid = 1000,
				     .home = (char *)"/home/alice",
				     .groups = groups,
				     .n_groups = 2 };
	char *none[] = { (char *)"carol" };
	struct kc_identity carol = { .name = (char *)"Carol.X",
				     .uid = 1001,
				     .gid = 1001,
				     .home = (char *)"/home/carol",
				     .groups = none,
				     .n_groups = 1 };
	struct kc_target t[2];

	(void)state;
	assert_int_equal(kc_map_user(cfg, &alice, t), 2);
	assert_string_equal(t[0].sa_namespace, "team-a"); /* the user rule comes first */
	assert_string_equal(t[0].sa_name, "alice");
	assert_int_equal(t[0].rule_index, 0);
	assert_string_equal(t[1].sa_name, "ops-b"); /* group rule, cluster b */

	/* "*" with {user_safe} works; with {user} the name is invalid and says so. */
	assert_int_equal(kc_map_user(cfg, &carol, t), 1);
	assert_string_equal(t[0].sa_name, "u---carol--046--x");
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
	struct kc_identity bob = { .name = (char *)"bob",
				   .uid = 1000,
				   .gid = 1000,
				   .home = (char *)"/home/bob",
				   .groups = groups,
				   .n_groups = 1 };
	struct kc_target t[1];

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(kc_map_user(cfg, &bob, t), 0);
	assert_null(t[0].rule);
	kc_config_free(cfg);
}

/* A rule with ssh_certificate matches only through a certificate that meets it,
 * and the target ends with the latest such; a locked cluster matches nothing. */
static void test_certificates_and_locks(void **state)
{
	static const char text[] =
		"ssh_certificates: {trusted_ca_keys: /ca.pub}\n"
		"clusters:\n"
		"  - {name: a, server: https://a, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"  - {name: b, server: https://b, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"mappings:\n"
		"  - {group: sre, ssh_certificate: {principal: k8s-admin}, cluster: a, serviceaccount: ops/admin}\n"
		"  - {user: alice, ssh_certificate: {key_id: 'alice@*'}, cluster: b, serviceaccount: ops/b-admin}\n"
		"  - {user: '*', cluster: a, serviceaccount: 'users/u-{user_safe}'}\n"
		"  - {user: '*', cluster: b, serviceaccount: 'users/u-{user_safe}'}\n";
	struct kc_err err;
	struct kc_config *cfg = kc_config_parse("m.yaml", text, strlen(text), KC_LOAD_NO_FILES, &err);
	char *groups[] = { (char *)"alice", (char *)"sre" };
	const char *admin[] = { "alice", "k8s-admin" }, *plain[] = { "alice" };
	struct kc_cert_claim claims[] = { { "alice@laptop", plain, 1, 2000 },
					  { "other", admin, 2, 1000 },
					  { "alice@ci", admin, 2, 3000 } };
	const char *locked[] = { "b" };
	struct kc_identity alice = {
		.name = (char *)"alice", .uid = 1000, .gid = 1000, .groups = groups, .n_groups = 2
	};
	struct kc_target t[2];

	(void)state;
	if (!cfg)
		fail_msg("%s", err.msg);
	/* no certificate: the defaults */
	assert_int_equal(kc_map_user(cfg, &alice, t), 2);
	assert_string_equal(t[0].sa_name, "u-alice");
	assert_int_equal(t[0].cert_until, 0);
	/* the principal rule takes the latest certificate with the principal (3000);
	 * the key id rule the latest whose id matches (3000 too: alice@ci) */
	alice.certs = claims;
	alice.n_certs = 3;
	assert_int_equal(kc_map_user(cfg, &alice, t), 2);
	assert_string_equal(t[0].sa_name, "admin");
	assert_int_equal(t[0].cert_until, 3000);
	assert_string_equal(t[1].sa_name, "b-admin");
	assert_int_equal(t[1].cert_until, 3000);
	/* a certificate without the principal does not elevate; one id matching does */
	alice.certs = claims;
	alice.n_certs = 1;
	kc_map_user(cfg, &alice, t);
	assert_string_equal(t[0].sa_name, "u-alice");
	assert_string_equal(t[1].sa_name, "b-admin");
	assert_int_equal(t[1].cert_until, 2000);
	/* the group rule needs the group as well */
	alice.n_groups = 1;
	alice.certs = claims;
	alice.n_certs = 3;
	kc_map_user(cfg, &alice, t);
	assert_string_equal(t[0].sa_name, "u-alice");
	alice.n_groups = 2;
	/* a lock on one cluster, then on all */
	alice.locked = locked;
	alice.n_locked = 1;
	assert_int_equal(kc_map_user(cfg, &alice, t), 1);
	assert_false(t[0].locked);
	assert_true(t[1].locked);
	assert_null(t[1].rule);
	alice.locked_all = true;
	assert_int_equal(kc_map_user(cfg, &alice, t), 0);
	assert_true(t[0].locked && t[1].locked);
	kc_config_free(cfg);
}

static void test_certificate_rules_need_trusted_cas(void **state)
{
	static const char text[] =
		"clusters:\n"
		"  - {name: a, server: https://a, insecure_skip_tls_verify: true, auth: {token_file: /t}}\n"
		"mappings:\n"
		"  - {user: alice, ssh_certificate: {principal: x}, cluster: a, serviceaccount: ops/admin}\n";
	struct kc_err err;

	(void)state;
	assert_null(kc_config_parse("m.yaml", text, strlen(text), KC_LOAD_NO_FILES, &err));
	assert_non_null(strstr(err.msg, "m.yaml:4:"));
	assert_non_null(strstr(err.msg, "trusted_ca_keys"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_safe),
		cmocka_unit_test(test_user_safe_issue_pair),
		cmocka_unit_test(test_user_safe_round_trip),
		cmocka_unit_test(test_user_safe_decode_refuses),
		cmocka_unit_test(test_user_safe_length_limits),
		cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_first_match_per_cluster),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test(test_certificates_and_locks),
		cmocka_unit_test(test_certificate_rules_need_trusted_cas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

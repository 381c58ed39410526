/* Unit tests for the strict config loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

static const char good[] = "min_uid: 2000\n"
			   "host_id: bastion-1\n"
			   "kubeconfig:\n"
			   "  path: \"~/.kube/config-test\"\n"
			   "  set_env: false\n"
			   "  remove_on_logout: true\n"
			   "token:\n"
			   "  ttl: 1h30m\n"
			   "  audiences: [\"https://kubernetes.default.svc\"]\n"
			   "  refresh_before: 25%\n"
			   "network:\n"
			   "  request_timeout: 3s\n"
			   "clusters:\n"
			   "  - name: prod\n"
			   "    server: https://127.0.0.1:6443\n"
			   "    certificate_authority_data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
			   "    auth:\n"
			   "      token_file: /etc/pam_kubeconfig/prod.token\n"
			   "  - name: stage\n"
			   "    context: staging\n"
			   "    server: https://127.0.0.1:7443\n"
			   "    certificate_authority: /etc/pam_kubeconfig/stage-ca.pem\n"
			   "    auth:\n"
			   "      client_certificate: /etc/a.crt\n"
			   "      client_key: /etc/a.key\n"
			   "mappings:\n"
			   "  - user: alice\n"
			   "    cluster: prod\n"
			   "    serviceaccount: team-a/alice\n"
			   "  - group: admins\n"
			   "    cluster: stage\n"
			   "    serviceaccount: bastion-access/admin\n"
			   "  - user: \"*\"\n"
			   "    cluster: prod\n"
			   "    serviceaccount: bastion-users/u-{user_safe}\n"
			   "    create: true\n"
			   "    clusterrole: view\n";

static struct kc_config *parse(const char *text, struct kc_err *err)
{
	memset(err, 0, sizeof(*err));
	return kc_config_parse("t.yaml", text, strlen(text), KC_LOAD_NO_FILES, err);
}

static void test_good_config(void **state)
{
	struct kc_err err;
	struct kc_config *cfg = parse(good, &err);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->min_uid, 2000);
	assert_string_equal(cfg->host_id, "bastion-1");
	assert_string_equal(cfg->kubeconfig_path, ".kube/config-test");
	assert_false(cfg->set_env);
	assert_true(cfg->remove_on_logout);
	assert_int_equal(cfg->ttl, 5400);
	assert_int_equal(cfg->n_audiences, 1);
	assert_int_equal(cfg->refresh_before, 25);
	assert_int_equal(cfg->request_timeout_ms, 3000);
	assert_int_equal(cfg->connect_timeout_ms, 2000);
	assert_int_equal(cfg->n_clusters, 2);
	assert_string_equal(cfg->clusters[0].context, "prod");
	assert_string_equal(cfg->clusters[1].context, "staging");
	assert_int_equal(cfg->clusters[0].auth, KC_AUTH_TOKEN);
	assert_int_equal(cfg->clusters[1].auth, KC_AUTH_CERT);
	assert_non_null(cfg->clusters[0].ca_pem);
	assert_int_equal(cfg->n_mappings, 3);
	assert_string_equal(cfg->mappings[2].sa_namespace, "bastion-users");
	assert_string_equal(cfg->mappings[2].sa_name, "u-{user_safe}");
	assert_true(cfg->mappings[2].create);
	assert_string_equal(cfg->mappings[2].clusterrole, "view");
	kc_config_free(cfg);
}

static void test_defaults(void **state)
{
	struct kc_err err;
	struct kc_config *cfg = parse("clusters:\n"
				      "  - name: a\n"
				      "    server: https://h\n"
				      "    insecure_skip_tls_verify: true\n"
				      "    auth: {token_file: /t}\n"
				      "mappings: []\n",
				      &err);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->min_uid, 1000);
	assert_int_equal(cfg->ttl, 15 * 60);
	assert_string_equal(cfg->kubeconfig_path, ".kube/config-eks");
	assert_true(cfg->set_env);
	assert_false(cfg->remove_on_logout); /* the file holds no secret, and homes may be shared */
	assert_false(cfg->inline_token);
	assert_true(cfg->cut_on_logout);
	assert_true(cfg->revoke_on_logout);
	assert_int_equal(cfg->refresh_before, 20);
	assert_int_equal(cfg->after_failure, 30);
	kc_config_free(cfg);
}

struct bad {
	const char *text;
	const char *want; /* a substring of the message, which starts t.yaml:LINE:COL */
};

static void test_errors(void **state)
{
	static const struct bad cases[] = {
		{ "min_uid: 1000\nbogus: 1\n", "t.yaml:2:1: unknown key 'bogus' in the top level" },
		{ "min_uid: 1000\nmin_uid: 10\n", "t.yaml:2:1: duplicate key 'min_uid'" },
		{ "min_uid: [1]\n", "t.yaml:1:10: 'min_uid' must be a number" },
		{ "token:\n  ttl: 5m\n", "t.yaml:2:8: 'ttl' is below the 10m minimum" },
		{ "token:\n  ttl: 10m\n  refresh_before: 10%\n", "t.yaml:3:19: 'ttl' x 'refresh_before' leaves 60s" },
		{ "token:\n  ttl: forever\n", "t.yaml:2:8: 'ttl' must be a duration" },
		{ "a: &x 1\nb: *x\n", "t.yaml:2:4: YAML aliases" },
		{ "key: [unclosed\n", "t.yaml:2:1: YAML syntax error" },
		{ "kubeconfig:\n  path: /etc/passwd\n", "'path' must start with ~/" },
		{ "kubeconfig:\n  path: ~/../x\n", "may not contain . or .." },
		{ "kubeconfig:\n  set_env: yes\n", "t.yaml:2:12: 'set_env' must be true or false" },
		{ "token:\n  refresh_before: 20\n", "'refresh_before' must be a share" },
		{ "clusters: []\n", "'clusters' must be a list with at least one cluster" },
		{ "---\na: 1\n---\nb: 2\n", "a second YAML document" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_err err;
		struct kc_config *cfg = parse(cases[i].text, &err);

		assert_null(cfg);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: want '%s' in '%s'", i, cases[i].want, err.msg);
	}
}

static void test_cluster_and_mapping_errors(void **state)
{
	static const char head[] = "clusters:\n"
				   "  - name: prod\n"
				   "    server: https://h\n"
				   "    certificate_authority_data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
				   "    auth: {token_file: /t}\n"
				   "mappings:\n";
	static const struct bad cases[] = {
		{ "  - user: a\n    cluster: nope\n    serviceaccount: ns/a\n", "t.yaml:8:14: unknown cluster 'nope'" },
		{ "  - user: a\n    cluster: prod\n    serviceaccount: nsa\n",
		  "'serviceaccount' must be NAMESPACE/NAME" },
		{ "  - user: a\n    cluster: prod\n    serviceaccount: ns/{uid}\n", "unknown placeholder" },
		{ "  - user: a\n    cluster: prod\n    serviceaccount: NS/a\n", "not a valid Kubernetes namespace" },
		{ "  - user: a\n    group: g\n    cluster: prod\n    serviceaccount: ns/a\n",
		  "exactly one of 'user:' or 'group:'" },
		{ "  - user: a\n    cluster: prod\n    serviceaccount: ns/a\n    clusterrole: view\n",
		  "add 'create: true'" },
		{ "  - user: a\n    cluster: prod\n    serviceaccount: ns/a\n    color: red\n", "unknown key 'color'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[2048];
		struct kc_err err;
		struct kc_config *cfg;

		snprintf(text, sizeof(text), "%s%s", head, cases[i].text);
		cfg = parse(text, &err);
		assert_null(cfg);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: want '%s' in '%s'", i, cases[i].want, err.msg);
	}
}

static void test_deep_nesting_refused(void **state)
{
	char text[4096];
	struct kc_err err;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		text[n++] = '[';
	for (int i = 0; i < 100; i++)
		text[n++] = ']';
	text[n] = '\0';
	assert_null(parse(text, &err));
	assert_non_null(strstr(err.msg, "nested more than"));
}

static void test_kube_system_warning(void **state)
{
	struct kc_err err;
	struct kc_buf out = { 0 };
	struct kc_config *cfg = parse("clusters:\n"
				      "  - name: a\n"
				      "    server: https://h\n"
				      "    certificate_authority_data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
				      "    auth: {token_file: /t}\n"
				      "mappings:\n"
				      "  - user: a\n"
				      "    cluster: a\n"
				      "    serviceaccount: kube-system/default\n",
				      &err);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(kc_config_warnings(cfg, &out), 1);
	assert_non_null(strstr(out.data, "t.yaml:9:21: warning: a rule maps to kube-system"));
	kc_buf_free(&out);
	kc_config_free(cfg);
}

static void test_leading_user_safe_warning(void **state)
{
	struct kc_err err;
	struct kc_buf out = { 0 };
	struct kc_config *cfg = parse("clusters:\n"
				      "  - name: a\n"
				      "    server: https://h\n"
				      "    certificate_authority_data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
				      "    auth: {token_file: /t}\n"
				      "mappings:\n"
				      "  - user: \"*\"\n"
				      "    cluster: a\n"
				      "    serviceaccount: bastion-users/{user_safe}\n",
				      &err);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(kc_config_warnings(cfg, &out), 1);
	assert_non_null(strstr(out.data, "t.yaml:9:21: warning: a name that {user_safe} changes begins with '--'"));
	kc_buf_free(&out);
	kc_config_free(cfg);
}

/* edit, admin and cluster-admin bound where several users' objects live. */
static void test_powerful_role_warning(void **state)
{
	static const char head[] = "clusters:\n"
				   "  - name: a\n"
				   "    server: https://h\n"
				   "    certificate_authority_data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
				   "    auth: {token_file: /t}\n"
				   "mappings:\n";
	static const struct {
		const char *rules;
		int warnings;
		const char *says;
	} cases[] = {
		{ "  - {user: \"*\", cluster: a, serviceaccount: \"ns/u-{user_safe}\", create: true, clusterrole: "
		  "edit}\n",
		  1, "t.yaml:7:5: warning: ClusterRole edit bound in namespace ns, which several users share" },
		{ "  - {group: g, cluster: a, serviceaccount: ns/x, create: true, clusterrole: cluster-admin}\n", 1,
		  "ClusterRole cluster-admin bound in namespace ns" },
		{ "  - {user: a, cluster: a, serviceaccount: ns/a, create: true, clusterrole: admin}\n"
		  "  - {user: b, cluster: a, serviceaccount: ns/b, create: true, clusterrole: view}\n",
		  1, "ClusterRole admin bound in namespace ns" },
		{ "  - {user: a, cluster: a, serviceaccount: ns/a, create: true, clusterrole: edit, cluster_wide: "
		  "true}\n",
		  1, "ClusterRole edit bound cluster-wide can delete Secrets" },
		/* One user alone in a namespace, or a role that cannot: no warning. */
		{ "  - {user: a, cluster: a, serviceaccount: ns/a, create: true, clusterrole: edit}\n", 0, NULL },
		{ "  - {user: \"*\", cluster: a, serviceaccount: \"ns/u-{user_safe}\", create: true, clusterrole: "
		  "view}\n",
		  0, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		struct kc_err err;
		struct kc_buf out = { 0 };
		struct kc_config *cfg;

		snprintf(text, sizeof(text), "%s%s", head, cases[i].rules);
		cfg = parse(text, &err);
		if (!cfg)
			fail_msg("%s", err.msg);
		assert_int_equal(kc_config_warnings(cfg, &out), cases[i].warnings);
		if (cases[i].says && !strstr(out.data, cases[i].says))
			fail_msg("case %zu: %s", i, out.data);
		kc_buf_free(&out);
		kc_config_free(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_cluster_and_mapping_errors),
		cmocka_unit_test(test_deep_nesting_refused),
		cmocka_unit_test(test_kube_system_warning),
		cmocka_unit_test(test_leading_user_safe_warning),
		cmocka_unit_test(test_powerful_role_warning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

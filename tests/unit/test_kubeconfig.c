/* Unit tests for the kubeconfig emitter: what we emit parses back to the same
 * values, whatever the strings hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <yaml.h>

#include "kc_kubeconfig.h"

/* The scalar value that follows key at the n-th occurrence, from libyaml's parser. */
static char *value_of(const char *text, const char *key, int nth)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char *found = NULL;
	int seen = 0, take = 0, done = 0;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
	while (!done && yaml_parser_parse(&p, &ev)) {
		if (ev.type == YAML_SCALAR_EVENT) {
			const char *v = (const char *)ev.data.scalar.value;

			if (take) {
				found = strdup(v);
				done = 1;
			} else if (strcmp(v, key) == 0 && seen++ == nth) {
				take = 1;
			}
		} else if (take) {
			done = 1;
		}
		if (ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return found;
}

static void test_round_trip(void **state)
{
	static const unsigned char ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	struct kc_kubeconfig_entry e[2] = {
		{ "arn:aws:eks:us-west-2:111122223333:cluster/prod", "https://x.eks.amazonaws.com", ca, sizeof(ca) - 1,
		  "team-a", "alice", "eyJhbGciOi.J9.sig", 1795942539 },
		{ "yes", "https://127.0.0.1:6443", ca, sizeof(ca) - 1, "bastion-users", "u-a", "123", 1795942000 },
	};
	struct kc_buf out = { 0 };
	char host[128];
	char *v;

	(void)state;
	assert_int_equal(kc_kubeconfig_emit("bastion.example", "abc123", "alice", e, 2, &out), 0);
	assert_true(out.secret);
	assert_int_equal(kc_kubeconfig_host_id(out.data, out.len, host, sizeof(host)), 0);
	assert_string_equal(host, "abc123");
	assert_non_null(strstr(out.data, "tokens expire 2026-11-29T08:46:40Z"));

	v = value_of(out.data, "current-context", 0);
	assert_string_equal(v, e[0].context);
	free(v);
	v = value_of(out.data, "token", 0);
	assert_string_equal(v, e[0].token);
	free(v);
	/* Strings a YAML reader would take for a bool or a number stay strings. */
	v = value_of(out.data, "token", 1);
	assert_string_equal(v, "123");
	free(v);
	assert_non_null(strstr(out.data, "'123'"));
	assert_non_null(strstr(out.data, "name: 'yes'"));
	v = value_of(out.data, "namespace", 1);
	assert_string_equal(v, "bastion-users");
	free(v);
	v = value_of(out.data, "certificate-authority-data", 0);
	assert_string_equal(v, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=");
	free(v);
	kc_buf_free(&out);
}

static void test_header_is_safe(void **state)
{
	struct kc_kubeconfig_entry e = { "c", "https://h", NULL, 0, "ns", "sa", "t", 1 };
	struct kc_buf out = { 0 };
	char host[128];

	(void)state;
	/* A hostile host name cannot end the comment and inject YAML. */
	assert_int_equal(kc_kubeconfig_emit("evil\ncurrent-context: x", "id", "u\nx", &e, 1, &out), 0);
	assert_null(strstr(out.data, "\ncurrent-context: x"));
	assert_int_equal(kc_kubeconfig_host_id(out.data, out.len, host, sizeof(host)), 0);
	assert_string_equal(host, "id");
	kc_buf_free(&out);
	assert_int_equal(kc_kubeconfig_host_id("apiVersion: v1\n", 15, host, sizeof(host)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_header_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

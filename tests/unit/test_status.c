/* Unit tests for what `pam-kubeconfig status` reads and what feeds the
 * metrics: status.json as root writes it (lifecycle/status.h) read back by the
 * user's side (asuser/status_file.h) with every optional part, the reader's
 * refusals, a JWT's claims without the token, and the per-process tally of
 * counts (lifecycle/tally.h) from racing threads, none lost. Run as root (the
 * metrics store is root's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include "asuser/status_cli.h"
#include "asuser/status_file.h"
#include "lifecycle/metrics.h"
#include "lifecycle/status.h"
#include "lifecycle/tally.h"

#define THREADS 4
#define PER_THREAD 500

static void fill(struct kc_status *s)
{
	static struct kc_status_session sessions[2];
	static struct kc_status_cluster clusters[2];

	memset(s, 0, sizeof(*s));
	memset(sessions, 0, sizeof(sessions));
	memset(clusters, 0, sizeof(clusters));
	s->version = KC_STATUS_VERSION;
	s->uid = 1234;
	snprintf(s->user, sizeof(s->user), "alice");
	snprintf(s->host, sizeof(s->host), "bastion-1");
	s->written = 1767225600;
	snprintf(s->kubeconfig, sizeof(s->kubeconfig), "~/.kube/config-eks");
	snprintf(sessions[0].id, sizeof(sessions[0].id), "a1b2");
	snprintf(sessions[0].rhost, sizeof(sessions[0].rhost), "10.0.0.7");
	snprintf(sessions[0].tty, sizeof(sessions[0].tty), "pts/3");
	sessions[0].opened = 1767225000;
	snprintf(sessions[1].id, sizeof(sessions[1].id), "c3d4");
	s->sessions = sessions;
	s->n_sessions = 2;
	snprintf(clusters[0].cluster, sizeof(clusters[0].cluster), "prod");
	snprintf(clusters[0].context, sizeof(clusters[0].context), "arn:aws:eks:us-west-2:111122223333:cluster/prod");
	snprintf(clusters[0].server, sizeof(clusters[0].server), "https://EXAMPLE.eks.amazonaws.com");
	clusters[0].state = KC_STATUS_CURRENT;
	snprintf(clusters[0].sa_namespace, sizeof(clusters[0].sa_namespace), "team-a");
	snprintf(clusters[0].sa_name, sizeof(clusters[0].sa_name), "alice");
	snprintf(clusters[0].token_file, sizeof(clusters[0].token_file), "/run/pam_kubeconfig/1234/prod.token");
	snprintf(clusters[0].jti, sizeof(clusters[0].jti), "0b5e-77");
	clusters[0].minted = 1767225000;
	clusters[0].expires = 1767225900;
	clusters[0].next_rotation = 1767225720;
	clusters[0].certificate.present = true;
	snprintf(clusters[0].certificate.key_id, sizeof(clusters[0].certificate.key_id), "alice@corp \"laptop\"");
	snprintf(clusters[0].certificate.serial, sizeof(clusters[0].certificate.serial), "42");
	snprintf(clusters[0].certificate.principals[0], sizeof(clusters[0].certificate.principals[0]), "k8s-admin");
	snprintf(clusters[0].certificate.principals[1], sizeof(clusters[0].certificate.principals[1]), "alice");
	clusters[0].certificate.n_principals = 2;
	clusters[0].certificate.valid_before = 1767229200;
	snprintf(clusters[1].cluster, sizeof(clusters[1].cluster), "staging");
	clusters[1].state = KC_STATUS_REVOKING;
	clusters[1].since = 1767225500;
	clusters[1].pending_revocations = 2;
	snprintf(clusters[1].reason, sizeof(clusters[1].reason), "revoked: {not} confirmed: yet, [really]");
	clusters[1].lock.present = true;
	clusters[1].lock.since = 1767225400;
	snprintf(clusters[1].lock.by, sizeof(clusters[1].lock.by), "root");
	s->clusters = clusters;
	s->n_clusters = 2;
	s->lock.present = true;
	s->lock.until = 1767228000;
	snprintf(s->lock.reason, sizeof(s->lock.reason), "left the team");
}

/* What root writes, the user reads back field by field. */
static void test_round_trip(void **state)
{
	struct kc_status in, out;
	struct kc_buf text = { 0 };
	struct kc_err err = { "" };

	(void)state;
	fill(&in);
	assert_int_equal(kc_status_format(&in, &text, &err), 0);
	assert_int_equal(kc_status_parse(text.data, text.len, &out, &err), 0);
	assert_int_equal(out.uid, 1234);
	assert_string_equal(out.user, "alice");
	assert_string_equal(out.host, "bastion-1");
	assert_int_equal(out.written, 1767225600);
	assert_string_equal(out.kubeconfig, "~/.kube/config-eks");
	assert_int_equal(out.n_sessions, 2);
	assert_string_equal(out.sessions[0].rhost, "10.0.0.7");
	assert_string_equal(out.sessions[0].tty, "pts/3");
	assert_int_equal(out.sessions[0].opened, 1767225000);
	assert_string_equal(out.sessions[1].id, "c3d4");
	assert_string_equal(out.sessions[1].rhost, "");
	assert_int_equal(out.n_clusters, 2);
	assert_string_equal(out.clusters[0].context, "arn:aws:eks:us-west-2:111122223333:cluster/prod");
	assert_int_equal(out.clusters[0].state, KC_STATUS_CURRENT);
	assert_string_equal(out.clusters[0].sa_name, "alice");
	assert_string_equal(out.clusters[0].jti, "0b5e-77");
	assert_int_equal(out.clusters[0].expires, 1767225900);
	assert_int_equal(out.clusters[0].next_rotation, 1767225720);
	assert_true(out.clusters[0].certificate.present);
	assert_string_equal(out.clusters[0].certificate.key_id, "alice@corp \"laptop\"");
	assert_int_equal(out.clusters[0].certificate.n_principals, 2);
	assert_string_equal(out.clusters[0].certificate.principals[1], "alice");
	assert_int_equal(out.clusters[0].certificate.valid_before, 1767229200);
	assert_false(out.clusters[0].lock.present);
	assert_int_equal(out.clusters[1].state, KC_STATUS_REVOKING);
	assert_int_equal(out.clusters[1].pending_revocations, 2);
	assert_string_equal(out.clusters[1].reason, "revoked: {not} confirmed: yet, [really]");
	assert_true(out.clusters[1].lock.present);
	assert_string_equal(out.clusters[1].lock.by, "root");
	assert_int_equal(out.clusters[1].lock.until, 0);
	assert_true(out.lock.present);
	assert_int_equal(out.lock.until, 1767228000);
	assert_string_equal(out.lock.reason, "left the team");
	kc_status_free(&out);
	kc_buf_free(&text);
}

static void refused(const char *text, const char *why)
{
	struct kc_status out;
	struct kc_err err = { "" };

	assert_int_equal(kc_status_parse(text, strlen(text), &out, &err), -1);
	if (!strstr(err.msg, why))
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", text, err.msg, why);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("{\"version\": 2, \"uid\": 1, \"user\": \"a\", \"written\": \"2026-01-01T00:00:00Z\"}", "version 2");
	refused("{\"version\": 1, \"user\": \"a\", \"written\": \"2026-01-01T00:00:00Z\"}", "uid: missing");
	refused("{\"version\": 1, \"uid\": 1, \"user\": \"a\", \"written\": \"yesterday\"}",
		"written: not an RFC 3339");
	refused("{\"version\": 1, \"uid\": 1, \"user\": \"a\", \"written\": \"2026-01-01T00:00:00Z\", \"clusters\": "
		"[{\"cluster\": \"c\", \"state\": \"fine\"}]}",
		"clusters[0].state: a state this build does not know");
	refused("{\"version\": 1, \"uid\": 1, \"user\": \"a\", \"written\": \"2026-01-01T00:00:00Z\", \"clusters\": "
		"{\"cluster\": \"c\"}}",
		"clusters: not a list");
	refused("{\"version\": 1, \"version\": 1}", "not JSON");
	refused("[1, 2]", "not an object");
	refused("{\"version\": \"1\", \"uid\": 1}", "version: not a whole number");
}

/* A JWT of the API server's shape; the signature is not looked at. */
static void test_claims(void **state)
{
	/* {"aud":["https://kubernetes.default.svc"],"exp":1767225900,"iat":1767225000,"iss":"https://x",
	 *  "jti":"0b5e-77","kubernetes.io":{"namespace":"team-a"},"nbf":1767225000,
	 *  "sub":"system:serviceaccount:team-a:alice"} in base64url without padding */
	static const char payload[] =
		"eyJhdWQiOlsiaHR0cHM6Ly9rdWJlcm5ldGVzLmRlZmF1bHQuc3ZjIl0sImV4cCI6MTc2NzIyNTkwMCwiaWF0IjoxNzY3MjI1MDAw"
		"LCJpc3MiOiJodHRwczovL3giLCJqdGkiOiIwYjVlLTc3Iiwia3ViZXJuZXRlcy5pbyI6eyJuYW1lc3BhY2UiOiJ0ZWFtLWEifSwi"
		"bmJmIjoxNzY3MjI1MDAwLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOmFsaWNlIn0";
	char jwt[1024];
	struct kc_token_claims c;
	struct kc_err err = { "" };

	(void)state;
	snprintf(jwt, sizeof(jwt), "eyJhbGciOiJSUzI1NiJ9.%s.c2lnbmF0dXJl", payload);
	assert_int_equal(kc_token_claims_parse(jwt, strlen(jwt), &c, &err), 0);
	assert_true(c.read);
	assert_string_equal(c.subject, "system:serviceaccount:team-a:alice");
	assert_string_equal(c.jti, "0b5e-77");
	assert_int_equal(c.exp, 1767225900);
	assert_int_equal(c.iat, 1767225000);
	assert_int_equal(c.nbf, 1767225000);
	assert_int_equal(kc_token_claims_parse("not-a-jwt", 9, &c, &err), -1);
	assert_int_equal(kc_token_claims_parse("a.!!!.b", 7, &c, &err), -1);
	assert_false(c.read);
}

/* ---- the tally --------------------------------------------------------------------- */

static char base[PATH_MAX];

static int setup(void **state)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	(void)state;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	snprintf(base, sizeof(base), "%s/tally-XXXXXX", dirname(exe));
	if (!mkdtemp(base))
		return -1;
	kc_metrics_use_dir(base);
	return 0;
}

static int teardown(void **state)
{
	DIR *d = opendir(base);
	struct dirent *de;

	(void)state;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(base);
	kc_metrics_use_dir(NULL);
	kc_tally_enable(false);
	return 0;
}

static void *counter(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		kc_tally_mint("prod", KC_METRICS_SUCCESS, 0.02);
		kc_tally_revocation("prod", i % 2 ? KC_METRICS_SUCCESS : KC_METRICS_FAILURE);
		kc_tally_cut("prod", 3);
	}
	return NULL;
}

static bool has_line(const struct kc_buf *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(text->data, want) != NULL;
}

static void test_tally(void **state)
{
	pthread_t t[THREADS];
	struct kc_metrics *store = NULL;
	struct kc_buf text = { 0 };
	struct kc_err err = { "" };
	const char *clusters[] = { "prod" };
	struct stat st;
	char path[PATH_MAX + 32];

	(void)state;
	/* Off: nothing is counted, nothing written. */
	kc_tally_enable(false);
	kc_tally_login(KC_METRICS_SUCCESS);
	kc_tally_commit(kc_now_ms() + 1000);
	snprintf(path, sizeof(path), "%s/%s", base, KC_METRICS_STORE);
	assert_int_equal(stat(path, &st), -1);
	/* On: every thread's counts, none lost, in one commit. */
	kc_tally_enable(true);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, counter, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	kc_tally_login(kc_tally_result_of(0));
	kc_tally_login(kc_tally_result_of(10));
	kc_tally_logout(kc_tally_result_of(1));
	kc_tally_cut("prod", 0); /* nothing cut: not a count */
	kc_tally_job_done(KC_METRICS_GC, 1767225600);
	kc_tally_commit(kc_now_ms() + 1000);
	kc_tally_commit(kc_now_ms() + 1000); /* the batch was emptied: adds nothing */
	assert_int_equal(kc_metrics_load(&store, &err), 0);
	assert_int_equal(kc_metrics_render(store, clusters, 1, NULL, &text, &err), 0);
	assert_true(has_line(&text, "pam_kubeconfig_mints_total{cluster=\"prod\",result=\"success\"} 2000"));
	assert_true(has_line(&text, "pam_kubeconfig_revocations_total{cluster=\"prod\",result=\"failure\"} 1000"));
	assert_true(has_line(&text, "pam_kubeconfig_revocations_total{cluster=\"prod\",result=\"success\"} 1000"));
	assert_true(has_line(&text, "pam_kubeconfig_connections_cut_total{cluster=\"prod\"} 6000"));
	assert_true(has_line(&text, "pam_kubeconfig_mint_duration_seconds_count{cluster=\"prod\"} 2000"));
	assert_true(has_line(&text, "pam_kubeconfig_logins_total{result=\"success\"} 1"));
	assert_true(has_line(&text, "pam_kubeconfig_logins_total{result=\"ignored\"} 1"));
	assert_true(has_line(&text, "pam_kubeconfig_logouts_total{result=\"failure\"} 1"));
	assert_true(has_line(&text, "pam_kubeconfig_last_gc_success_timestamp_seconds 1767225600"));
	kc_metrics_free(store);
	kc_buf_free(&text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_claims),
		cmocka_unit_test_setup_teardown(test_tally, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

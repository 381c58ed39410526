/* The CPU part of a login, for callgrind (instruction counts are stable on a
 * noisy machine): parse a config, map a user, merge a kubeconfig; or presign EKS
 * tokens; or the cut of a user's connections, as the helper makes it.
 * Also the stand-ins refresh's bench needs: N processes alive, each a
 * session's own (its pid in the index of open sessions).
 *   cpu_bench login CONFIG USER N  |  cpu_bench eks-token N
 *   cpu_bench holders N   (prints N pids, one per line, then "ready"; all end at EOF on stdin) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "aws/eks.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"
#include "config/config.h"
#include "asuser/kubeconfig_merge.h"
#include "config/mapping.h"

static int login(const char *path, const char *user, int n)
{
	for (int i = 0; i < n; i++) {
		struct kc_err err;
		struct kc_config *cfg = kc_config_load(path, KC_LOAD_NO_FILES, &err);
		char *groups[] = { (char *)user };
		struct kc_identity id = { .name = (char *)user,
					  .uid = 1000,
					  .gid = 1000,
					  .home = (char *)"/home/u",
					  .groups = groups,
					  .n_groups = 1 };
		struct kc_target *t;
		struct kc_buf out = { 0 };
		size_t mapped;

		if (!cfg) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		t = calloc(cfg->n_clusters, sizeof(*t));
		mapped = kc_map_user(cfg, &id, t);
		for (size_t c = 0; c < cfg->n_clusters && mapped; c++) {
			struct kc_merge_entry e = {
				.name = t[c].cluster->context,
				.server = "https://127.0.0.1:6443",
				.ca_pem = (const unsigned char *)"-----BEGIN CERTIFICATE-----\nMIIB\n",
				.ca_pem_len = 33,
				.sa_namespace = t[c].sa_namespace,
				.token_file = "/run/pam_kubeconfig/1000/c.token"
			};
			struct kc_buf notes = { 0 };
			struct kc_err e2;
			bool changed, empty;

			if (t[c].rule) {
				kc_kubeconfig_merge(NULL, 0, &e, 1, NULL, &out, &changed, &empty, &notes, &e2);
				kc_buf_free(&notes);
				break;
			}
		}
		if (!mapped) {
			fprintf(stderr, "%s does not map\n", user);
			return 1;
		}
		kc_buf_free(&out);
		free(t);
		kc_config_free(cfg);
	}
	return 0;
}

static int eks_tokens(int n)
{
	struct kc_aws_credentials c = { strdup("AKIDEXAMPLE"), strdup("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
					strdup("IQoJb3JpZ2luX2VjEXAMPLEsessiontoken"), 0 };

	struct kc_aws_service_endpoint sts;
	struct kc_err err;

	if (kc_aws_resolve("sts", "us-west-2", NULL, &sts, &err) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		char *token;

		if (kc_eks_token(&c, "prod", &sts, 1795942539, &token, &err) < 0)
			return 1;
		kc_free_secret(token);
	}
	kc_aws_credentials_clear(&c);
	return 0;
}

/* N children that wait; they end with this process (PR_SET_PDEATHSIG), which
 * ends at EOF on stdin. */
static int holders(int n)
{
	pid_t parent = getpid();
	char c;

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
		printf("%d\n", (int)pid);
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "login") == 0)
		return login(argv[2], argv[3], atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "eks-token") == 0)
		return eks_tokens(atoi(argv[2]));
	if (argc == 3 && strcmp(argv[1], "holders") == 0)
		return holders(atoi(argv[2]));
	fprintf(stderr, "usage: cpu_bench login CONFIG USER N | eks-token N | holders N\n");
	return 2;
}

/* pam-kubeconfig: argument parsing and dispatch only. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "kc_admin.h"
#include "kc_config.h"
#include "kc_cut.h"
#include "kc_json.h"
#include "kc_lifecycle.h"
#include "kc_log.h"
#include "kc_rbac.h"

static const char usage_text[] =
	"usage: pam-kubeconfig COMMAND [--config PATH] ...\n"
	"  open  --user U --session ID [--deadline MS] [--rhost H] [--tty T] [--service S] [--pid P] [--debug]\n"
	"  close --user U --session ID [--deadline MS] [--pid P] [--debug]\n"
	"  check [--online] [--allow-insecure]   validate the config (and, online, the helper's RBAC)\n"
	"  explain USER                          which rules match USER and why\n"
	"  rbac [--cluster NAME] [--user NAME]   the least-privilege manifest for the helper's identity on\n"
	"                                        one cluster (--cluster: required with several)\n"
	"  refresh [--now USER] [--deadline MS]  rotate tokens of open sessions, revoke what no longer maps (timer)\n"
	"  gc [--deadline MS]                    prune stale records, retry revocations (timer, boot)\n"
	"  audit --audit-log FILE --mint-log FILE  per Unix login, the API requests made with its tokens\n"
	"  eks-token (--cluster-name N | --cluster-id ID) [--region R] [--role-arn A] [--profile P]\n"
	"                                        the ExecCredential `aws eks get-token` prints\n"
	"The config defaults to " KC_DEFAULT_CONFIG ". See pam-kubeconfig(8).\n";

/* Root with CAP_SYS_RESOURCE lifts hard limits too; without it, the soft
 * limits still go up to the hard ones. */
static void sane_limits(void)
{
	struct rlimit fsize = { RLIM_INFINITY, RLIM_INFINITY }, nofile;

	if (setrlimit(RLIMIT_FSIZE, &fsize) < 0 && getrlimit(RLIMIT_FSIZE, &fsize) == 0) {
		fsize.rlim_cur = fsize.rlim_max;
		setrlimit(RLIMIT_FSIZE, &fsize);
	}
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 1024) {
		struct rlimit want = { 1024, nofile.rlim_max < 1024 ? 1024 : nofile.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
			nofile.rlim_cur = nofile.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
	}
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

/* `cut UID CLUSTER SERVER SINCE AFTER ADDR...`: the second cut of a user's
 * connections, started detached by the helper itself (kc_cut.h). */
static int cut_command(int argc, char **argv)
{
	char *end;
	unsigned long uid;

	if (argc < 7)
		return KC_EXIT_USAGE;
	uid = strtoul(argv[2], &end, 10);
	if (*end || uid == 0 || uid > 0xfffffffeUL)
		return KC_EXIT_USAGE;
	clearenv();
	kc_harden_process();
	kc_log_init(false);
	return kc_cmd_cut((uid_t)uid, argv[3], argv[4], (time_t)strtoll(argv[5], NULL, 10), atoi(argv[6]), argv + 7,
			  (size_t)(argc - 7));
}

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "pam-kubeconfig: %s\n", why);
	fputs(usage_text, stderr);
	return KC_EXIT_USAGE;
}

enum {
	OPT_USER = 1,
	OPT_SESSION,
	OPT_CONFIG,
	OPT_RHOST,
	OPT_TTY,
	OPT_SERVICE,
	OPT_PID,
	OPT_DEBUG,
	OPT_ONLINE,
	OPT_INSECURE,
	OPT_HELP,
	OPT_DEADLINE,
	OPT_NOW,
	OPT_CLUSTER,
	OPT_AUDIT_LOG,
	OPT_MINT_LOG
};

static const struct option options[] = {
	{ "user", required_argument, NULL, OPT_USER },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "rhost", required_argument, NULL, OPT_RHOST },
	{ "tty", required_argument, NULL, OPT_TTY },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "online", no_argument, NULL, OPT_ONLINE },
	{ "allow-insecure", no_argument, NULL, OPT_INSECURE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "cluster", required_argument, NULL, OPT_CLUSTER },
	{ "audit-log", required_argument, NULL, OPT_AUDIT_LOG },
	{ "mint-log", required_argument, NULL, OPT_MINT_LOG },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct kc_session_args a = { .config = KC_DEFAULT_CONFIG };
	const char *cmd, *cluster = NULL, *audit_log = NULL, *mint_log = NULL, *now_user = NULL;
	bool debug = false, online = false, insecure = false;
	int opt, rc;

	if (argc < 2 || !argv[0] || !argv[1])
		return usage("no command given");
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "cut") == 0)
		return cut_command(argc, argv);
	/* eks-token (kubectl's exec plugin, awscli's options) parses its own. */
	if (strcmp(cmd, "eks-token") == 0) {
		kc_log_init(false);
		return kc_cmd_eks_token(argc - 1, argv + 1);
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_USER: a.user = optarg; break;
		case OPT_SESSION: a.session = optarg; break;
		case OPT_CONFIG: a.config = optarg; break;
		case OPT_RHOST: a.rhost = optarg; break;
		case OPT_TTY: a.tty = optarg; break;
		case OPT_SERVICE: a.service = optarg; break;
		case OPT_PID: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v <= 0 || v > 0x3fffffff)
				return usage("--pid must be a process id");
			a.pid = (pid_t)v;
			break;
		}
		case OPT_DEBUG: debug = true; break;
		case OPT_ONLINE: online = true; break;
		case OPT_INSECURE: insecure = true; break;
		case OPT_HELP: fputs(usage_text, stdout); return 0;
		case OPT_DEADLINE: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v <= 0 || v > 3600000)
				return usage("--deadline must be milliseconds, 1 to 3600000");
			a.deadline_ms = v;
			break;
		}
		case OPT_NOW: now_user = optarg; break;
		case OPT_CLUSTER: cluster = optarg; break;
		case OPT_AUDIT_LOG: audit_log = optarg; break;
		case OPT_MINT_LOG: mint_log = optarg; break;
		default: return usage(NULL);
		}
	}

	if (cluster && strcmp(cmd, "rbac") != 0)
		return usage("--cluster is an option of rbac");

	/* The privileged commands never take anything from the environment; only
	 * eks-token (an admin's awscli replacement, dispatched above) and rbac keep
	 * it. Nor do they keep the caller's limits: a file size limit of 0 or a
	 * handful of fds must not cut a kubeconfig short. */
	if (strcmp(cmd, "rbac") != 0) {
		clearenv();
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		sane_limits();
		kc_harden_process();
	}
	kc_log_init(debug);
	kc_json_secure_init();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		kc_error("cannot initialise libcurl");
		return KC_EXIT_ERROR;
	}

	if (strcmp(cmd, "open") == 0 || strcmp(cmd, "close") == 0) {
		if (!a.user || !a.session || optind != argc)
			return usage("open and close need --user and --session");
		rc = cmd[0] == 'o' ? kc_cmd_open(&a) : kc_cmd_close(&a);
	} else if (strcmp(cmd, "check") == 0) {
		rc = optind == argc ? kc_cmd_check(a.config, online, insecure) : usage("check takes no arguments");
	} else if (strcmp(cmd, "explain") == 0) {
		rc = optind + 1 == argc ? kc_cmd_explain(a.config, argv[optind]) : usage("explain needs one USER");
	} else if (strcmp(cmd, "rbac") == 0) {
		rc = optind == argc ? kc_cmd_rbac(a.config, cluster, a.user ? a.user : KC_DEFAULT_IDENTITY)
				    : usage("rbac takes only --cluster NAME and --user NAME");
	} else if (strcmp(cmd, "refresh") == 0) {
		rc = optind == argc ? kc_cmd_refresh(a.config, now_user, a.deadline_ms)
				    : usage("refresh takes no arguments");
	} else if (strcmp(cmd, "gc") == 0) {
		rc = optind == argc ? kc_cmd_gc(a.config, a.deadline_ms) : usage("gc takes no arguments");
	} else if (strcmp(cmd, "audit") == 0) {
		rc = optind == argc && audit_log && mint_log
			     ? kc_cmd_audit(audit_log, mint_log)
			     : usage("audit needs --audit-log FILE and --mint-log FILE");
	} else {
		rc = usage("unknown command");
	}
	curl_global_cleanup();
	return rc;
}

/* pam-kubeconfig: argument parsing and dispatch only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/eks_cli.h"
#include "admin/rbac.h"
#include "common/json_alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "config/config.h"
#include "lifecycle/cut.h"
#include "lifecycle/login.h"
#include "lifecycle/timers.h"

static const char usage_text[] =
	"usage: pam-kubeconfig COMMAND [--config PATH] ...\n"
	"  open  --user U [--uid N] --session ID [--deadline MS] [--rhost H] [--tty T] [--service S] [--pid P]\n"
	"        [--debug]\n"
	"  close --user U --uid N --session ID [--deadline MS] [--pid P] [--debug]\n"
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
	OPT_MINT_LOG,
	OPT_UID
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
	{ "uid", required_argument, NULL, OPT_UID },
	{ NULL, 0, NULL, 0 },
};

struct args {
	struct kc_session_args s;
	const char *cluster, *audit_log, *mint_log, *now_user;
	bool debug, online, insecure;
	char **rest; /* the operands after the options */
	int n_rest;
	int argc; /* the whole command line, for the commands that parse their own */
	char **argv;
};

static int number(const char *s, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v <= 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* 0 parsed, 1 --help printed, -1 a usage error (printed). */
static int parse_args(int argc, char **argv, struct args *a)
{
	long v;
	int opt;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_USER: a->s.user = optarg; break;
		case OPT_SESSION: a->s.session = optarg; break;
		case OPT_CONFIG: a->s.config = optarg; break;
		case OPT_RHOST: a->s.rhost = optarg; break;
		case OPT_TTY: a->s.tty = optarg; break;
		case OPT_SERVICE: a->s.service = optarg; break;
		case OPT_PID:
			if (number(optarg, 0x3fffffff, &v) < 0)
				return usage("--pid must be a process id"), -1;
			a->s.pid = (pid_t)v;
			break;
		case OPT_UID:
			if (number(optarg, 0x7ffffffe, &v) < 0)
				return usage("--uid must be a user id above 0"), -1;
			a->s.uid = (uid_t)v;
			break;
		case OPT_DEADLINE:
			if (number(optarg, 3600000, &v) < 0)
				return usage("--deadline must be milliseconds, 1 to 3600000"), -1;
			a->s.deadline_ms = v;
			break;
		case OPT_DEBUG: a->debug = true; break;
		case OPT_ONLINE: a->online = true; break;
		case OPT_INSECURE: a->insecure = true; break;
		case OPT_NOW: a->now_user = optarg; break;
		case OPT_CLUSTER: a->cluster = optarg; break;
		case OPT_AUDIT_LOG: a->audit_log = optarg; break;
		case OPT_MINT_LOG: a->mint_log = optarg; break;
		case OPT_HELP: fputs(usage_text, stdout); return 1;
		default: return usage(NULL), -1;
		}
	}
	a->rest = argv + optind;
	a->n_rest = argc - optind;
	return 0;
}

/* ---- the commands: each checks its own operands ------------------------------ */

static int run_open_close(const struct args *a, bool open)
{
	if (!a->s.user || !a->s.session || a->n_rest)
		return usage("open and close need --user and --session");
	return open ? kc_cmd_open(&a->s) : kc_cmd_close(&a->s);
}

static int run_open(const struct args *a)
{
	return run_open_close(a, true);
}

static int run_close(const struct args *a)
{
	return run_open_close(a, false);
}

static int run_check(const struct args *a)
{
	return a->n_rest ? usage("check takes no arguments") : kc_cmd_check(a->s.config, a->online, a->insecure);
}

static int run_explain(const struct args *a)
{
	return a->n_rest != 1 ? usage("explain needs one USER") : kc_cmd_explain(a->s.config, a->rest[0]);
}

static int run_rbac(const struct args *a)
{
	return a->n_rest ? usage("rbac takes only --cluster NAME and --user NAME")
			 : kc_cmd_rbac(a->s.config, a->cluster, a->s.user ? a->s.user : KC_DEFAULT_IDENTITY);
}

static int run_refresh(const struct args *a)
{
	return a->n_rest ? usage("refresh takes no arguments")
			 : kc_cmd_refresh(a->s.config, a->now_user, a->s.deadline_ms);
}

static int run_gc(const struct args *a)
{
	return a->n_rest ? usage("gc takes no arguments") : kc_cmd_gc(a->s.config, a->s.deadline_ms);
}

static int run_audit(const struct args *a)
{
	return a->n_rest || !a->audit_log || !a->mint_log ? usage("audit needs --audit-log FILE and --mint-log FILE")
							  : kc_cmd_audit(a->audit_log, a->mint_log);
}

/* eks-token (kubectl's exec plugin) takes awscli's options. */
static int run_eks_token(const struct args *a)
{
	return kc_cmd_eks_token(a->argc - 1, a->argv + 1);
}

/* Who a command runs for decides what it may take from its caller. */
enum trust {
	PRIVILEGED, /* root's own work: no environment, hardened, our limits */
	AS_CALLER, /* an admin's or a user's tool: run as whoever calls it, with their environment */
};

static const struct command {
	const char *name;
	int (*run)(const struct args *a);
	enum trust trust;
	bool own_options; /* parses the command line itself */
} commands[] = {
	{ "open", run_open, PRIVILEGED, false },   { "close", run_close, PRIVILEGED, false },
	{ "check", run_check, PRIVILEGED, false }, { "explain", run_explain, PRIVILEGED, false },
	{ "rbac", run_rbac, AS_CALLER, false },	   { "refresh", run_refresh, PRIVILEGED, false },
	{ "gc", run_gc, PRIVILEGED, false },	   { "audit", run_audit, PRIVILEGED, false },
	{ "eks-token", run_eks_token, AS_CALLER, true },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* The privileged commands never take anything from the environment, nor the
 * caller's limits: a file size limit of 0 or a handful of fds must not cut a
 * kubeconfig short. */
static void enter(const struct command *c)
{
	if (c->trust != PRIVILEGED)
		return;
	clearenv();
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	kc_process_harden();
}

int main(int argc, char **argv)
{
	struct args a = { .s = { .config = KC_DEFAULT_CONFIG }, .argc = argc, .argv = argv };
	const struct command *c;
	int rc;

	if (argc < 2 || !argv[0] || !argv[1])
		return usage("no command given");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return fputs(usage_text, stdout), 0;
	c = find_command(argv[1]);
	if (!c)
		return usage("unknown command");
	if (!c->own_options) {
		rc = parse_args(argc, argv, &a);
		if (rc != 0)
			return rc > 0 ? 0 : KC_EXIT_USAGE;
		if (a.cluster && c->run != run_rbac)
			return usage("--cluster is an option of rbac");
	}
	enter(c);
	kc_log_init(a.debug);
	kc_json_secure_init();
	{
		char boot[64];

		kc_boot_id(boot); /* read once here, before any thread or fork */
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		kc_error("cannot initialise libcurl");
		return KC_EXIT_ERROR;
	}
	kc_process_title_area(argc, argv);
	rc = c->run(&a);
	kc_cut_finish();
	curl_global_cleanup();
	kc_debug("exit status %d", rc);
	return rc;
}

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
#include "admin/lockcmd.h"
#include "admin/sessions.h"
#include "admin/rbac.h"
#include "asuser/status_cli.h"
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
	"        [--auth-info -] [--debug]\n"
	"  close --user U --uid N --session ID [--deadline MS] [--pid P] [--debug]\n"
	"  check [--online] [--allow-insecure]   validate the config (and, online, the helper's RBAC)\n"
	"  explain USER [--ssh-cert FILE]        which rules match USER and why (with that SSH certificate)\n"
	"  rbac [--cluster NAME] [--user NAME]   the least-privilege manifest for the helper's identity on\n"
	"                                        one cluster (--cluster: required with several)\n"
	"  refresh [--now USER] [--deadline MS]  rotate tokens of open sessions, revoke what no longer maps (timer)\n"
	"  gc [--deadline MS]                    prune stale records, retry revocations (timer, boot)\n"
	"  audit --audit-log FILE [--ledger FILE] [--journal FILE] [--trust-syslog FILE] [--output json]\n"
	"                                        per Unix login, the API requests made with its tokens, from\n"
	"                                        the root ledger (and journal entries of root's helper)\n"
	"  status [--output json]                (any user) your Kubernetes access on this host and when it\n"
	"                                        ends; exit 1 when no context holds a valid grant\n"
	"  revoke USER [--cluster NAME] [--for DURATION] [--fleet]\n"
	"                                        lock USER out now: revoke, remove token files, cut; no token\n"
	"                                        is minted for USER until unlock (or DURATION has passed)\n"
	"  unlock USER [--cluster NAME] [--fleet]  lift the lock; open sessions get their tokens back\n"
	"  sessions [--fleet] [--output json]    who holds access now: this host's records (--fleet: every\n"
	"                                        bastion's Secrets of this host's accounts, by name)\n"
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
	OPT_LEDGER,
	OPT_JOURNAL,
	OPT_TRUST_SYSLOG,
	OPT_OUTPUT,
	OPT_UID,
	OPT_FOR,
	OPT_AUTH_INFO,
	OPT_SSH_CERT,
	OPT_FLEET
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
	{ "ledger", required_argument, NULL, OPT_LEDGER },
	{ "journal", required_argument, NULL, OPT_JOURNAL },
	{ "trust-syslog", required_argument, NULL, OPT_TRUST_SYSLOG },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "for", required_argument, NULL, OPT_FOR },
	{ "auth-info", required_argument, NULL, OPT_AUTH_INFO },
	{ "ssh-cert", required_argument, NULL, OPT_SSH_CERT },
	{ "fleet", no_argument, NULL, OPT_FLEET },
	{ NULL, 0, NULL, 0 },
};

struct args {
	struct kc_session_args s;
	const char *cluster, *audit_log, *ledger, *journal, *trust_syslog, *now_user;
	bool json; /* --output json (status, audit) */
	bool output_given, audit_only; /* --output; an option only audit takes */
	long for_seconds; /* revoke --for */
	const char *ssh_cert; /* explain --ssh-cert */
	bool fleet; /* revoke, unlock, sessions --fleet */
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

/* The options of audit and status (what they read, how they print). 0, or
 * -1 a usage error (printed). */
static int report_option(int opt, struct args *a)
{
	const char **slot = opt == OPT_AUDIT_LOG      ? &a->audit_log
			    : opt == OPT_LEDGER	      ? &a->ledger
			    : opt == OPT_JOURNAL      ? &a->journal
			    : opt == OPT_TRUST_SYSLOG ? &a->trust_syslog
						      : NULL;

	if (slot) {
		*slot = optarg;
		a->audit_only = true;
		return 0;
	}
	if (opt != OPT_OUTPUT)
		return usage(NULL), -1;
	if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
		return usage("--output must be json or text"), -1;
	a->json = strcmp(optarg, "json") == 0;
	a->output_given = true;
	return 0;
}

/* 0 parsed, 1 --help printed, -1 a usage error (printed). */
/* The options that take their argument as it is, or none. */
static bool plain_option(int opt, struct args *a)
{
	switch (opt) {
	case OPT_USER: a->s.user = optarg; break;
	case OPT_SESSION: a->s.session = optarg; break;
	case OPT_CONFIG: a->s.config = optarg; break;
	case OPT_RHOST: a->s.rhost = optarg; break;
	case OPT_TTY: a->s.tty = optarg; break;
	case OPT_SERVICE: a->s.service = optarg; break;
	case OPT_NOW: a->now_user = optarg; break;
	case OPT_CLUSTER: a->cluster = optarg; break;
	case OPT_SSH_CERT: a->ssh_cert = optarg; break;
	case OPT_DEBUG: a->debug = true; break;
	case OPT_ONLINE: a->online = true; break;
	case OPT_INSECURE: a->insecure = true; break;
	case OPT_FLEET: a->fleet = true; break;
	default: return false;
	}
	return true;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	long v;
	int opt;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
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
		case OPT_AUTH_INFO:
			if (strcmp(optarg, "-") != 0)
				return usage("--auth-info takes only '-': sshd's SSH_AUTH_INFO_0 on stdin"), -1;
			a->s.auth_info = true;
			break;
		case OPT_FOR:
			if (kc_parse_duration(optarg, &a->for_seconds) < 0 || a->for_seconds <= 0)
				return usage("--for must be a duration such as 30s, 15m or 8h"), -1;
			break;
		case OPT_HELP: fputs(usage_text, stdout); return 1;
		default:
			if (!plain_option(opt, a) && report_option(opt, a) < 0)
				return -1;
			break;
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
	return a->n_rest != 1 ? usage("explain needs one USER") : kc_cmd_explain(a->s.config, a->rest[0], a->ssh_cert);
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

static int run_sessions(const struct args *a)
{
	return a->n_rest ? usage("sessions takes only --fleet and --output json")
			 : kc_cmd_sessions(a->s.config, a->fleet, a->json);
}

static int run_revoke(const struct args *a)
{
	return a->n_rest != 1
		       ? usage("revoke needs one USER")
		       : kc_cmd_revoke(a->s.config, a->rest[0], a->cluster, a->for_seconds, a->fleet, a->s.deadline_ms);
}

static int run_unlock(const struct args *a)
{
	return a->n_rest != 1 || a->for_seconds
		       ? usage("unlock needs one USER (and takes --cluster NAME)")
		       : kc_cmd_unlock(a->s.config, a->rest[0], a->cluster, a->fleet, a->s.deadline_ms);
}

static int run_audit(const struct args *a)
{
	const struct kc_audit_args au = { .audit_log = a->audit_log,
					  .ledger = a->ledger,
					  .journal = a->journal,
					  .trust_syslog = a->trust_syslog,
					  .json = a->json };

	return a->n_rest || !a->audit_log ? usage("audit needs --audit-log FILE") : kc_cmd_audit(&au);
}

/* The user's own view: no root, no network, no config (asuser/status_cli.h). */
static int run_status(const struct args *a)
{
	return a->n_rest ? usage("status takes only --output json") : kc_cmd_status(NULL, a->json, stdout);
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
	{ "open", run_open, PRIVILEGED, false },
	{ "close", run_close, PRIVILEGED, false },
	{ "check", run_check, PRIVILEGED, false },
	{ "explain", run_explain, PRIVILEGED, false },
	{ "rbac", run_rbac, AS_CALLER, false },
	{ "refresh", run_refresh, PRIVILEGED, false },
	{ "gc", run_gc, PRIVILEGED, false },
	{ "audit", run_audit, PRIVILEGED, false },
	{ "status", run_status, AS_CALLER, false },
	{ "sessions", run_sessions, PRIVILEGED, false },
	{ "revoke", run_revoke, PRIVILEGED, false },
	{ "unlock", run_unlock, PRIVILEGED, false },
	{ "eks-token", run_eks_token, AS_CALLER, true },
};

/* An option of audit or status given to another command: what to say. */
static const char *misplaced(const struct args *a, const struct command *c)
{
	if (a->audit_only && c->run != run_audit)
		return "--audit-log, --ledger, --journal and --trust-syslog are options of audit";
	if (a->output_given && c->run != run_audit && c->run != run_status && c->run != run_sessions)
		return "--output is an option of status, sessions and audit";
	return NULL;
}

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

/* The end of every command. What it had to make durable is on disk by now
 * and what it had to send is sent; what is left is the libraries' destructors
 * (OpenSSL's, GnuTLS's, p11-kit's and the rest of libcurl's ~35 libraries),
 * about a millisecond that every login and logout would wait for. A
 * sanitizer's build runs them: its leak check is one of them. */
static int finish(int rc)
{
#ifndef __SANITIZE_ADDRESS__
	fflush(NULL); /* stdout carries the module's messages */
	_exit(rc);
#endif
	curl_global_cleanup();
	return rc;
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
		if (a.cluster && c->run != run_rbac && c->run != run_revoke && c->run != run_unlock)
			return usage("--cluster is an option of rbac, revoke and unlock");
		if (a.for_seconds && c->run != run_revoke)
			return usage("--for is an option of revoke");
		if (misplaced(&a, c))
			return usage(misplaced(&a, c));
		if (a.ssh_cert && c->run != run_explain)
			return usage("--ssh-cert is an option of explain");
		if (a.fleet && c->run != run_revoke && c->run != run_unlock && c->run != run_sessions)
			return usage("--fleet is an option of revoke, unlock and sessions");
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
	kc_debug("exit status %d", rc);
	return finish(rc);
}

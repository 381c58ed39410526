/* pam_kubeconfig.so: a session module that runs pam-kubeconfig at login and
 * logout and maps its result to a PAM code. Everything else is the helper's. */
#define PAM_SM_SESSION

#include <ctype.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "kc_protocol.h"
#include "run_helper.h"

#ifndef KC_HELPER_PATH /* the build passes $(SBINDIR)/pam-kubeconfig */
#define KC_HELPER_PATH "/usr/sbin/pam-kubeconfig"
#endif
#define DEFAULT_CONFIG "/etc/pam_kubeconfig/config.yaml"
#define DATA_SESSION "pam_kubeconfig_session"
#define DATA_UID "pam_kubeconfig_uid" /* the uid resolved at open, for a close the directory cannot answer */

struct options {
	const char *config;
	const char *helper;
	int timeout_ms;
	bool quiet;
	bool debug;
};

static void parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o)
{
	o->config = DEFAULT_CONFIG;
	o->helper = KC_HELPER_PATH;
	o->timeout_ms = KC_DEFAULT_TIMEOUT_MS;
	o->quiet = o->debug = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "config=", 7) == 0 && a[7] == '/') {
			o->config = a + 7;
		} else if (strncmp(a, "helper=", 7) == 0) {
			o->helper = a + 7;
		} else if (strncmp(a, "timeout=", 8) == 0) {
			char *end;
			long v = strtol(a + 8, &end, 10);

			if (*end || v < 1 || v > 300)
				pam_syslog(pamh, LOG_ERR, "timeout=%s: want 1 to 300 seconds; using %d", a + 8,
					   o->timeout_ms / 1000);
			else
				o->timeout_ms = (int)v * 1000;
		} else if (strcmp(a, "quiet") == 0) {
			o->quiet = true;
		} else if (strcmp(a, "debug") == 0) {
			o->debug = true;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option '%s' ignored", a);
		}
	}
}

/* PAM items reach the helper's argv and its log lines: printable ASCII only. */
static void clean_item(pam_handle_t *pamh, int item, char *out, size_t len)
{
	const void *v = NULL;
	const char *s;
	size_t i;

	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v) {
		snprintf(out, len, "-");
		return;
	}
	s = v;
	for (i = 0; s[i] && i + 1 < len; i++)
		out[i] = (isprint((unsigned char)s[i]) && s[i] != ' ') ? s[i] : '?';
	out[i] = '\0';
	if (!i)
		snprintf(out, len, "-");
}

static void relay_stderr(pam_handle_t *pamh, char *text)
{
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int prio = strstr(line, ": warning: ") ? LOG_WARNING : strstr(line, ": debug: ") ? LOG_DEBUG : LOG_ERR;

		pam_syslog(pamh, prio, "%s", line);
	}
}

/* KUBECONFIG= only after success; MESSAGE= lines always (they say what failed). */
static int apply_stdout(pam_handle_t *pamh, int flags, const struct options *o, char *text, bool success)
{
	char *save = NULL;
	int rc = PAM_SUCCESS;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (success && strncmp(line, KC_OUT_KUBECONFIG "/", sizeof(KC_OUT_KUBECONFIG)) == 0) {
			if (pam_putenv(pamh, line) != PAM_SUCCESS) {
				pam_syslog(pamh, LOG_ERR, "cannot set KUBECONFIG in the session");
				rc = PAM_SESSION_ERR;
			}
		} else if (strncmp(line, KC_OUT_MESSAGE, sizeof(KC_OUT_MESSAGE) - 1) == 0) {
			if (!(flags & PAM_SILENT) && !o->quiet)
				pam_info(pamh, "%s", line + sizeof(KC_OUT_MESSAGE) - 1);
		}
	}
	return rc;
}

static void free_data(pam_handle_t *pamh, void *data, int error_status)
{
	free(data);
}

/* open: a new random session id, kept with the handle for close. close: the
 * one open kept; none means this handle opened no session of ours. */
static int session_id(pam_handle_t *pamh, bool open, char session[33])
{
	const void *data = NULL;
	unsigned char rnd[16];
	char *copy;

	if (!open) {
		if (pam_get_data(pamh, DATA_SESSION, &data) != PAM_SUCCESS || !data)
			return PAM_IGNORE;
		snprintf(session, 33, "%s", (const char *)data);
		return PAM_SUCCESS;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return PAM_SESSION_ERR;
	for (int i = 0; i < 16; i++)
		snprintf(session + 2 * i, 3, "%02x", rnd[i]);
	copy = strdup(session);
	if (!copy || pam_set_data(pamh, DATA_SESSION, copy, free_data) != PAM_SUCCESS) {
		free(copy);
		return PAM_SESSION_ERR;
	}
	return PAM_SUCCESS;
}

/* What the helper is told: only PAM items (made printable) and our options. */
struct call {
	char session[33], rhost[256], tty[64], service[64], pid[16], deadline[16], uid[16];
};

static int call_helper(pam_handle_t *pamh, const struct options *o, bool open, const char *user, struct call *c,
		       struct kc_helper_result *res)
{
	/* sshd's record of how the user authenticated, read from the PAM
	 * environment (never our own): the helper believes it only if no pam_env
	 * that reads the user's files ran before us. At most what the runner
	 * passes on stdin. */
	const char *auth_info = open ? pam_getenv(pamh, "SSH_AUTH_INFO_0") : NULL;

	if (auth_info && strlen(auth_info) > 60000)
		auth_info = NULL;
	clean_item(pamh, PAM_RHOST, c->rhost, sizeof(c->rhost));
	clean_item(pamh, PAM_TTY, c->tty, sizeof(c->tty));
	clean_item(pamh, PAM_SERVICE, c->service, sizeof(c->service));
	snprintf(c->pid, sizeof(c->pid), "%d", (int)getpid());
	/* The helper budgets its whole run against what is left of ours. */
	snprintf(c->deadline, sizeof(c->deadline), "%d", o->timeout_ms);
	{
		const char *argv[32] = { "pam-kubeconfig", open ? "open" : "close",
					 "--user",	   user,
					 "--uid",	   c->uid,
					 "--session",	   c->session,
					 "--config",	   o->config,
					 "--rhost",	   c->rhost,
					 "--tty",	   c->tty,
					 "--service",	   c->service,
					 "--pid",	   c->pid,
					 "--deadline",	   c->deadline };
		size_t n = 20;

		if (auth_info)
			argv[n++] = "--auth-info", argv[n++] = "-";
		if (o->debug)
			argv[n++] = "--debug";
		argv[n] = NULL;
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG, "running %s %s for %s", o->helper, argv[1], user);
		if (kc_run_helper(o->helper, argv, auth_info, o->timeout_ms, res) < 0) {
			pam_syslog(pamh, LOG_ERR, "cannot run the helper: %s", res->err);
			return PAM_SESSION_ERR;
		}
	}
	return PAM_SUCCESS;
}

/* The helper's exit status as a PAM code, with its output applied. */
static int map_result(pam_handle_t *pamh, int flags, const struct options *o, bool open, const char *user,
		      struct kc_helper_result *res)
{
	relay_stderr(pamh, res->err);
	if (res->timed_out) {
		pam_syslog(pamh, LOG_ERR, "the helper did not finish within %d s; killed (timeout=)",
			   o->timeout_ms / 1000);
		return PAM_SESSION_ERR;
	}
	if (res->exit_status == 0)
		return open ? apply_stdout(pamh, flags, o, res->out, true) : PAM_SUCCESS;
	if (res->exit_status == KC_EXIT_IGNORE) {
		/* Out of scope: nothing was recorded, so no close is run for it. Any
		 * other outcome (even a timeout) may have left a record: close runs. */
		if (open) {
			apply_stdout(pamh, flags, o, res->out, false); /* e.g. an administrator's lock */
			pam_set_data(pamh, DATA_SESSION, NULL, NULL);
		}
		return PAM_IGNORE;
	}
	if (open)
		apply_stdout(pamh, flags, o, res->out, false);
	pam_syslog(pamh, LOG_ERR, "helper %s for %s failed (exit %d)", open ? "open" : "close", user, res->exit_status);
	return PAM_SESSION_ERR;
}

/* The session's uid: at open from the passwd database, kept with the handle;
 * at close the kept one (the account may be gone, or the directory down, by
 * then: the helper revokes from its records by uid). */
static int session_uid(pam_handle_t *pamh, const char *user, bool open, uid_t *uid)
{
	const void *kept = NULL;
	struct passwd *pw;
	uid_t *copy;

	if (!open && pam_get_data(pamh, DATA_UID, &kept) == PAM_SUCCESS && kept) {
		*uid = *(const uid_t *)kept;
		return PAM_SUCCESS;
	}
	pw = pam_modutil_getpwnam(pamh, user);
	if (!pw) {
		pam_syslog(pamh, LOG_ERR, "no passwd entry for %s", user);
		return PAM_SESSION_ERR;
	}
	*uid = pw->pw_uid;
	if (!open || *uid == 0)
		return PAM_SUCCESS;
	copy = malloc(sizeof(*copy));
	if (!copy || pam_set_data(pamh, DATA_UID, copy, free_data) != PAM_SUCCESS) {
		free(copy);
		return PAM_SESSION_ERR;
	}
	*copy = *uid;
	return PAM_SUCCESS;
}

/* Runs `helper open|close` for this session and maps its exit status. */
static int run(pam_handle_t *pamh, int flags, const struct options *o, bool open)
{
	const char *user = NULL;
	struct kc_helper_result *res;
	struct call c;
	char why[512];
	uid_t uid;
	int rc;

	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user || !*user)
		return PAM_SESSION_ERR;
	/* close: nothing to do unless this handle opened a session of ours */
	rc = session_id(pamh, open, c.session);
	if (rc == PAM_SUCCESS)
		rc = session_uid(pamh, user, open, &uid);
	if (rc != PAM_SUCCESS)
		return rc;
	if (uid == 0)
		return PAM_IGNORE; /* root is never served, and the helper not even started */
	snprintf(c.uid, sizeof(c.uid), "%u", (unsigned)uid);
	if (kc_safe_helper_path(o->helper, why, sizeof(why)) < 0) {
		pam_syslog(pamh, LOG_ERR, "refusing the helper: %s", why);
		return PAM_SESSION_ERR;
	}
	res = malloc(sizeof(*res));
	if (!res)
		return PAM_SESSION_ERR;
	rc = call_helper(pamh, o, open, user, &c, res);
	if (rc == PAM_SUCCESS)
		rc = map_result(pamh, flags, o, open, user, res);
	free(res);
	return rc;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options o;

	parse_options(pamh, argc, argv, &o);
	return run(pamh, flags, &o, true);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options o;

	parse_options(pamh, argc, argv, &o);
	return run(pamh, flags, &o, false);
}

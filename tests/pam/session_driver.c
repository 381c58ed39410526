/* kc-session-driver: opens a PAM session through the real libpam, holds it until
 * told (a line on stdin, or EOF), then closes it. pamtester cannot hold a session.
 *   kc-session-driver [--hold] [--silent] [--rhost H] [--sigchld ignore|handler] SERVICE USER
 * Prints "open RC NAME", each PAM message as "INFO text"/"ERROR text", the PAM
 * environment as "ENV NAME=value", "READY" while held, then "close RC NAME". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_TEXT_INFO: printf("INFO %s\n", msg[i]->msg); break;
		case PAM_ERROR_MSG: printf("ERROR %s\n", msg[i]->msg); break;
		default: /* no prompts in a session phase */ free(r); return PAM_CONV_ERR;
		}
	}
	fflush(stdout);
	*resp = r;
	return PAM_SUCCESS;
}

static void on_sigchld(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	const char *rhost = "127.0.0.1";
	int hold = 0, flags = 0, i, rc, rc_close;
	char **env, **e;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--hold") == 0) {
			hold = 1;
		} else if (strcmp(argv[i], "--silent") == 0) {
			flags = PAM_SILENT;
		} else if (strcmp(argv[i], "--rhost") == 0 && i + 1 < argc) {
			rhost = argv[++i];
		} else if (strcmp(argv[i], "--sigchld") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "ignore") == 0)
				signal(SIGCHLD, SIG_IGN);
			else
				signal(SIGCHLD, on_sigchld);
		} else {
			break;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: kc-session-driver [--hold] [--silent] [--rhost H] [--sigchld ignore|handler] "
				"SERVICE USER\n");
		return 2;
	}
	rc = pam_start(argv[i], argv[i + 1], &c, &pamh);
	if (rc != PAM_SUCCESS) {
		printf("start %d %s\n", rc, pam_strerror(pamh, rc));
		return 1;
	}
	pam_set_item(pamh, PAM_RHOST, rhost);
	pam_set_item(pamh, PAM_TTY, "ssh");
	rc = pam_open_session(pamh, flags);
	printf("open %d %s\n", rc, pam_strerror(pamh, rc));
	env = pam_getenvlist(pamh);
	for (e = env; e && *e; e++) {
		printf("ENV %s\n", *e);
		free(*e);
	}
	free(env);
	fflush(stdout);
	if (rc == PAM_SUCCESS && hold) {
		char line[64];

		printf("READY\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			line[0] = '\0';
	}
	rc_close = rc == PAM_SUCCESS ? pam_close_session(pamh, flags) : PAM_SESSION_ERR;
	if (rc == PAM_SUCCESS)
		printf("close %d %s\n", rc_close, pam_strerror(pamh, rc_close));
	fflush(stdout);
	pam_end(pamh, rc);
	return rc == PAM_SUCCESS ? 0 : 1;
}

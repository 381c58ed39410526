/* The session stack's order (config/pamstack.c) over PAM configurations in a
 * scratch root: Debian's sshd as shipped, includes of every kind, libpam's
 * syntax (brackets, continuations, comments, case, "-session"), pam_env's
 * arguments, the fallbacks to /usr/lib/pam.d and "other", and what makes the
 * answer unknowable. Reading needs root-owned files: as another user only
 * that refusal is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "config/pamstack.h"

/* Debian 12's /etc/pam.d/sshd, the module line put in at @US@ (line numbers matter). */
static const char debian_sshd[] =
	"# PAM configuration for the Secure Shell service\n" /* 1 */
	"\n"
	"# Standard Un*x authentication.\n"
	"@include common-auth\n"
	"\n" /* 5 */
	"# Disallow non-root logins when /etc/nologin exists.\n"
	"account    required     pam_nologin.so\n"
	"\n"
	"# Standard Un*x authorization.\n"
	"@include common-account\n" /* 10 */
	"\n"
	"session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close\n"
	"session    required     pam_loginuid.so\n"
	"session    optional     pam_keyinit.so force revoke\n"
	"\n" /* 15 */
	"# Standard Un*x session setup and teardown.\n"
	"@include common-session\n"
	"@US1@\n"
	"session    optional     pam_motd.so  motd=/run/motd.dynamic\n"
	"session    optional     pam_motd.so noupdate\n" /* 20 */
	"session    optional     pam_mail.so standard noenv # [1]\n"
	"session    required     pam_limits.so\n"
	"session    required     pam_env.so # [1]\n"
	"session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale\n"
	"@US2@\n" /* 25 */
	"session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so open\n"
	"@include common-password\n";

static const char common_session[] = "session\t[default=1]\t\t\tpam_permit.so\n"
				     "session\trequisite\t\t\tpam_deny.so\n"
				     "session\trequired\t\t\tpam_permit.so\n"
				     "session\trequired\tpam_unix.so \n"
				     "session\toptional\tpam_systemd.so \n";

static const char common_auth[] = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
				  "auth\trequisite\t\t\tpam_deny.so\n"
				  "auth\trequired\t\t\tpam_permit.so\n";

#define US "session optional pam_kubeconfig.so"

struct root {
	char dir[64];
	char msg[1024];
};

static void put(struct root *r, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
}

/* A service file in etc/pam.d: text with @US1@ and @US2@ replaced. */
static void put_service(struct root *r, const char *name, const char *text, const char *us1, const char *us2)
{
	struct kc_buf b = { 0 };
	char file[128];

	for (const char *p = text; *p;) {
		const char *at = strstr(p, "@US");

		if (!at) {
			kc_buf_puts(&b, p);
			break;
		}
		kc_buf_append(&b, p, (size_t)(at - p));
		kc_buf_puts(&b, at[3] == '1' ? us1 : us2);
		p = at + 5;
	}
	snprintf(file, sizeof(file), "etc/pam.d/%s", name);
	put(r, file, b.data);
	kc_buf_free(&b);
}

static int setup(void **state)
{
	struct root *r = calloc(1, sizeof(*r));
	char path[128];

	snprintf(r->dir, sizeof(r->dir), "/tmp/kc-pamstack-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(path, sizeof(path), "%s/etc", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/etc/pam.d", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/usr", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/usr/lib", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/usr/lib/pam.d", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	put(r, "etc/pam.d/common-session", common_session);
	put(r, "etc/pam.d/common-auth", common_auth);
	put(r, "etc/pam.d/common-account", "account required pam_unix.so\n");
	put(r, "etc/pam.d/common-password", "password required pam_unix.so\n");
	*state = r;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct root *r = *state;

	/* Only the scratch root the test made, not following symlinks. */
	assert_int_equal(nftw(r->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(r);
	return 0;
}

static int check(struct root *r, const char *service)
{
	struct kc_err why;
	int rc = kc_pamstack_check(r->dir, service, &why);

	snprintf(r->msg, sizeof(r->msg), "%s", rc == 0 ? "" : why.msg);
	return rc;
}

/* check() must answer want; its message shows when it does not. */
#define expect(r, service, want)                                                       \
	do {                                                                           \
		int got_ = check(r, service);                                          \
		if (got_ != (want))                                                    \
			fail_msg("%s: %d, not %d: %s", service, got_, want, (r)->msg); \
	} while (0)

/* "ROOT/etc/pam.d/NAME:LINE" into buf. */
static const char *at(const struct root *r, const char *name, unsigned line, char *buf, size_t len)
{
	snprintf(buf, len, "%s/etc/pam.d/%s:%u", r->dir, name, line);
	return buf;
}

static bool says(const struct root *r, const char *what)
{
	if (strstr(r->msg, what))
		return true;
	print_error("'%s' does not say '%s'\n", r->msg, what);
	return false;
}

static bool as_root(struct root *r)
{
	if (getuid() == 0)
		return true;
	put_service(r, "sshd", debian_sshd, US, "");
	expect(r, "sshd", -1);
	assert_true(says(r, "must be owned by root"));
	return false;
}

static void debian_sshd_as_shipped(void **state)
{
	struct root *r = *state;
	char env[600], us[600], want[1400];

	if (!as_root(r))
		return;
	/* Where Debian's comment suggests: after pam_env user_readenv=1. */
	put_service(r, "sshd", debian_sshd, "", US);
	expect(r, "sshd", 1);
	snprintf(want, sizeof(want),
		 "%s runs pam_env.so with user_readenv=1 before pam_kubeconfig.so (%s) in the session stack of sshd",
		 at(r, "sshd", 24, env, sizeof(env)), at(r, "sshd", 25, us, sizeof(us)));
	assert_true(says(r, want));
	assert_true(says(r, "put every pam_kubeconfig.so session line above it"));
	/* Right after common-session: before both pam_env lines. */
	put_service(r, "sshd", debian_sshd, US, "");
	expect(r, "sshd", 0);
	/* Once before and once after is wrong: the second run would read what the user wrote. */
	put_service(r, "sshd", debian_sshd, US, US);
	expect(r, "sshd", 1);
	/* Not in the stack at all. */
	put_service(r, "sshd", debian_sshd, "", "");
	expect(r, "sshd", 1);
	assert_true(says(r, "the session stack of PAM service sshd has no pam_kubeconfig.so line"));
	/* Only in another type's stack. */
	put_service(r, "sshd", debian_sshd, "auth optional pam_kubeconfig.so", "");
	expect(r, "sshd", 1);
}

static void includes_of_every_kind(void **state)
{
	struct root *r = *state;
	char where[600];

	if (!as_root(r))
		return;
	put(r, "etc/pam.d/env-user", "# the user's own variables\nsession required pam_env.so user_readenv=1\n");
	put(r, "etc/pam.d/a", "@include env-user\n" US "\n");
	expect(r, "a", 1);
	assert_true(says(r, at(r, "env-user", 2, where, sizeof(where))));
	put(r, "etc/pam.d/b", "session include env-user\n" US "\n");
	expect(r, "b", 1);
	put(r, "etc/pam.d/c", "session substack env-user\n" US "\n");
	expect(r, "c", 1);
	/* "auth include" takes only the auth lines of what it includes. */
	put(r, "etc/pam.d/d", "auth include env-user\n" US "\n");
	expect(r, "d", 0);
	/* An @include inside a typed include is typed too; nested includes keep their order. */
	put(r, "etc/pam.d/inner", "auth required pam_env.so user_readenv=1\n@include env-user\n");
	put(r, "etc/pam.d/e", US "\nsession include inner\n");
	expect(r, "e", 0);
	put(r, "etc/pam.d/f", "session include inner\n" US "\n");
	expect(r, "f", 1);
	assert_true(says(r, at(r, "env-user", 2, where, sizeof(where))));
	/* Absolute names are read under the root too. */
	put(r, "etc/pam.d/g", "@include /etc/pam.d/env-user\n" US "\n");
	expect(r, "g", 1);
	/* Our line inside an included file counts where it is included. */
	put(r, "etc/pam.d/ours", US "\n");
	put(r, "etc/pam.d/h", "@include ours\n@include env-user\n");
	expect(r, "h", 0);
}

static void libpam_syntax(void **state)
{
	static const struct {
		const char *env_line;
		int rc;
	} cases[] = {
		{ "session required pam_env.so user_readenv=1", 1 },
		{ "session [success=1 default=ignore] pam_env.so user_readenv=1", 1 },
		{ "-session optional pam_env.so user_readenv=1", 1 },
		{ "SESSION Required pam_env.so user_readenv=1", 1 },
		{ "session required /lib/x86_64-linux-gnu/security/pam_env.so user_readenv=1", 1 },
		{ "session required pam_env.so [user_readenv=1]", 1 },
		{ "session required pam_env.so user_readenv=2", 1 },
		{ "session required pam_env.so user_readenv=0 user_readenv=1", 1 },
		{ "  session required \\\n\tpam_env.so \\\n user_readenv=1", 1 },
		{ "session required pam_env.so", 0 },
		{ "session required pam_env.so readenv=1 envfile=/etc/default/locale", 0 },
		{ "session required pam_env.so user_readenv=0", 0 },
		{ "session required pam_env.so user_readenv=1 user_readenv=0", 0 },
		{ "session required pam_env.so user_readenv=x", 0 },
		{ "session required pam_env.so # user_readenv=1", 0 },
		{ "# session required pam_env.so user_readenv=1", 0 },
		{ "session required pam_env.so \\ # user_readenv=1\n user_readenv=1", 0 },
		{ "session required pam_env_extra.so user_readenv=1", 0 },
		{ "auth required pam_env.so user_readenv=1", 0 },
		{ "session required", 0 },
	};
	struct root *r = *state;
	char text[512];

	if (!as_root(r))
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s\n" US "\n", cases[i].env_line);
		put(r, "etc/pam.d/s", text);
		if (check(r, "s") != cases[i].rc)
			fail_msg("'%s': %s", cases[i].env_line, r->msg[0] ? r->msg : "right order");
	}
	/* A continued line is named by its first line. */
	put(r, "etc/pam.d/s", "\n# x\nsession required \\\n  pam_env.so \\\n  user_readenv=1\n" US "\n");
	expect(r, "s", 1);
	snprintf(text, sizeof(text), "%s/etc/pam.d/s:3 runs pam_env.so", r->dir);
	assert_true(says(r, text));
	/* pam_env after us changes nothing. */
	put(r, "etc/pam.d/s", US "\nsession required pam_env.so user_readenv=1\n");
	expect(r, "s", 0);
}

static void fallbacks(void **state)
{
	struct root *r = *state;

	if (!as_root(r))
		return;
	/* No such service: libpam runs "other". */
	expect(r, "nosuch", -1);
	assert_true(says(r, "no PAM configuration for nosuch (nor for other)"));
	put(r, "etc/pam.d/other", US "\n");
	expect(r, "nosuch", 0);
	/* A service without session lines takes other's session stack. */
	put(r, "etc/pam.d/authonly", "@include common-auth\n");
	expect(r, "authonly", 0);
	put(r, "etc/pam.d/empty", "");
	expect(r, "empty", 0);
	/* An include that brings no session line leaves the service without one. */
	put(r, "etc/pam.d/inclauth", "session include common-auth\n");
	expect(r, "inclauth", 0);
	/* Its own session lines replace other's. */
	put(r, "etc/pam.d/withsession", "@include common-session\n");
	expect(r, "withsession", 1);
	/* Found in /usr/lib/pam.d when /etc/pam.d has none; /etc/pam.d first. */
	put(r, "usr/lib/pam.d/vendor", "session required pam_env.so user_readenv=1\n" US "\n");
	expect(r, "vendor", 1);
	put(r, "etc/pam.d/vendor", US "\n");
	expect(r, "vendor", 0);
}

static void what_cannot_be_told(void **state)
{
	struct root *r = *state;
	char path[600];

	if (!as_root(r))
		return;
	put(r, "etc/pam.d/missing", "@include not-there\n" US "\n");
	expect(r, "missing", -1);
	assert_true(says(r, "includes not-there, which does not exist"));
	put(r, "etc/pam.d/loop", US "\n@include loop\n");
	expect(r, "loop", -1);
	assert_true(says(r, "deeper than 16"));
	put(r, "etc/pam.d/writable", US "\n");
	snprintf(path, sizeof(path), "%s/etc/pam.d/writable", r->dir);
	assert_int_equal(chmod(path, 0666), 0);
	expect(r, "writable", -1);
	assert_true(says(r, "has mode 0666"));
	assert_int_equal(chown(path, 1000, 1000), 0);
	assert_int_equal(chmod(path, 0644), 0);
	expect(r, "writable", -1);
	assert_true(says(r, "must be owned by root"));
	expect(r, "", -1);
	expect(r, "../etc/pam.d/sshd", -1);
	expect(r, "..", -1);
	assert_true(says(r, "is not a PAM service name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(debian_sshd_as_shipped, setup, teardown),
		cmocka_unit_test_setup_teardown(includes_of_every_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(libpam_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(fallbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(what_cannot_be_told, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

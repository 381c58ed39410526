/* LD_PRELOAD shim for the hardening tests: KC_FAIL=setgroups|setresgid|setresuid
 * makes that step of the writer's privilege drop fail with EPERM, to prove the
 * writer then writes nothing; KC_FAIL=getgrgid_r makes the group database fail
 * (EIO), as it does while LDAP or sssd is down, and KC_FAIL=getpwnam_r the user database. glibc's initgroups() calls
 * setgroups internally, so "setgroups" fails initgroups. KC_FAIL=slow-lock-write does not fail: it holds the
 * renameat() that puts an administrator's lock file in place, and the unlinkat() that removes one, for 1.5 s each,
 * so that a test can race another command against a revoke or an unlock that has decided what to do. Read in a
 * constructor: the helper clears its environment in main(). */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h> /* renameat */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char fail[32];

__attribute__((constructor)) static void init(void)
{
	const char *v = getenv("KC_FAIL");

	if (v)
		strncpy(fail, v, sizeof(fail) - 1);
}

int initgroups(const char *user, gid_t group)
{
	int (*real)(const char *, gid_t) = (int (*)(const char *, gid_t))dlsym(RTLD_NEXT, "initgroups");

	if (strcmp(fail, "setgroups") == 0)
		return errno = EPERM, -1;
	return real(user, group);
}

int setgroups(size_t n, const gid_t *list)
{
	int (*real)(size_t, const gid_t *) = (int (*)(size_t, const gid_t *))dlsym(RTLD_NEXT, "setgroups");

	if (strcmp(fail, "setgroups") == 0)
		return errno = EPERM, -1;
	return real(n, list);
}

int setresgid(gid_t r, gid_t e, gid_t s)
{
	int (*real)(gid_t, gid_t, gid_t) = (int (*)(gid_t, gid_t, gid_t))dlsym(RTLD_NEXT, "setresgid");

	if (strcmp(fail, "setresgid") == 0)
		return errno = EPERM, -1;
	return real(r, e, s);
}

int setresuid(uid_t r, uid_t e, uid_t s)
{
	int (*real)(uid_t, uid_t, uid_t) = (int (*)(uid_t, uid_t, uid_t))dlsym(RTLD_NEXT, "setresuid");

	if (strcmp(fail, "setresuid") == 0)
		return errno = EPERM, -1;
	return real(r, e, s);
}

int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **out)
{
	int (*real)(gid_t, struct group *, char *, size_t, struct group **) =
		(int (*)(gid_t, struct group *, char *, size_t, struct group **))dlsym(RTLD_NEXT, "getgrgid_r");

	if (strcmp(fail, "getgrgid_r") == 0) {
		*out = NULL;
		return EIO;
	}
	return real(gid, gr, buf, len, out);
}

/* KC_FAIL=getpwnam_r: the user database fails (EIO) for every lookup of an
 * account, by name or by uid, as while LDAP or sssd is down. */
int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **out)
{
	int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **) =
		(int (*)(const char *, struct passwd *, char *, size_t, struct passwd **))dlsym(RTLD_NEXT,
												"getpwnam_r");

	if (strcmp(fail, "getpwnam_r") == 0) {
		*out = NULL;
		return EIO;
	}
	return real(name, pw, buf, len, out);
}

int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **out)
{
	int (*real)(uid_t, struct passwd *, char *, size_t, struct passwd **) =
		(int (*)(uid_t, struct passwd *, char *, size_t, struct passwd **))dlsym(RTLD_NEXT, "getpwuid_r");

	if (strcmp(fail, "getpwnam_r") == 0) {
		*out = NULL;
		return EIO;
	}
	return real(uid, pw, buf, len, out);
}

static void slow_lock_write(const char *name)
{
	struct timespec t = { 1, 500000000 };

	if (strcmp(fail, "slow-lock-write") == 0 && strncmp(name, "lock-", 5) == 0)
		nanosleep(&t, NULL);
}

int renameat(int olddir, const char *old, int newdir, const char *new)
{
	int (*real)(int, const char *, int, const char *) =
		(int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");

	slow_lock_write(new);
	return real(olddir, old, newdir, new);
}

int unlinkat(int dir, const char *name, int flags)
{
	int (*real)(int, const char *, int) = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");

	slow_lock_write(name);
	return real(dir, name, flags);
}

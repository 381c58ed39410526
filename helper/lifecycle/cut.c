/* Cutting connections now and once more later (see lifecycle/cut.h). */
#include "lifecycle/cut.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/subprocess.h"
#include "lifecycle/sockcut.h"
#include "lifecycle/state.h"

#define MAX_ADDRS 64

/* "ip port" -> address. */
static int parse_addr(const char *s, struct kc_endpoint_addr *a)
{
	char ip[64];
	unsigned port;

	memset(a, 0, sizeof(*a));
	if (sscanf(s, "%63s %u", ip, &port) != 2 || port == 0 || port > 65535)
		return -1;
	a->port = (unsigned short)port;
	if (inet_pton(AF_INET, ip, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a->addr) == 1)
		a->family = AF_INET6;
	else
		return -1;
	return 0;
}

/* resolve: also what the server's name resolves to now. The first cut, inside a
 * logout, goes by the addresses the helper itself connected to (no DNS wait); the
 * second, detached, asks DNS too. */
static unsigned cut_now(uid_t uid, const char *cluster, const char *server, char (*addrs)[64], size_t n, bool resolve)
{
	struct kc_endpoint_addr list[MAX_ADDRS], *now = NULL;
	size_t m = 0, n_now = 0;
	unsigned cut = 0;
	struct kc_err e = { "" };

	for (size_t i = 0; i < n && m < MAX_ADDRS; i++)
		m += parse_addr(addrs[i], &list[m]) == 0;
	if ((resolve || m == 0) && server && kc_endpoint_resolve(server, &now, &n_now, &e) == 0)
		for (size_t i = 0; i < n_now && m < MAX_ADDRS; i++)
			list[m++] = now[i];
	free(now);
	if (m == 0)
		return 0;
	if (kc_sockcut(uid, list, m, &cut, &e) < 0)
		kc_warn("cluster %s: cannot cut uid %u's connections: %s (the revoked token is refused all the same)",
			cluster, (unsigned)uid, e.msg);
	else if (cut)
		kc_audit("cut uid=%u cluster=%s connections=%u", (unsigned)uid, cluster, cut);
	return cut;
}

/* Starts `pam-kubeconfig cut ...` detached: its own session, no fd of ours,
 * nothing of this process's memory (exec). */
static void schedule_again(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64],
			   size_t n)
{
	char self[PATH_MAX], uid_s[16], since[24], after[8];
	char *argv[9 + MAX_ADDRS + 1];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct kc_subprocess p = { .path = self, .argv = argv, .detach = true };
	struct kc_subprocess_result r;
	size_t a = 0;

	if (len <= 0)
		return;
	self[len] = '\0';
	snprintf(uid_s, sizeof(uid_s), "%u", (unsigned)uid);
	snprintf(since, sizeof(since), "%lld", (long long)time(NULL));
	snprintf(after, sizeof(after), "%d", KC_CUT_AGAIN_AFTER);
	/* execve() takes char *const[]; it does not write through them. */
	argv[a++] = (char *)"pam-kubeconfig", argv[a++] = (char *)"cut", argv[a++] = uid_s;
	argv[a++] = (char *)(user ? user : "-"), argv[a++] = (char *)cluster;
	argv[a++] = (char *)(server ? server : "-"), argv[a++] = since, argv[a++] = after;
	for (size_t i = 0; i < n && i < MAX_ADDRS; i++)
		argv[a++] = addrs[i];
	argv[a] = NULL;
	if (kc_subprocess_run(&p, NULL, &r) < 0)
		kc_warn("cluster %s: cannot schedule the second cut of uid %u's connections: %s", cluster,
			(unsigned)uid, strerror(r.error));
}

void kc_cut_user(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64], size_t n)
{
	cut_now(uid, cluster, server, addrs, n, false);
	schedule_again(uid, user, cluster, server, addrs, n);
}

/* Granted again since the first cut (a new login, even in the same second: the
 * revocation that scheduled the cut removed the old grant under the cluster's
 * lock, so a current grant now was minted after it): leave the new connections be. */
static bool granted_since(uid_t uid, const char *cluster, time_t since)
{
	struct kc_grant *g = NULL;
	size_t n = 0;
	bool yes = false;
	struct kc_err e;
	int dir = kc_state_open(uid, false, &e);

	if (dir < 0)
		return false;
	if (kc_state_grants(dir, cluster, "", &g, &n, &e) == 0)
		for (size_t i = 0; i < n; i++)
			yes |= g[i].state == KC_GRANT_CURRENT && g[i].sa_name[0] && g[i].minted >= since;
	free(g);
	close(dir);
	return yes;
}

/* The uid still the account it was (a uid freed and given to another account
 * within the wait must not lose its connections). */
static bool same_account(uid_t uid, const char *user)
{
	struct passwd pw, *pwp = NULL;
	char buf[16384];

	if (strcmp(user, "-") == 0)
		return true;
	return getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp && strcmp(pw.pw_name, user) == 0;
}

int kc_cmd_cut(uid_t uid, const char *user, const char *cluster, const char *server, time_t since, int after,
	       char **addrs, size_t n)
{
	char list[MAX_ADDRS][64];
	size_t m = 0;

	if (after > 0 && after <= 60)
		sleep((unsigned)after);
	if (!same_account(uid, user) || granted_since(uid, cluster, since))
		return 0;
	for (size_t i = 0; i < n && m < MAX_ADDRS; i++)
		snprintf(list[m++], sizeof(list[0]), "%s", addrs[i]);
	cut_now(uid, cluster, strcmp(server, "-") == 0 ? NULL : server, list, m, true);
	return 0;
}

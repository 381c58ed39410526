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
#include "config/mapping.h"
#include "lifecycle/refuse.h"
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

/* resolve: also what the server's name resolves to now (the second cut); the
 * first goes by the addresses the helper connected to and was told of. */
static unsigned cut_now(uid_t uid, const char *cluster, const char *server, char (*addrs)[64], size_t n, bool resolve,
			long long deadline_ms)
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
	if (kc_sockcut(uid, list, m, deadline_ms, &cut, &e) < 0)
		kc_warn("cluster %s: cannot cut uid %u's connections: %s (the revoked token is refused all the same)",
			cluster, (unsigned)uid, e.msg);
	if (cut)
		kc_audit("cut uid=%u cluster=%s connections=%u", (unsigned)uid, cluster, cut);
	return cut;
}

void kc_cut_user(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64], size_t n)
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
		kc_warn("cluster %s: cannot start the cut of uid %u's connections: %s", cluster, (unsigned)uid,
			strerror(r.error));
}

/* Does the uid belong to another account now? Only then is the second cut
 * skipped: an account deleted meanwhile, or the same user logged in again,
 * gets it (a stream opened with the revoked token from the cache window must
 * not live on). */
static bool uid_of_another(uid_t uid, const char *user)
{
	struct passwd pw;
	char *buf = NULL;
	bool other;

	if (strcmp(user, "-") == 0)
		return false;
	other = kc_getpw(NULL, uid, &pw, &buf) == 0 && strcmp(pw.pw_name, user) != 0;
	free(buf);
	return other;
}

/* Under the cluster's lock: refuse the uid's new connections for the cache
 * window, unless it holds a token there (a remap, or a login since): those
 * connections are its new token's. */
static void refuse(uid_t uid, const char *cluster, char (*addrs)[64], size_t n)
{
	struct kc_grant *g = NULL;
	size_t n_g = 0;
	bool holds = false;
	struct kc_err e = { "" };
	long long deadline = kc_now_ms() + 3000;
	kc_autoclose int dir = kc_state_open(uid, false, &e);
	kc_autoclose int lock = dir >= 0 ? kc_state_lock_cluster(dir, cluster, deadline, &e) : -1;

	if (lock < 0)
		return;
	if (kc_state_grants(dir, cluster, "", &g, &n_g, &e) == 0)
		for (size_t i = 0; i < n_g; i++)
			holds |= g[i].state == KC_GRANT_CURRENT && g[i].sa_name[0];
	free(g);
	if (!holds && kc_refuse_add(dir, cluster, uid, addrs, n, deadline, &e) < 0)
		kc_warn("cluster %s: cannot refuse uid %u's new connections: %s (the second cut will catch them)",
			cluster, (unsigned)uid, e.msg);
}

int kc_cmd_cut(uid_t uid, const char *user, const char *cluster, const char *server, time_t since, int after,
	       char **addrs, size_t n)
{
	char list[MAX_ADDRS][64];
	size_t m = 0;
	time_t again;

	for (size_t i = 0; i < n && m < MAX_ADDRS; i++)
		snprintf(list[m++], sizeof(list[0]), "%s", addrs[i]);
	server = strcmp(server, "-") == 0 ? NULL : server;
	refuse(uid, cluster, list, m);
	cut_now(uid, cluster, server, list, m, false, kc_now_ms() + 5000);
	if (after <= 0 || after > 60)
		return 0;
	again = since + after;
	while (time(NULL) < again)
		sleep((unsigned)(again - time(NULL)));
	if (!uid_of_another(uid, user))
		cut_now(uid, cluster, server, list, m, true, kc_now_ms() + 5000);
	return 0;
}

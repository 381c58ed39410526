/* Cutting connections now and once more later (see lifecycle/cut.h). */
#include "lifecycle/cut.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "common/process.h"
#include "config/mapping.h"
#include "lifecycle/auditlog.h"
#include "lifecycle/refuse.h"
#include "lifecycle/sockcut.h"
#include "lifecycle/tally.h"

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
static unsigned cut_now(uid_t uid, const char *user, const char *cluster, const char *server, char (*addrs)[64],
			size_t n, bool resolve, long long deadline_ms)
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
	/* Said after the cut, never before: the ledger does not hold it up. */
	if (cut) {
		kc_audit_cut(user && strcmp(user, "-") != 0 ? user : NULL, uid, cluster, cut);
		kc_tally_cut(cluster, cut);
	}
	return cut;
}

/* The second cuts this process owes: made by one child it forks when its
 * command is over (kc_cut_finish). */
struct again {
	uid_t uid;
	char *user, *cluster, *server;
	char (*addrs)[64];
	size_t n;
	time_t at;
};

static pthread_mutex_t again_lock = PTHREAD_MUTEX_INITIALIZER;
static struct again *agains;
static size_t n_agains;

static char *dup_or_dash(const char *s)
{
	return strdup(s ? s : "-");
}

static void owe_again(const struct kc_cut *c)
{
	struct again a = { .uid = c->uid,
			   .n = c->n < MAX_ADDRS ? c->n : MAX_ADDRS,
			   .at = time(NULL) + KC_CUT_AGAIN_AFTER };
	struct again *more;

	a.user = dup_or_dash(c->user);
	a.cluster = dup_or_dash(c->cluster);
	a.server = dup_or_dash(c->server);
	a.addrs = calloc(a.n + 1, sizeof(*a.addrs));
	pthread_mutex_lock(&again_lock);
	more = a.user && a.cluster && a.server && a.addrs ? reallocarray(agains, n_agains + 1, sizeof(*agains)) : NULL;
	if (more) {
		memcpy(a.addrs, c->addrs, a.n * sizeof(*a.addrs));
		agains = more;
		agains[n_agains++] = a;
	}
	pthread_mutex_unlock(&again_lock);
	if (!more) {
		kc_warn("cluster %s: cannot schedule the second cut of uid %u's connections: out of memory", c->cluster,
			(unsigned)c->uid);
		free(a.user), free(a.cluster), free(a.server), free(a.addrs);
	}
}

void kc_cut_user(const struct kc_cut *c, long long deadline_ms)
{
	struct kc_err e = { "" };

	/* Refused before the cut: a reconnect between the two must not get in. */
	if (c->refuse && kc_refuse_add(c->state_dir, c->cluster, c->uid, c->addrs, c->n, deadline_ms, &e) < 0)
		kc_warn("cluster %s: cannot refuse uid %u's new connections: %s (the second cut will catch them)",
			c->cluster, (unsigned)c->uid, e.msg);
	kc_debug("cluster %s: %s", c->cluster, c->refuse ? "reconnects refused" : "no refusal (a token is held)");
	cut_now(c->uid, c->user, c->cluster, c->server, c->addrs, c->n, c->resolve, deadline_ms);
	kc_debug("cluster %s: cut", c->cluster);
	owe_again(c);
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

/* ps shows it as `pam-kubeconfig cut UID...` while it waits. */
static void say_what_we_are(void)
{
	const char *words[3 + 8] = { "pam-kubeconfig", "cut" };
	char uids[8][16];
	size_t w = 2;

	for (size_t i = 0; i < n_agains && w < 2 + 8; i++) {
		bool seen = false;

		for (size_t k = 0; k < i; k++)
			seen |= agains[k].uid == agains[i].uid;
		if (seen)
			continue;
		snprintf(uids[w - 2], sizeof(uids[0]), "%u", (unsigned)agains[i].uid);
		words[w] = uids[w - 2];
		w++;
	}
	words[w] = NULL;
	kc_process_set_title(words);
	prctl(PR_SET_NAME, "kc-second-cut");
}

static int by_time(const void *a, const void *b)
{
	const struct again *x = a, *y = b;

	return (x->at > y->at) - (x->at < y->at);
}

void kc_cut_finish(void)
{
	int nl;
	pid_t pid;
	int null;

	/* This process's counts go to the metrics store first: the child forked
	 * below counts only its own cuts. */
	kc_tally_commit(kc_now_ms() + 1000);
	nl = kc_refuse_socket_take();

	if (n_agains == 0 && nl < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		if (n_agains)
			kc_warn("cannot start the second cut of %zu cluster(s)' connections: %s", n_agains,
				strerror(errno));
		if (nl >= 0)
			close(nl); /* here, then: it waits for the grace period */
		return;
	}
	if (pid > 0) {
		if (nl >= 0)
			close(nl); /* the child's copy is the last */
		return;
	}
	/* Its own session, none of our fds (the module waits for our output's
	 * end), the lowest priority: it sleeps first, and the logins of the
	 * moment need the processor more. */
	setsid();
	closelog();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	close_range(3, ~0U, 0); /* the netlink socket's release waits here */
	if (n_agains == 0)
		_exit(0);
	setpriority(PRIO_PROCESS, 0, 19);
	say_what_we_are();
	qsort(agains, n_agains, sizeof(*agains), by_time);
	for (size_t i = 0; i < n_agains; i++) {
		struct again *a = &agains[i];

		while (time(NULL) < a->at)
			sleep((unsigned)(a->at - time(NULL)));
		if (!uid_of_another(a->uid, a->user))
			cut_now(a->uid, a->user, a->cluster, strcmp(a->server, "-") == 0 ? NULL : a->server, a->addrs,
				a->n, true, kc_now_ms() + 5000);
	}
	kc_tally_commit(kc_now_ms() + 2000); /* what the second cuts cut */
	_exit(0);
}

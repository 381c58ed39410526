/* Cutting connections now and once more later (see lifecycle/cut.h). */
#include "lifecycle/cut.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "asuser/frame.h"
#include "common/log.h"
#include "common/process.h"
#include "config/mapping.h"
#include "lifecycle/auditlog.h"
#include "lifecycle/refuse.h"
#include "lifecycle/sockcut.h"
#include "lifecycle/tally.h"

#define MAX_ADDRS 64
/* How long a turn's child may wait for the run's collector to take what it owes. */
#define HAND_OVER_MS 200

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

/* What server resolved to within the last RESOLVED_FOR_S seconds, failures
 * too: the second cuts of a run, made one after another by one process, ask
 * once per server and not once per user (and wait once in a DNS outage). */
#define RESOLVED_FOR_S 5
static struct resolved {
	char *server;
	struct kc_endpoint_addr *addrs;
	size_t n;
	time_t at;
	bool ok;
} resolved[16];
static pthread_mutex_t resolved_lock = PTHREAD_MUTEX_INITIALIZER;

static int resolve_cached(const char *server, struct kc_endpoint_addr **out, size_t *n, struct kc_err *err)
{
	struct resolved *slot = &resolved[0];
	time_t now = time(NULL);
	int rc = -1;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&resolved_lock);
	for (size_t i = 0; i < sizeof(resolved) / sizeof(resolved[0]); i++) {
		struct resolved *r = &resolved[i];

		if (r->server && strcmp(r->server, server) == 0 && now - r->at < RESOLVED_FOR_S) {
			if (r->ok && (*out = calloc(r->n + 1, sizeof(**out)))) {
				memcpy(*out, r->addrs, r->n * sizeof(**out));
				*n = r->n;
				rc = 0;
			}
			pthread_mutex_unlock(&resolved_lock);
			return rc == 0 ? 0 : (kc_seterr(err, "%s: did not resolve moments ago", server), -1);
		}
		if (!r->server || r->at < slot->at)
			slot = r;
	}
	pthread_mutex_unlock(&resolved_lock);
	rc = kc_endpoint_resolve(server, out, n, err);
	pthread_mutex_lock(&resolved_lock);
	free(slot->server);
	free(slot->addrs);
	*slot = (struct resolved){ .server = strdup(server), .at = now, .ok = rc == 0 };
	if (rc == 0 && (slot->addrs = calloc(*n + 1, sizeof(*slot->addrs)))) {
		memcpy(slot->addrs, *out, *n * sizeof(*slot->addrs));
		slot->n = *n;
	} else if (rc == 0) {
		slot->ok = false, slot->at = 0; /* not kept */
	}
	pthread_mutex_unlock(&resolved_lock);
	return rc;
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
	if ((resolve || m == 0) && server && resolve_cached(server, &now, &n_now, &e) == 0)
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

static void again_free(struct again *a)
{
	free(a->user), free(a->cluster), free(a->server), free(a->addrs);
}

/* Takes a (its strings and addresses) into the list; false: out of memory. */
static bool add_again(struct again a)
{
	struct again *more;

	pthread_mutex_lock(&again_lock);
	more = a.user && a.cluster && a.server && a.addrs ? reallocarray(agains, n_agains + 1, sizeof(*agains)) : NULL;
	if (more) {
		agains = more;
		agains[n_agains++] = a;
	}
	pthread_mutex_unlock(&again_lock);
	if (!more)
		again_free(&a);
	return more != NULL;
}

static void owe_again(const struct kc_cut *c)
{
	struct again a = { .uid = c->uid,
			   .n = c->n < MAX_ADDRS ? c->n : MAX_ADDRS,
			   .at = time(NULL) + KC_CUT_AGAIN_AFTER };

	a.user = dup_or_dash(c->user);
	a.cluster = dup_or_dash(c->cluster);
	a.server = dup_or_dash(c->server);
	a.addrs = calloc(a.n + 1, sizeof(*a.addrs));
	if (a.addrs)
		memcpy(a.addrs, c->addrs, a.n * sizeof(*a.addrs));
	if (!add_again(a))
		kc_warn("cluster %s: cannot schedule the second cut of uid %u's connections: out of memory", c->cluster,
			(unsigned)c->uid);
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

/* Its own session, none of the fds it was forked with but keep (the module
 * waits for our output's end), the lowest priority: it sleeps first, and the
 * logins of the moment need the processor more. */
static void detach(int keep)
{
	int null;

	setsid();
	closelog();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range(keep >= 3 ? (unsigned)keep + 1 : 3, ~0U, 0); /* a netlink socket's release waits here */
	setpriority(PRIO_PROCESS, 0, 19);
}

static void cut_again(const struct again *a)
{
	if (!uid_of_another(a->uid, a->user))
		cut_now(a->uid, a->user, a->cluster, strcmp(a->server, "-") == 0 ? NULL : a->server, a->addrs, a->n,
			true, kc_now_ms() + 5000);
}

/* ---- a run's second cuts in one process -------------------------------------------- */

/* refresh and gc hand each user's turn to a child of its own: left to fork
 * its own second cut, a run revoking thousands of users would leave as many
 * processes, each asleep for 11 s. The run forks one collector first; the
 * turns' children send it what they owe (one message per cut, over a
 * SOCK_SEQPACKET socket they inherit), and it cuts each again in its time
 * until the run and all of them have closed the socket. */
static int collector = -1; /* the sending end: the run's, and its children's */
static char message[64 << 10]; /* the collector's: one hand-over at a time */

/* One again as a message: uid, when, user, cluster, server, its addresses.
 * The collector's queue holds net.unix.max_dgram_qlen messages (10 by
 * default): a full one is waited on until deadline_ms. */
static int send_again(int fd, const struct again *a, long long deadline_ms)
{
	kc_autobuf struct kc_buf b = { 0 };
	char uid[24], at[24];

	snprintf(uid, sizeof(uid), "%u", (unsigned)a->uid);
	snprintf(at, sizeof(at), "%lld", (long long)a->at);
	int bad = kc_frame_puts(&b, uid) | kc_frame_puts(&b, at) | kc_frame_puts(&b, a->user) |
		  kc_frame_puts(&b, a->cluster) | kc_frame_puts(&b, a->server);

	for (size_t i = 0; i < a->n; i++)
		bad |= kc_frame_puts(&b, a->addrs[i]);
	while (!bad && b.data) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		long long left = deadline_ms - kc_now_ms();

		if (send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)b.len)
			return 0;
		if ((errno != EAGAIN && errno != EINTR) || left <= 0)
			break;
		poll(&p, 1, (int)left);
	}
	return -1;
}

/* false: malformed, or no memory for it. */
static bool take_again(const char *msg, size_t len)
{
	struct kc_frame_reader r = { msg, msg + len, false };
	char *uid = kc_frame_strdup(&r), *at = kc_frame_strdup(&r);
	struct again a = { .addrs = calloc(MAX_ADDRS + 1, sizeof(*a.addrs)) };
	size_t alen;
	const char *addr;

	a.user = kc_frame_strdup(&r);
	a.cluster = kc_frame_strdup(&r);
	a.server = kc_frame_strdup(&r);
	while (a.addrs && a.n < MAX_ADDRS && r.p < r.end && (addr = kc_frame_get(&r, &alen)) &&
	       alen < sizeof(a.addrs[0])) {
		memcpy(a.addrs[a.n], addr, alen);
		a.addrs[a.n++][alen] = '\0';
	}
	bool ok = uid && at && !r.bad;

	if (ok) {
		a.uid = (uid_t)strtoul(uid, NULL, 10);
		a.at = (time_t)strtoll(at, NULL, 10);
		ok = add_again(a);
	} else {
		again_free(&a);
	}
	free(uid);
	free(at);
	return ok;
}

/* The again taken last, in its place among those not done yet (they come
 * nearly in order); the title names its uid. */
static void place_last(size_t done)
{
	for (size_t i = n_agains - 1; i > done && agains[i - 1].at > agains[i].at; i--) {
		struct again t = agains[i];

		agains[i] = agains[i - 1];
		agains[i - 1] = t;
	}
	say_what_we_are();
}

static void take_and_place(const char *msg, size_t len, size_t done)
{
	if (take_again(msg, len))
		place_last(done);
	else
		kc_warn("second cut: a malformed hand-over, or no memory for it: a cut is lost");
}

/* Past its time to take: what was sent is still taken, a sender from now on
 * finds the socket shut (EPIPE) and makes its own second cut. */
static void stop_taking(int fd, size_t done)
{
	ssize_t got;

	shutdown(fd, SHUT_RD);
	while ((got = recv(fd, message, sizeof(message), MSG_DONTWAIT)) > 0)
		take_and_place(message, (size_t)got, done);
}

/* The collector: takes agains from fd until its senders are gone (or
 * stop_taking_ms), cutting each in its time; the earliest first. */
static void collect(int fd, long long stop_taking_ms)
{
	size_t done = 0;
	bool taking = true;

	kc_tally_forget(); /* the run's counts, which the run commits */
	say_what_we_are();
	while (taking || done < n_agains) {
		long long wait_ms = taking ? stop_taking_ms - kc_now_ms() : -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (done < n_agains) {
			long long due_ms = (long long)(agains[done].at - time(NULL)) * 1000;

			wait_ms = wait_ms < 0 || due_ms < wait_ms ? due_ms : wait_ms;
		}
		if (taking && poll(&p, 1, wait_ms < 0 ? 0 : (int)wait_ms) > 0) {
			ssize_t got = recv(fd, message, sizeof(message), 0);

			if (got > 0) {
				take_and_place(message, (size_t)got, done);
			} else if (got == 0 || errno != EINTR) {
				taking = false; /* every sender is gone */
			}
		} else if (taking && kc_now_ms() >= stop_taking_ms) {
			stop_taking(fd, done);
			taking = false;
		} else if (!taking && done < n_agains && agains[done].at > time(NULL)) {
			sleep((unsigned)(agains[done].at - time(NULL)));
		}
		while (done < n_agains && agains[done].at <= time(NULL))
			cut_again(&agains[done++]);
	}
	kc_tally_commit(kc_now_ms() + 2000); /* what the second cuts cut */
}

/* fd moved above 0-2 (a process started with one of them closed gets it
 * from socketpair); -1 when it cannot be. */
static int above_stdio(int fd)
{
	int up;

	if (fd > 2)
		return fd;
	up = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return up;
}

void kc_cut_collect_begin(long long run_deadline_ms)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return; /* each turn forks its own, then */
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if ((sv[1] = above_stdio(sv[1])) < 0)
			_exit(0); /* the senders find it gone and cut for themselves */
		detach(sv[1]);
		collect(sv[1], run_deadline_ms + 5000);
		_exit(0);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return;
	}
	collector = above_stdio(sv[0]); /* never a child's stdin or stderr */
}

void kc_cut_collect_end(void)
{
	if (collector >= 0)
		close(collector);
	collector = -1;
}

/* What this process owes goes to the run's collector: false when some of it
 * could not (it is left to this process's own child). */
static bool hand_over(void)
{
	long long deadline_ms = kc_now_ms() + HAND_OVER_MS;
	size_t sent = 0;

	while (collector >= 0 && sent < n_agains && send_again(collector, &agains[sent], deadline_ms) == 0)
		sent++;
	for (size_t i = 0; i < sent; i++)
		again_free(&agains[i]);
	memmove(agains, agains + sent, (n_agains - sent) * sizeof(*agains));
	n_agains -= sent;
	return n_agains == 0;
}

void kc_cut_finish(void)
{
	int nl;
	pid_t pid;

	/* Handed over first: a turn's child may be killed at its deadline. */
	if (n_agains && collector >= 0 && !hand_over())
		kc_warn("the run's second cut did not take %zu cluster(s)' connections: this process cuts them",
			n_agains);
	/* This process's counts go to the metrics store next: the child forked
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
	detach(-1);
	if (n_agains == 0)
		_exit(0);
	say_what_we_are();
	qsort(agains, n_agains, sizeof(*agains), by_time);
	for (size_t i = 0; i < n_agains; i++) {
		while (time(NULL) < agains[i].at)
			sleep((unsigned)(agains[i].at - time(NULL)));
		cut_again(&agains[i]);
	}
	kc_tally_commit(kc_now_ms() + 2000); /* what the second cuts cut */
	_exit(0);
}

/* Unit tests for cutting a uid's connections (runs as root: SOCK_DESTROY needs
 * CAP_NET_ADMIN, and the clients run as another uid). Real loopback sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lifecycle/sockcut.h"

#define CLIENT_UID 65534
/* More than the 4,096 sockets the first cut examined before it gave up. */
#define MANY 5000

/* What the unprivileged child connects, and whether the cut must reach it. */
enum { C_V4, C_V6, C_MAPPED_CLIENT, C_MAPPED_LISTED, C_UNLISTED, NCLIENT };

struct fixture {
	int lfd[NCLIENT];
	struct sockaddr_storage laddr[NCLIENT];
	socklen_t laddrlen[NCLIENT];
	unsigned short port[NCLIENT];
};

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int listener(int family, const char *addr, bool v6only, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int off = v6only ? 1 : 0;

	assert_true(fd >= 0);
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		*len = sizeof(*sin6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)ss, *len), 0);
	assert_int_equal(listen(fd, MANY + 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)ss, len), 0);
	return fd;
}

static unsigned short port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void setup_listeners(struct fixture *f)
{
	f->lfd[C_V4] = listener(AF_INET, "127.0.0.1", false, &f->laddr[C_V4], &f->laddrlen[C_V4]);
	f->lfd[C_V6] = listener(AF_INET6, "::1", true, &f->laddr[C_V6], &f->laddrlen[C_V6]);
	/* Dual-stack listeners: IPv6 sockets whose IPv4 peers appear as ::ffff:127.0.0.1. */
	f->lfd[C_MAPPED_CLIENT] =
		listener(AF_INET6, "::", false, &f->laddr[C_MAPPED_CLIENT], &f->laddrlen[C_MAPPED_CLIENT]);
	f->lfd[C_MAPPED_LISTED] =
		listener(AF_INET6, "::", false, &f->laddr[C_MAPPED_LISTED], &f->laddrlen[C_MAPPED_LISTED]);
	f->lfd[C_UNLISTED] = listener(AF_INET, "127.0.0.1", false, &f->laddr[C_UNLISTED], &f->laddrlen[C_UNLISTED]);
	for (int i = 0; i < NCLIENT; i++)
		f->port[i] = port_of(&f->laddr[i]);
}

/* A connection as the child makes it: the family of the client socket and the
 * address it dials. */
static int dial(int family, const char *addr, unsigned short port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drop_to(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(90);
	if (setresuid(0, 0, 0) == 0)
		_exit(91);
}

/* What a recv() on fd reports now: 0 data or still open, else the errno. */
static int read_outcome(int fd)
{
	char c;
	ssize_t got = recv(fd, &c, 1, MSG_DONTWAIT);

	if (got > 0 || (got < 0 && errno == EAGAIN))
		return 0;
	return got == 0 ? -1 : errno;
}

/* The child: as CLIENT_UID, connects per the fixture, reports "ready", waits for
 * a byte, then writes each connection's read outcome (int) to the pipe. It exits
 * when the parent does (a failed assertion there must not leave it waiting). */
static void child(const struct fixture *f, const int up[2], const int down[2], int extra)
{
	int fds[NCLIENT], outcomes[NCLIENT + 1];
	int *many = NULL, to_parent = up[1], from_parent = down[0];
	char go;

	struct rlimit fds_max = { MANY + 64, MANY + 64 };

	close(up[0]);
	close(down[1]);
	if (setrlimit(RLIMIT_NOFILE, &fds_max) < 0)
		_exit(91);
	drop_to(CLIENT_UID);
	fds[C_V4] = dial(AF_INET, "127.0.0.1", f->port[C_V4]);
	fds[C_V6] = dial(AF_INET6, "::1", f->port[C_V6]);
	fds[C_MAPPED_CLIENT] = dial(AF_INET6, "::ffff:127.0.0.1", f->port[C_MAPPED_CLIENT]);
	fds[C_MAPPED_LISTED] = dial(AF_INET, "127.0.0.1", f->port[C_MAPPED_LISTED]);
	fds[C_UNLISTED] = dial(AF_INET, "127.0.0.1", f->port[C_UNLISTED]);
	for (int i = 0; i < NCLIENT; i++) {
		if (fds[i] < 0)
			_exit(92);
	}
	if (extra > 0) {
		many = calloc((size_t)extra, sizeof(int));
		for (int i = 0; many && i < extra; i++) {
			/* Two listed listeners: a backlog holds at most somaxconn (4,096). */
			many[i] = dial(AF_INET, "127.0.0.1", f->port[i % 2 ? C_V4 : C_MAPPED_LISTED]);
			if (many[i] < 0)
				_exit(93);
		}
	}
	if (write(to_parent, "r", 1) != 1 || read(from_parent, &go, 1) != 1)
		_exit(94);
	for (int i = 0; i < NCLIENT; i++)
		outcomes[i] = read_outcome(fds[i]);
	outcomes[NCLIENT] = 0;
	for (int i = 0; i < extra; i++) {
		if (read_outcome(many[i]) != ECONNABORTED)
			outcomes[NCLIENT]++;
	}
	/* The unlisted connection still carries data. */
	if (send(fds[C_UNLISTED], "x", 1, MSG_NOSIGNAL) != 1)
		outcomes[C_UNLISTED] = errno;
	if (write(to_parent, outcomes, sizeof(outcomes)) != (ssize_t)sizeof(outcomes))
		_exit(95);
	_exit(0);
}

static void endpoint(struct kc_endpoint_addr *e, int family, const char *addr, unsigned short port)
{
	memset(e, 0, sizeof(*e));
	e->family = family;
	e->port = port;
	assert_int_equal(inet_pton(family, addr, e->addr), 1);
}

static void run_cut(int extra)
{
	struct fixture f;
	struct kc_endpoint_addr listed[4];
	struct kc_err err = { { 0 } };
	int up[2], down[2], outcomes[NCLIENT + 1], status, root_fd, root_peer, srv;
	unsigned cut = 99;
	long took;
	pid_t pid;
	char c;

	setup_listeners(&f);
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	/* root's own connection to a listed endpoint (first in its accept queue) */
	root_fd = dial(AF_INET, "127.0.0.1", f.port[C_V4]);
	assert_true(root_fd >= 0);
	root_peer = accept4(f.lfd[C_V4], NULL, NULL, SOCK_CLOEXEC);
	assert_true(root_peer >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(&f, up, down, extra);
	assert_int_equal(read(up[0], &c, 1), 1);

	endpoint(&listed[0], AF_INET, "127.0.0.1", f.port[C_V4]);
	endpoint(&listed[1], AF_INET6, "::1", f.port[C_V6]);
	endpoint(&listed[2], AF_INET, "127.0.0.1", f.port[C_MAPPED_CLIENT]);
	endpoint(&listed[3], AF_INET6, "::ffff:127.0.0.1", f.port[C_MAPPED_LISTED]);
	took = now_ms();
	assert_int_equal(kc_sockcut(CLIENT_UID, listed, 4, now_ms() + 10000, &cut, &err), 0);
	took = now_ms() - took;
	print_message("kc_sockcut: %u connections of uid %d cut in %ld ms\n", cut, CLIENT_UID, took);
	assert_int_equal(cut, 4 + extra);

	assert_int_equal(write(down[1], "g", 1), 1);
	assert_int_equal(read(up[0], outcomes, sizeof(outcomes)), sizeof(outcomes));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(outcomes[C_V4], ECONNABORTED);
	assert_int_equal(outcomes[C_V6], ECONNABORTED);
	assert_int_equal(outcomes[C_MAPPED_CLIENT], ECONNABORTED);
	assert_int_equal(outcomes[C_MAPPED_LISTED], ECONNABORTED);
	assert_int_equal(outcomes[C_UNLISTED], 0);
	assert_int_equal(outcomes[NCLIENT], 0);

	/* The server side of a cut connection sees a reset; of the others, data. */
	srv = accept4(f.lfd[C_V6], NULL, NULL, SOCK_CLOEXEC);
	assert_true(srv >= 0);
	assert_int_equal(read_outcome(srv), ECONNRESET);
	close(srv);
	srv = accept4(f.lfd[C_UNLISTED], NULL, NULL, SOCK_CLOEXEC);
	assert_true(srv >= 0);
	assert_int_equal(recv(srv, &c, 1, 0), 1);
	close(srv);
	/* root's connection to the listed port is untouched */
	assert_int_equal(send(root_fd, "y", 1, MSG_NOSIGNAL), 1);
	assert_int_equal(recv(root_peer, &c, 1, 0), 1);
	assert_int_equal(c, 'y');
	close(root_fd);
	close(root_peer);
	for (int i = 0; i < NCLIENT; i++)
		close(f.lfd[i]);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

static void test_cut_listed_only(void **state)
{
	(void)state;
	run_cut(0);
}

/* Thousands of sockets, more than any cap the cut ever had: a dump over many
 * datagrams, destroyed in batches while it goes on. */
static void test_cut_many(void **state)
{
	(void)state;
	run_cut(MANY);
}

static void test_supported(void **state)
{
	struct kc_err why = { { 0 } };

	(void)state;
	if (kc_sockcut_supported(&why) != 0)
		fail_msg("kc_sockcut_supported: %s", why.msg);
}

/* Without CAP_NET_ADMIN (a container, or here: another uid) the answer is no,
 * and says it is the permission, not the kernel. */
static void test_unsupported_without_permission(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kc_err why = { { 0 } };
		int rc;

		drop_to(CLIENT_UID);
		rc = kc_sockcut_supported(&why);
		_exit(rc == -1 && errno == EPERM && strstr(why.msg, "CAP_NET_ADMIN") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_nothing_to_cut(void **state)
{
	struct kc_endpoint_addr e;
	struct kc_err err = { { 0 } };
	unsigned cut = 7;

	(void)state;
	assert_int_equal(kc_sockcut(CLIENT_UID, NULL, 0, now_ms() + 5000, &cut, &err), 0);
	assert_int_equal(cut, 0);
	/* a port nothing listens on: nothing of this uid to cut */
	endpoint(&e, AF_INET6, "2001:db8::1", 9);
	assert_int_equal(kc_sockcut(CLIENT_UID, &e, 1, now_ms() + 5000, &cut, &err), 0);
	assert_int_equal(cut, 0);
}

static void test_bad_addresses(void **state)
{
	struct kc_endpoint_addr many[KC_SOCKCUT_MAX_ADDRS + 1];
	struct kc_err err = { { 0 } };
	unsigned cut;

	(void)state;
	for (size_t i = 0; i < KC_SOCKCUT_MAX_ADDRS + 1; i++)
		endpoint(&many[i], AF_INET, "192.0.2.1", (unsigned short)(1000 + i));
	assert_int_equal(kc_sockcut(CLIENT_UID, many, KC_SOCKCUT_MAX_ADDRS + 1, now_ms() + 5000, &cut, &err), -1);
	assert_non_null(strstr(err.msg, "at most"));
	/* the most it takes, all in one kernel filter */
	assert_int_equal(kc_sockcut(CLIENT_UID, many, KC_SOCKCUT_MAX_ADDRS, now_ms() + 5000, &cut, &err), 0);
	many[0].family = AF_UNIX;
	assert_int_equal(kc_sockcut(CLIENT_UID, many, 1, now_ms() + 5000, &cut, &err), -1);
	many[0].family = AF_INET;
	many[0].port = 0;
	assert_int_equal(kc_sockcut(CLIENT_UID, many, 1, now_ms() + 5000, &cut, &err), -1);
}

static bool has(const struct kc_endpoint_addr *a, size_t n, int family, const char *addr, unsigned short port)
{
	struct kc_endpoint_addr want;

	endpoint(&want, family, addr, port);
	for (size_t i = 0; i < n; i++) {
		if (a[i].family == family && a[i].port == port && memcmp(a[i].addr, want.addr, 16) == 0)
			return true;
	}
	return false;
}

static void test_resolve(void **state)
{
	struct kc_endpoint_addr *a;
	struct kc_err err = { { 0 } };
	size_t n;
	static const char *const bad[] = { "http://127.0.0.1",
					   "https://",
					   "https://:443",
					   "https://127.0.0.1:0",
					   "https://127.0.0.1:65536",
					   "https://127.0.0.1:1x",
					   "https://127.0.0.1:+443",
					   "https://u@127.0.0.1",
					   "https://[::1",
					   "https://[::1]x",
					   "https://name.invalid." };

	(void)state;
	assert_int_equal(kc_endpoint_resolve("https://127.0.0.1:6443", &a, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(has(a, n, AF_INET, "127.0.0.1", 6443));
	free(a);
	assert_int_equal(kc_endpoint_resolve("https://[::1]:8443/api?x=1", &a, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(has(a, n, AF_INET6, "::1", 8443));
	free(a);
	assert_int_equal(kc_endpoint_resolve("https://127.0.0.2/", &a, &n, &err), 0);
	assert_true(has(a, n, AF_INET, "127.0.0.2", 443));
	free(a);
	/* a name: every address, once */
	assert_int_equal(kc_endpoint_resolve("https://localhost:6443", &a, &n, &err), 0);
	assert_true(has(a, n, AF_INET, "127.0.0.1", 6443));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++)
			assert_false(a[i].family == a[j].family && memcmp(a[i].addr, a[j].addr, 16) == 0);
	}
	free(a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = (void *)1;
		err.msg[0] = '\0';
		if (kc_endpoint_resolve(bad[i], &a, &n, &err) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		assert_null(a);
		assert_non_null(strstr(err.msg, "cannot cut connections"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_nothing_to_cut),
		cmocka_unit_test(test_supported),
		cmocka_unit_test(test_unsupported_without_permission),
		cmocka_unit_test(test_cut_listed_only),
		cmocka_unit_test(test_cut_many),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_sockcut needs root (SOCK_DESTROY and a second uid)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

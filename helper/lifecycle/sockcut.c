/* Cutting a user's TCP connections to an API server: a sock_diag dump of the
 * sockets to the endpoint's addresses (the kernel filters by address), and
 * SOCK_DESTROY, in batches, for those the uid owns, while the dump goes on;
 * then walks again until none is left. No count of sockets, the uid's or
 * anyone's, makes it give up: only the deadline.
 *
 * A walk is one dump of IPv4 and IPv6 sockets together: inet_diag's first
 * request, TCPDIAG_GETSOCK, asks for every family. The kernel walks its whole
 * TCP hash table for a dump (262,144 buckets on a host with 24 GiB, ~1 ms)
 * whatever the filter, so a dump per family would walk it twice. */
#include "lifecycle/sockcut.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

/* Sockets destroyed per datagram of SOCK_DESTROY requests. */
#define SOCKCUT_BATCH 256
#define SOCKCUT_RECV_BUF (256u << 10)
#define SOCKCUT_BC_MAX (KC_SOCKCUT_MAX_ADDRS * 32)

/* Every state of a socket with a peer; not LISTEN (no peer), not TIME_WAIT
 * (owned by no process any more). */
#define SOCKCUT_STATES                                                                                   \
	((1U << TCP_ESTABLISHED) | (1U << TCP_SYN_SENT) | (1U << TCP_SYN_RECV) | (1U << TCP_FIN_WAIT1) | \
	 (1U << TCP_FIN_WAIT2) | (1U << TCP_CLOSE_WAIT) | (1U << TCP_LAST_ACK) | (1U << TCP_CLOSING))

struct sockcut_match {
	uint8_t family;
	struct inet_diag_sockid id;
};

struct sockcut_run {
	int dump_fd, destroy_fd; /* a dump and the destroys between its datagrams */
	uint32_t seq, dump_seq;
	long long deadline_ms;
	uid_t uid;
	/* Wanted peers, IPv4 as ::ffff:a.b.c.d so that one comparison covers both forms. */
	unsigned char want[KC_SOCKCUT_MAX_ADDRS][16];
	unsigned short want_port[KC_SOCKCUT_MAX_ADDRS];
	size_t nwant;
	unsigned char bc[SOCKCUT_BC_MAX];
	size_t bclen;
	struct sockcut_match batch[SOCKCUT_BATCH];
	size_t nbatch;
	size_t matched; /* sockets of the uid found, over every walk */
	unsigned cut, walks;
	unsigned char buf[SOCKCUT_RECV_BUF];
	unsigned char out[SOCKCUT_BATCH * (NLMSG_HDRLEN + sizeof(struct inet_diag_req_v2)) + 4096];
};

static const unsigned char v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void to_mapped(int family, const void *addr, unsigned char out[16])
{
	if (family == AF_INET) {
		memcpy(out, v4mapped_prefix, 12);
		memcpy(out + 12, addr, 4);
	} else {
		memcpy(out, addr, 16);
	}
}

/* ---- the endpoint's addresses ---- */

static int split_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen, struct kc_err *err)
{
	const char *h, *end, *p;
	size_t len;

	if (strncmp(url, "https://", 8) != 0) {
		kc_seterr(err, "cannot cut connections to '%s': not an https:// URL", url);
		return -1;
	}
	h = url + 8;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			kc_seterr(err, "cannot cut connections to '%s': unclosed '[' in the host", url);
			return -1;
		}
		p = end + 1;
		h++;
	} else {
		end = h + strcspn(h, ":/?#");
		p = end;
	}
	len = (size_t)(end - h);
	if (len == 0 || len >= hostlen || memchr(h, '@', len)) {
		kc_seterr(err, "cannot cut connections to '%s': no usable host in the URL", url);
		return -1;
	}
	memcpy(host, h, len);
	host[len] = '\0';
	snprintf(port, portlen, "443");
	if (*p == ':') {
		char *stop;
		unsigned long v;

		errno = 0;
		v = strtoul(p + 1, &stop, 10);
		if (!isdigit((unsigned char)p[1]) || errno || v == 0 || v > 65535 || (*stop && !strchr("/?#", *stop))) {
			kc_seterr(err, "cannot cut connections to '%s': the port is not a number from 1 to 65535", url);
			return -1;
		}
		snprintf(port, portlen, "%lu", v);
	} else if (*p && !strchr("/?#", *p)) {
		kc_seterr(err, "cannot cut connections to '%s': unexpected '%c' after the host", url, *p);
		return -1;
	}
	return 0;
}

int kc_endpoint_resolve(const char *url, struct kc_endpoint_addr **out, size_t *n, struct kc_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_protocol = IPPROTO_TCP,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	struct kc_endpoint_addr *list;
	char host[256], port[8];
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (split_url(url, host, sizeof(host), port, sizeof(port), err) < 0)
		return -1;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		kc_seterr(err, "cannot cut connections to %s: resolving '%s': %s", url, host,
			  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	list = calloc(KC_SOCKCUT_MAX_ADDRS, sizeof(*list));
	if (!list) {
		freeaddrinfo(res);
		kc_seterr(err, "out of memory");
		return -1;
	}
	for (ai = res; ai && count < KC_SOCKCUT_MAX_ADDRS; ai = ai->ai_next) {
		struct kc_endpoint_addr e = { .family = ai->ai_family };
		size_t i;

		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ai->ai_addr;

			memcpy(e.addr, &sin->sin_addr, 4);
			e.port = ntohs(sin->sin_port);
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;

			memcpy(e.addr, &sin6->sin6_addr, 16);
			e.port = ntohs(sin6->sin6_port);
		} else {
			continue;
		}
		for (i = 0; i < count; i++) {
			if (list[i].family == e.family && memcmp(list[i].addr, e.addr, 16) == 0)
				break; /* the same address for TCP and for another protocol */
		}
		if (i == count)
			list[count++] = e;
	}
	freeaddrinfo(res);
	if (count == 0) {
		free(list);
		kc_seterr(err, "cannot cut connections to %s: '%s' has no IPv4 or IPv6 address", url, host);
		return -1;
	}
	*out = list;
	*n = count;
	return 0;
}

/* ---- the kernel's filter: OR over "peer is addr:port" ---- */

static void bc_put(struct sockcut_run *r, const void *p, size_t len)
{
	memcpy(r->bc + r->bclen, p, len);
	r->bclen += len;
}

/* Each condition is tried in turn: a match jumps to the end (accept), a miss to
 * the next condition, a miss of the last one past the end (reject). An IPv4
 * condition also matches an IPv6 socket whose peer is ::ffff:a.b.c.d. */
static void build_filter(struct sockcut_run *r)
{
	size_t jmp_at[KC_SOCKCUT_MAX_ADDRS] = { 0 };
	size_t i, njmp = 0;

	r->bclen = 0;
	for (i = 0; i < r->nwant; i++) {
		bool v4 = memcmp(r->want[i], v4mapped_prefix, 12) == 0;
		size_t len = sizeof(struct inet_diag_bc_op) + sizeof(struct inet_diag_hostcond) + (v4 ? 4 : 16);
		struct inet_diag_bc_op op = { .code = INET_DIAG_BC_D_COND,
					      .yes = (unsigned char)len,
					      .no = (unsigned short)(len + 4) };
		struct inet_diag_hostcond cond = { .family = v4 ? AF_INET : AF_INET6,
						   .prefix_len = v4 ? 32 : 128,
						   .port = r->want_port[i] };

		bc_put(r, &op, sizeof(op));
		bc_put(r, &cond, sizeof(cond));
		bc_put(r, v4 ? r->want[i] + 12 : r->want[i], v4 ? 4 : 16);
		if (i + 1 < r->nwant) {
			struct inet_diag_bc_op jmp = { .code = INET_DIAG_BC_JMP, .yes = 4 };

			jmp_at[njmp++] = r->bclen;
			bc_put(r, &jmp, sizeof(jmp));
		}
	}
	/* A match lands on the JMP after its condition, whose "no" leads to the end. */
	for (i = 0; i < njmp; i++) {
		unsigned short to_end = (unsigned short)(r->bclen - jmp_at[i]);

		memcpy(r->bc + jmp_at[i] + offsetof(struct inet_diag_bc_op, no), &to_end, sizeof(to_end));
	}
}

/* ---- netlink ---- */

static int nl_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int size = SOCKCUT_RECV_BUF;

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return fd;
}

/* Appends one request (req, size bytes: a dump's or a destroy's) to msg
 * (the batch being built). */
static void nl_put(struct sockcut_run *r, unsigned char *msg, size_t *len, uint16_t type, uint16_t flags,
		   const void *req, size_t size, bool with_filter)
{
	struct nlmsghdr nlh = { .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = ++r->seq };
	struct nlattr attr = { .nla_type = INET_DIAG_REQ_BYTECODE, .nla_len = (uint16_t)(NLA_HDRLEN + r->bclen) };
	size_t at = *len;

	nlh.nlmsg_len = NLMSG_LENGTH(size) + (with_filter ? NLA_ALIGN(attr.nla_len) : 0);
	memcpy(msg + at, &nlh, NLMSG_HDRLEN);
	memcpy(msg + at + NLMSG_HDRLEN, req, size);
	if (with_filter) {
		memcpy(msg + at + NLMSG_LENGTH(size), &attr, NLA_HDRLEN);
		memcpy(msg + at + NLMSG_LENGTH(size) + NLA_HDRLEN, r->bc, r->bclen);
		memset(msg + at + NLMSG_LENGTH(size) + NLA_HDRLEN + r->bclen, 0,
		       NLA_ALIGN(attr.nla_len) - attr.nla_len);
	}
	*len += NLMSG_ALIGN(nlh.nlmsg_len);
}

static int nl_send(int fd, const unsigned char *msg, size_t len)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t sent;

	do
		sent = sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (sent < 0 && errno == EINTR);
	return sent == (ssize_t)len ? 0 : -1;
}

/* One datagram from the kernel within the deadline; -1 with errno
 * (ETIMEDOUT when the deadline has come). */
static ssize_t nl_recv(struct sockcut_run *r, int fd)
{
	struct sockaddr_nl from;
	struct iovec iov = { r->buf, sizeof(r->buf) };
	struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };

	for (;;) {
		ssize_t got;

		if (kc_wait_fd(fd, POLLIN, r->deadline_ms) < 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		got = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got >= 0 && (msg.msg_flags & MSG_TRUNC)) {
			errno = EMSGSIZE;
			return -1;
		}
		if (got >= 0 && from.nl_pid != 0)
			continue; /* not from the kernel */
		return got;
	}
}

static bool wanted(const struct sockcut_run *r, const struct inet_diag_msg *m)
{
	unsigned char peer[16];

	if (m->idiag_uid != r->uid)
		return false;
	to_mapped(m->idiag_family, m->id.idiag_dst, peer);
	for (size_t i = 0; i < r->nwant; i++)
		if (r->want_port[i] == ntohs(m->id.idiag_dport) && memcmp(r->want[i], peer, 16) == 0)
			return true;
	return false;
}

/* ---- destroying, a batch at a time ---- */

/* Sends one SOCK_DESTROY per socket of the batch in one datagram, then reads
 * every answer. ENOENT: closed meanwhile. 0, or -1 with errno. */
static int destroy_batch(struct sockcut_run *r)
{
	size_t len = 0;
	uint32_t first = r->seq + 1;
	size_t answered = 0;

	if (r->nbatch == 0)
		return 0;
	for (size_t i = 0; i < r->nbatch; i++) {
		struct inet_diag_req_v2 req = { .sdiag_family = r->batch[i].family,
						.sdiag_protocol = IPPROTO_TCP,
						.idiag_states = SOCKCUT_STATES,
						.id = r->batch[i].id };

		nl_put(r, r->out, &len, SOCK_DESTROY, NLM_F_ACK, &req, sizeof(req), false);
	}
	r->matched += r->nbatch;
	if (nl_send(r->destroy_fd, r->out, len) < 0)
		return -1;
	while (answered < r->nbatch) {
		ssize_t got = nl_recv(r, r->destroy_fd);
		size_t left;

		if (got < 0)
			return -1;
		left = (size_t)got;
		for (const struct nlmsghdr *h = (const void *)r->buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first || h->nlmsg_seq > r->seq)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
				errno = EPROTO;
				return -1;
			}
			answered++;
			if (e->error == 0)
				r->cut++;
			else if (e->error != -ENOENT) {
				errno = -e->error;
				return -1;
			}
		}
	}
	r->nbatch = 0;
	return 0;
}

/* One message of a dump: 1 at its end, 0 to go on, -1 on failure (errno). A
 * match joins the batch, which is destroyed whenever it fills. */
static int dump_message(struct sockcut_run *r, const struct nlmsghdr *h)
{
	const struct inet_diag_msg *m;

	if (h->nlmsg_seq != r->dump_seq)
		return 0;
	if (h->nlmsg_type == NLMSG_DONE) {
		/* A dump that failed part way ends with a negative errno here. */
		const int *status = NLMSG_DATA(h);

		if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*status)) && *status < 0) {
			errno = -*status;
			return -1;
		}
		return 1;
	}
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);

		errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? -e->error : EPROTO;
		return -1;
	}
	if (h->nlmsg_type != TCPDIAG_GETSOCK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;
	m = NLMSG_DATA(h);
	if (!wanted(r, m))
		return 0;
	r->batch[r->nbatch].family = m->idiag_family;
	r->batch[r->nbatch].id = m->id;
	return ++r->nbatch == SOCKCUT_BATCH ? destroy_batch(r) : 0;
}

/* Walks the TCP table once, IPv4 and IPv6 sockets alike, through the filter,
 * destroying as it goes. (The answers carry the request's type.) */
static int walk(struct sockcut_run *r)
{
	struct inet_diag_req req = { .idiag_states = SOCKCUT_STATES };
	size_t len = 0;

	nl_put(r, r->out, &len, TCPDIAG_GETSOCK, NLM_F_DUMP, &req, sizeof(req), true);
	r->dump_seq = r->seq;
	if (nl_send(r->dump_fd, r->out, len) < 0)
		return -1;
	for (;;) {
		ssize_t got = nl_recv(r, r->dump_fd);
		size_t left;

		if (got < 0)
			return -1;
		left = (size_t)got;
		for (const struct nlmsghdr *h = (const void *)r->buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			int rc = dump_message(r, h);

			if (rc != 0)
				return rc > 0 ? destroy_batch(r) : -1;
		}
	}
}

static const char *destroy_advice(int e)
{
	switch (e) {
	case EOPNOTSUPP: return "this kernel cannot destroy sockets (built without CONFIG_INET_DIAG_DESTROY)";
	case EPERM:
	case EACCES: return "no permission to destroy sockets (CAP_NET_ADMIN is missing here, e.g. in a container)";
	case ETIMEDOUT: return "out of time";
	default: return strerror(e);
	}
}

static int set_wanted(struct sockcut_run *r, const struct kc_endpoint_addr *addrs, size_t n, struct kc_err *err)
{
	size_t i, j;

	if (n > KC_SOCKCUT_MAX_ADDRS) {
		kc_seterr(err, "cannot cut connections: %zu addresses given, at most %d", n, KC_SOCKCUT_MAX_ADDRS);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((addrs[i].family != AF_INET && addrs[i].family != AF_INET6) || addrs[i].port == 0) {
			kc_seterr(err, "cannot cut connections: address %zu is not an IPv4 or IPv6 address with a port",
				  i);
			return -1;
		}
		to_mapped(addrs[i].family, addrs[i].addr, r->want[r->nwant]);
		r->want_port[r->nwant] = addrs[i].port;
		for (j = 0; j < r->nwant; j++) {
			if (r->want_port[j] == addrs[i].port && memcmp(r->want[j], r->want[r->nwant], 16) == 0)
				break;
		}
		if (j == r->nwant)
			r->nwant++;
	}
	return 0;
}

/* Walks until a whole walk finds nothing of the uid's: a
 * destroy during a dump may make the kernel skip a socket, and the user may
 * open more meanwhile. */
static int run_cut(struct sockcut_run *r, struct kc_err *err)
{
	for (;;) {
		size_t before = r->matched;

		if (walk(r) < 0) {
			int e = errno;

			kc_seterr(err, "cannot cut connections: %s; %u cut", destroy_advice(e), r->cut);
			errno = e;
			return -1;
		}
		if (r->matched == before)
			return 0;
		r->walks++;
	}
}

int kc_sockcut(uid_t uid, const struct kc_endpoint_addr *addrs, size_t n, long long deadline_ms, unsigned *cut,
	       struct kc_err *err)
{
	struct sockcut_run *r;
	int rc = -1, e = 0;

	*cut = 0;
	if (n == 0)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	r->dump_fd = r->destroy_fd = -1;
	r->uid = uid;
	r->deadline_ms = deadline_ms;
	if (set_wanted(r, addrs, n, err) < 0) {
		e = EINVAL;
		goto out;
	}
	build_filter(r);
	r->dump_fd = nl_socket();
	r->destroy_fd = nl_socket();
	if (r->dump_fd < 0 || r->destroy_fd < 0) {
		e = errno;
		kc_seterr(err, "cannot cut connections: netlink sock_diag socket: %s (is inet_diag available?)",
			  strerror(e));
		goto out;
	}
	rc = run_cut(r, err);
	e = errno;
out:
	*cut = r->cut;
	if (r->dump_fd >= 0)
		close(r->dump_fd);
	if (r->destroy_fd >= 0)
		close(r->destroy_fd);
	free(r);
	if (rc < 0)
		errno = e;
	return rc;
}

/* ---- can this host do it? ---- */

static int loopback_pair(int fds[3], struct kc_endpoint_addr *server, struct kc_err *why)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || bind(fds[0], (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fds[0], 1) < 0 ||
	    getsockname(fds[0], (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
	if (fds[2] < 0)
		goto fail;
	server->family = AF_INET;
	memcpy(server->addr, &sin.sin_addr, 4);
	server->port = ntohs(sin.sin_port);
	return 0;
fail:
	kc_seterr(why, "cannot test cutting connections: a loopback TCP connection: %s", strerror(errno));
	return -1;
}

int kc_sockcut_supported(struct kc_err *why)
{
	int fds[3] = { -1, -1, -1 };
	struct kc_endpoint_addr server = { 0 };
	unsigned cut = 0;
	int rc = -1, e = EPROTO, so_error = 0;
	socklen_t len = sizeof(so_error);
	size_t i;

	if (loopback_pair(fds, &server, why) < 0) {
		e = errno;
		goto out;
	}
	if (kc_sockcut(geteuid(), &server, 1, kc_now_ms() + 1000, &cut, why) < 0) {
		e = errno;
		goto out;
	}
	if (getsockopt(fds[1], SOL_SOCKET, SO_ERROR, &so_error, &len) < 0 || cut != 1 || so_error != ECONNABORTED) {
		kc_seterr(why, "cannot cut connections: a test connection was not cut (%u cut, its error: %s)", cut,
			  so_error ? strerror(so_error) : "none");
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < 3; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (rc < 0)
		errno = e;
	return rc;
}

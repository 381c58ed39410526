/* Refusing a revoked uid's reconnects with nftables (see refuse.h). */
#include "lifecycle/refuse.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/subprocess.h"

#define RECORD_MAX 8192

/* Our table, made if missing, with its chain's rules laid anew in the same
 * transaction (running it again changes nothing). The rules match a SYN
 * alone: they refuse new connections; open ones are the cut's. */
static void put_table(struct kc_buf *b)
{
	kc_buf_puts(b,
		    "add table inet " KC_NFT_TABLE "\n"
		    "add set inet " KC_NFT_TABLE " refused4 { type uid . ipv4_addr . inet_service; flags timeout; }\n"
		    "add set inet " KC_NFT_TABLE " refused6 { type uid . ipv6_addr . inet_service; flags timeout; }\n"
		    "add chain inet " KC_NFT_TABLE " output { type filter hook output priority 0; policy accept; }\n"
		    "flush chain inet " KC_NFT_TABLE " output\n"
		    "add rule inet " KC_NFT_TABLE " output tcp flags & (syn|ack) == syn "
		    "meta skuid . ip daddr . tcp dport @refused4 reject with tcp reset\n"
		    "add rule inet " KC_NFT_TABLE " output tcp flags & (syn|ack) == syn "
		    "meta skuid . ip6 daddr . tcp dport @refused6 reject with tcp reset\n");
}

/* "ip port" -> "4 ip port" or "6 ip port", an IPv4-mapped IPv6 address as the
 * IPv4 one (the kernel sends those as IPv4). -1: not an address. */
static int element_of(const char *addr, char *out, size_t len)
{
	char ip[64], text[INET6_ADDRSTRLEN];
	unsigned char a[16];
	unsigned port;

	if (sscanf(addr, "%63s %u", ip, &port) != 2 || port == 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, ip, a) == 1)
		return snprintf(out, len, "4 %s %u", ip, port), 0;
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 && inet_ntop(AF_INET, a + 12, text, sizeof(text)))
		return snprintf(out, len, "4 %s %u", text, port), 0;
	return snprintf(out, len, "6 %s %u", ip, port), 0;
}

static int nft(const struct kc_buf *script, long long deadline_ms, struct kc_err *err)
{
	char *argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
	char errtext[1024];
	long long left = deadline_ms - kc_now_ms();
	const struct kc_subprocess p = { .path = KC_NFT,
					 .argv = argv,
					 .input = script->data,
					 .input_len = script->len,
					 .timeout_ms = left > 10000 ? 10000 : (int)left };
	struct kc_subprocess_output o = { .err = errtext, .err_cap = sizeof(errtext) };
	struct kc_subprocess_result r;

	if (left < 1)
		return kc_seterr(err, "nft: no time left"), -1;
	if (kc_subprocess_run(&p, &o, &r) < 0)
		return kc_seterr(err, "cannot run %s: %s", KC_NFT, strerror(r.error)), -1;
	if (r.exit_status != 0)
		return kc_seterr(err, "%s %s: %.300s", KC_NFT, r.timed_out ? "did not finish in time" : "failed",
				 o.err_len ? errtext : "(no message)"),
		       -1;
	return 0;
}

static void record_name(const char *what, const char *cluster, char *out, size_t len)
{
	snprintf(out, len, "%s-%s", what, cluster);
}

/* What a record of ours says may stand, when it still may (its elements were
 * added a moment after it was written, so they may outlive its time a little):
 * 0 with record filled; -1 when there is none, or nothing of it stands. */
static int standing(int dir, const char *name, struct kc_buf *record)
{
	long long until = 0;
	struct stat st;
	struct kc_err e;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1; /* the common case: one syscall */
	if (kc_read_at(dir, name, RECORD_MAX, record, NULL, &e) == 0 && record->data &&
	    sscanf(record->data, "until %lld", &until) == 1 && until + KC_REFUSE_S > (long long)time(NULL))
		return 0;
	unlinkat(dir, name, 0);
	return -1;
}

/* ---- set elements over netlink (nf_tables), without running nft ---- */

struct nl_batch {
	unsigned char buf[8192];
	size_t len;
	uint32_t seq;
	unsigned ops; /* messages that answer with an ack */
};

static void *nl_put(struct nl_batch *b, const void *data, size_t len)
{
	void *at = b->buf + b->len;

	memcpy(at, data, len);
	b->len += NLMSG_ALIGN(len);
	return at;
}

/* An attribute; nested ones are closed by attr_end() with their length. */
static struct nlattr *attr(struct nl_batch *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr a = { .nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type };
	struct nlattr *at = (struct nlattr *)(void *)(b->buf + b->len);

	memcpy(b->buf + b->len, &a, sizeof(a));
	if (len)
		memcpy(b->buf + b->len + NLA_HDRLEN, data, len);
	memset(b->buf + b->len + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
	b->len += NLA_HDRLEN + NLA_ALIGN(len);
	return at;
}

static void attr_end(struct nl_batch *b, struct nlattr *nest)
{
	nest->nla_len = (uint16_t)((b->buf + b->len) - (unsigned char *)nest);
}

static struct nlmsghdr *msg_begin(struct nl_batch *b, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id)
{
	struct nlmsghdr h = { .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = ++b->seq };
	struct nfgenmsg g = { .nfgen_family = family, .version = NFNETLINK_V0, .res_id = htons(res_id) };
	struct nlmsghdr *at = nl_put(b, &h, NLMSG_HDRLEN);

	nl_put(b, &g, sizeof(g));
	return at;
}

static void msg_end(struct nl_batch *b, struct nlmsghdr *h)
{
	h->nlmsg_len = (uint32_t)((b->buf + b->len) - (unsigned char *)h);
}

/* uid . address . port, each in a 32-bit slot (the uid in host order, the
 * rest in network order), as nft lays a concatenated key out. */
static size_t element_key(uid_t uid, int family, const unsigned char *addr, unsigned port, unsigned char key[24])
{
	uint32_t u = (uint32_t)uid;
	uint16_t p = htons((uint16_t)port);
	size_t alen = family == 4 ? 4 : 16;

	memset(key, 0, 24);
	memcpy(key, &u, 4);
	memcpy(key + 4, addr, alen);
	memcpy(key + 4 + alen, &p, 2);
	return 4 + alen + 4;
}

/* One NEWSETELEM or DELSETELEM message for the record's elements of family
 * (4 or 6) in set SET4/SET6. Nothing when the record has none. */
static void put_elements_nl(struct nl_batch *b, bool add, const char *set, const char *record, uid_t uid,
			    long timeout_s, int family)
{
	char set_name[32];
	struct nlmsghdr *h = NULL;
	struct nlattr *list = NULL;

	snprintf(set_name, sizeof(set_name), "%s%d", set, family);
	for (const char *p = record; *p; p += strcspn(p, "\n"), p += *p == '\n') {
		unsigned char a[16], key[24];
		char ip[64];
		unsigned port;
		int fam;
		struct nlattr *elem, *k;

		if (sscanf(p, "%d %63s %u", &fam, ip, &port) != 3 || fam != family ||
		    inet_pton(family == 4 ? AF_INET : AF_INET6, ip, a) != 1 || b->len + 256 > sizeof(b->buf))
			continue;
		if (!h) {
			h = msg_begin(b, (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
				      (uint16_t)(NLM_F_ACK | (add ? NLM_F_CREATE : 0)), NFPROTO_INET, 0);
			attr(b, NFTA_SET_ELEM_LIST_TABLE, KC_NFT_TABLE, sizeof(KC_NFT_TABLE));
			attr(b, NFTA_SET_ELEM_LIST_SET, set_name, strlen(set_name) + 1);
			list = attr(b, NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS, NULL, 0);
		}
		elem = attr(b, NLA_F_NESTED | NFTA_LIST_ELEM, NULL, 0);
		k = attr(b, NLA_F_NESTED | NFTA_SET_ELEM_KEY, NULL, 0);
		attr(b, NFTA_DATA_VALUE, key, element_key(uid, family, a, port, key));
		attr_end(b, k);
		if (add && timeout_s > 0) {
			uint64_t ms = (uint64_t)timeout_s * 1000;
			uint64_t be = ((uint64_t)htonl((uint32_t)ms) << 32) | htonl((uint32_t)(ms >> 32));

			attr(b, NFTA_SET_ELEM_TIMEOUT, &be, sizeof(be));
		}
		attr_end(b, elem);
	}
	if (h) {
		attr_end(b, list);
		msg_end(b, h);
		b->ops++;
	}
}

/* One netlink socket for the whole process. Closing one that made a
 * transaction waits for the kernel to free what the transaction replaced (an
 * RCU grace period, 5-20 ms: nf_tables flushes its destroy work when a
 * netlink socket goes): the process's last child closes it instead
 * (kc_refuse_socket_take()). */
static pthread_mutex_t nl_lock = PTHREAD_MUTEX_INITIALIZER;
static int nl_fd = -1;

int kc_refuse_socket_take(void)
{
	int fd;

	pthread_mutex_lock(&nl_lock);
	fd = nl_fd;
	nl_fd = -1;
	pthread_mutex_unlock(&nl_lock);
	return fd;
}

/* Sends the batch as one transaction and reads an answer for each message.
 * 0, or -1 with errno (ENOENT: our table or a set of it is missing). */
static int nl_commit(struct nl_batch *b, long long deadline_ms)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	unsigned char answer[4096];
	unsigned answered = 0;
	int rc = 0, e;

	if (!b->ops)
		return 0;
	pthread_mutex_lock(&nl_lock);
	if (nl_fd < 0)
		nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (nl_fd < 0) {
		e = errno;
		pthread_mutex_unlock(&nl_lock);
		errno = e;
		return -1;
	}
	if (sendto(nl_fd, b->buf, b->len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)b->len)
		rc = -1;
	while (rc == 0 && answered < b->ops) {
		ssize_t got;
		size_t left;

		if (kc_wait_fd(nl_fd, POLLIN, deadline_ms) < 0) {
			errno = ETIMEDOUT;
			rc = -1;
			break;
		}
		got = recv(nl_fd, answer, sizeof(answer), 0);
		if (got < 0) {
			rc = errno == EINTR ? 0 : -1;
			continue;
		}
		left = (size_t)got;
		for (const struct nlmsghdr *h = (const void *)answer; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			const struct nlmsgerr *err = NLMSG_DATA(h);

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			answered++;
			if (err->error < 0) {
				errno = -err->error;
				rc = -1;
			}
		}
	}
	e = errno;
	if (answered < b->ops) { /* answers may be left in it: not used again */
		close(nl_fd);
		nl_fd = -1;
	}
	pthread_mutex_unlock(&nl_lock);
	errno = e;
	return rc;
}

/* Element changes over netlink (the common case: the table is there); the
 * table made with nft, and the changes tried again, only when they fail. */
static int change_elements(struct nl_batch *b, long long deadline_ms, struct kc_err *err)
{
	struct nl_batch batch = { 0 };
	kc_autobuf struct kc_buf script = { 0 };

	if (!b->ops)
		return 0;
	/* begin, the changes, end */
	msg_begin(&batch, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	((struct nlmsghdr *)(void *)batch.buf)->nlmsg_len = (uint32_t)batch.len;
	memcpy(batch.buf + batch.len, b->buf, b->len);
	batch.len += b->len;
	{
		struct nlmsghdr *end = msg_begin(&batch, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);

		msg_end(&batch, end);
	}
	batch.ops = b->ops;
	if (nl_commit(&batch, deadline_ms) == 0)
		return 0;
	if (errno != ENOENT)
		return kc_seterr(err, "nf_tables: %s", strerror(errno)), -1;
	put_table(&script);
	if (nft(&script, deadline_ms, err) < 0)
		return -1;
	return nl_commit(&batch, deadline_ms) == 0 ? 0 : (kc_seterr(err, "nf_tables: %s", strerror(errno)), -1);
}

int kc_refuse_add(int dir, const char *cluster, uid_t uid, char (*addrs)[64], size_t n, long long deadline_ms,
		  struct kc_err *err)
{
	const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };
	kc_autobuf struct kc_buf record = { 0 };
	struct nl_batch *b = calloc(1, sizeof(*b));
	char name[160];
	int rc = -1;

	if (!b)
		return kc_seterr(err, "out of memory"), -1;
	kc_buf_printf(&record, "until %lld\n", (long long)time(NULL) + KC_REFUSE_S);
	for (size_t i = 0; i < n; i++) {
		char element[96];

		if (element_of(addrs[i], element, sizeof(element)) == 0 && !strstr(record.data, element))
			kc_buf_printf(&record, "%s\n", element);
	}
	for (int f = 4; f <= 6; f += 2)
		put_elements_nl(b, true, "refused", record.data, uid, KC_REFUSE_S, f);
	/* Recorded first: a lift must find what may stand. */
	record_name("refused", cluster, name, sizeof(name));
	if (kc_write_at(dir, name, record.data, record.len, &o, err) == 0 && change_elements(b, deadline_ms, err) == 0)
		rc = 0;
	free(b);
	return rc;
}

bool kc_refuse_stands(int dir, const char *cluster)
{
	char name[160];
	struct stat st;

	record_name("refused", cluster, name, sizeof(name));
	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void kc_refuse_lift(int dir, const char *cluster, uid_t uid, long long deadline_ms)
{
	kc_autobuf struct kc_buf record = { 0 };
	struct nl_batch *b;
	char name[160];
	struct kc_err e = { "" };

	record_name("refused", cluster, name, sizeof(name));
	if (standing(dir, name, &record) < 0)
		return;
	/* Each element added (a no-op where it stands) then deleted: deleting
	 * one that has just expired would fail the whole transaction. */
	b = calloc(1, sizeof(*b));
	for (int f = 4; b && f <= 6; f += 2) {
		put_elements_nl(b, true, "refused", record.data, uid, 1, f);
		put_elements_nl(b, false, "refused", record.data, uid, 0, f);
	}
	if (!b || change_elements(b, deadline_ms, &e) < 0)
		kc_warn("cluster %s: cannot lift the refusal of uid %u's new connections: %s (it ends by itself "
			"within %d s)",
			cluster, (unsigned)uid, b ? e.msg : "out of memory", KC_REFUSE_S);
	free(b);
	unlinkat(dir, name, 0);
}

int kc_refuse_supported(struct kc_err *why)
{
	kc_autobuf struct kc_buf script = { 0 };

	if (access(KC_NFT, X_OK) < 0)
		return kc_seterr(why, "%s is missing (Debian: apt install nftables)", KC_NFT), -1;
	put_table(&script);
	return nft(&script, kc_now_ms() + 5000, why);
}

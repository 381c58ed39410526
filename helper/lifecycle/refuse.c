/* Refusing a revoked uid's reconnects with nftables (see refuse.h). */
#include "lifecycle/refuse.h"

#include <arpa/inet.h>
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

/* Our table, made if missing; its chain's two rules laid anew in the same
 * transaction, so running it again changes nothing. The rules match a SYN
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

/* The record's elements ("4 ip port" a line) as one statement per set:
 * "VERB element inet pam_kubeconfig refused4 { uid . ip . port[ timeout T], ... }". */
static void put_elements(struct kc_buf *b, const char *verb, const char *record, uid_t uid, const char *timeout)
{
	for (int family = 4; family <= 6; family += 2) {
		kc_autobuf struct kc_buf list = { 0 };

		for (const char *p = record; *p;) {
			char ip[64];
			unsigned port;
			int fam;

			if (sscanf(p, "%d %63s %u", &fam, ip, &port) == 3 && fam == family)
				kc_buf_printf(&list, "%s%u . %s . %u%s%s", list.len ? ", " : "", (unsigned)uid, ip,
					      port, timeout ? " timeout " : "", timeout ? timeout : "");
			p += strcspn(p, "\n");
			p += *p == '\n';
		}
		if (list.len)
			kc_buf_printf(b, "%s element inet " KC_NFT_TABLE " refused%d { %s }\n", verb, family,
				      list.data);
	}
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

static void record_name(const char *cluster, char *out, size_t len)
{
	snprintf(out, len, "refused-%s", cluster);
}

int kc_refuse_add(int dir, const char *cluster, uid_t uid, char (*addrs)[64], size_t n, long long deadline_ms,
		  struct kc_err *err)
{
	const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };
	kc_autobuf struct kc_buf record = { 0 }, script = { 0 };
	char name[160], timeout[16];

	kc_buf_printf(&record, "until %lld\n", (long long)time(NULL) + KC_REFUSE_S);
	for (size_t i = 0; i < n; i++) {
		char element[96];

		if (element_of(addrs[i], element, sizeof(element)) == 0 && !strstr(record.data, element))
			kc_buf_printf(&record, "%s\n", element);
	}
	snprintf(timeout, sizeof(timeout), "%ds", KC_REFUSE_S);
	put_table(&script);
	put_elements(&script, "add", record.data, uid, timeout);
	/* Recorded first: a lift must find what may stand. */
	record_name(cluster, name, sizeof(name));
	if (kc_write_at(dir, name, record.data, record.len, &o, err) < 0)
		return -1;
	return nft(&script, deadline_ms, err);
}

void kc_refuse_lift(int dir, const char *cluster, uid_t uid, long long deadline_ms)
{
	kc_autobuf struct kc_buf record = { 0 }, script = { 0 };
	long long until = 0;
	char name[160];
	struct stat st;
	struct kc_err e;

	record_name(cluster, name, sizeof(name));
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	/* Lifted whenever the record says it may stand: its elements were added
	 * a moment after it was written, so they may outlive its time a little. */
	if (kc_read_at(dir, name, RECORD_MAX, &record, NULL, &e) == 0 && record.data &&
	    sscanf(record.data, "until %lld", &until) == 1 && until + KC_REFUSE_S > (long long)time(NULL)) {
		/* Deleting an element that has just expired would fail the whole
		 * transaction: each is added (a no-op when it stands) then deleted. */
		put_table(&script);
		put_elements(&script, "add", record.data, uid, "1s");
		put_elements(&script, "delete", record.data, uid, NULL);
		if (nft(&script, deadline_ms, &e) < 0)
			kc_warn("cluster %s: cannot lift the refusal of uid %u's new connections: %s (it ends by "
				"itself "
				"within %d s)",
				cluster, (unsigned)uid, e.msg, KC_REFUSE_S);
	}
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

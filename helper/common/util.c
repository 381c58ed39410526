/* Shared helpers: errors, buffers, durations, time, hashing, base64 and reads of
 * root-owned files that refuse symlinks, wrong owners and oversize input. */
#include "common/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

void kc_seterr(struct kc_err *err, const char *fmt, ...)
{
	char msg[KC_ERR_MAX];
	va_list ap;

	if (!err)
		return;
	/* Through a copy: callers prefix a message with itself (kc_seterr(err, "x: %s", err->msg)). */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(err->msg, msg, sizeof(msg));
}

static int buf_reserve(struct kc_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX / 2 - b->len)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return -1;
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		if (b->secret)
			explicit_bzero(b->data, b->cap);
		free(b->data);
	} else {
		p[0] = '\0';
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int kc_buf_append(struct kc_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int kc_buf_puts(struct kc_buf *b, const char *s)
{
	return kc_buf_append(b, s, strlen(s));
}

int kc_buf_printf(struct kc_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void kc_buf_free(struct kc_buf *b)
{
	if (b->data && b->secret)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void kc_free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int kc_parse_duration(const char *s, long *seconds)
{
	long total = 0;
	bool any = false;

	if (!s || !*s)
		return -1;
	while (*s) {
		char *end;
		long n, unit;

		if (!isdigit((unsigned char)*s))
			return -1;
		errno = 0;
		n = strtol(s, &end, 10);
		if (errno || end == s)
			return -1;
		switch (*end) {
		case 'h': unit = 3600; break;
		case 'm': unit = 60; break;
		case 's': unit = 1; break;
		default: return -1;
		}
		if (n > LONG_MAX / unit / 2 || total > LONG_MAX / 2)
			return -1;
		total += n * unit;
		any = true;
		s = end + 1;
	}
	if (!any)
		return -1;
	*seconds = total;
	return 0;
}

int kc_parse_percent(const char *s, int *percent)
{
	char *end;
	long n;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || strcmp(end, "%") != 0 || n < 1 || n > 99)
		return -1;
	*percent = (int)n;
	return 0;
}

void kc_format_duration(long seconds, char *buf, size_t len)
{
	long h = seconds / 3600, m = (seconds % 3600) / 60, s = seconds % 60;
	size_t off = 0;

	buf[0] = '\0';
	if (h && off < len)
		off += (size_t)snprintf(buf + off, len - off, "%ldh", h);
	if (m && off < len)
		off += (size_t)snprintf(buf + off, len - off, "%ldm", m);
	if ((s || seconds == 0) && off < len)
		snprintf(buf + off, len - off, "%lds", s);
}

void kc_format_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int kc_parse_time(const char *s, time_t *t)
{
	struct tm tm;
	const char *p;
	long offset = 0;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') /* fractional seconds: ignored */
		while (isdigit((unsigned char)*++p))
			;
	if (*p == 'Z' && p[1] == '\0') {
		offset = 0;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		   p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) && p[6] == '\0') {
		offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			offset = -offset;
	} else {
		return -1;
	}
	*t = timegm(&tm) - offset;
	return 0;
}

/* SHA-256 fetched once: EVP_sha256() fetches it from the provider at every
 * digest, a third of a short digest's cost (refresh keys 10,000 users). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void kc_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	pthread_once(&sha256_once, fetch_sha256);
	EVP_Digest(data, len, md, &mdlen, sha256_md ? sha256_md : EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

char *kc_base64_encode(const void *data, size_t len, bool url)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *tab = url ? safe : std;
	const unsigned char *in = data;
	char *out, *o;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t n = len - i;

		if (n > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		if (n > 1)
			*o++ = tab[(v >> 6) & 63];
		else if (!url)
			*o++ = '=';
		if (n > 2)
			*o++ = tab[v & 63];
		else if (!url)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

int kc_base64_digit(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Either alphabet, standard or URL-safe (RFC 4648 4 and 5). */
static int b64_value(int c)
{
	return c == '-' ? 62 : c == '_' ? 63 : kc_base64_digit(c);
}

int kc_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
	unsigned char *o;
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	bool pad = false;

	o = malloc(inlen / 4 * 3 + 3);
	if (!o)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		int c = (unsigned char)in[i], v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad = true;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad)
			goto fail;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6)
		goto fail;
	*out = o;
	*outlen = n;
	return 0;
fail:
	free(o);
	return -1;
}

int kc_wait_fd(int fd, short events, long long deadline_ms)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		long long left = deadline_ms - kc_now_ms();
		int n;

		if (left <= 0)
			return -1;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Moves all len bytes one way (write, or read to the last byte), resuming
 * after EINTR and short transfers, within the deadline when there is one. */
static int transfer(int fd, char *p, size_t len, bool out, long long deadline_ms)
{
	while (len > 0) {
		ssize_t n;

		if (deadline_ms && kc_wait_fd(fd, out ? POLLOUT : POLLIN, deadline_ms) < 0)
			return -1;
		n = out ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && (errno == EINTR || (deadline_ms && errno == EAGAIN)))
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int kc_write_all(int fd, const void *buf, size_t len, long long deadline_ms)
{
	/* write() does not change the bytes; transfer() serves both ways. */
	return transfer(fd, (char *)(uintptr_t)buf, len, true, deadline_ms);
}

int kc_read_exact(int fd, void *buf, size_t len, long long deadline_ms)
{
	return transfer(fd, buf, len, false, deadline_ms);
}

ssize_t kc_read_all(int fd, void *buf, size_t max)
{
	size_t off = 0;

	while (off < max) {
		ssize_t n = read(fd, (char *)buf + off, max - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* Read once per process: a boot's id does not change under it, and gc and
 * refresh ask for it for every session record of every user. */
static char boot_id[64];
static pthread_once_t boot_id_once = PTHREAD_ONCE_INIT;

static void read_boot_id(void)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = kc_read_all(fd, boot_id, sizeof(boot_id) - 1);
	close(fd);
	boot_id[n > 0 ? n : 0] = '\0';
	boot_id[strcspn(boot_id, "\n")] = '\0';
}

void kc_boot_id(char out[64])
{
	pthread_once(&boot_id_once, read_boot_id);
	memcpy(out, boot_id, sizeof(boot_id));
}

struct beside {
	void (*fn)(void *ctx);
	void *ctx;
};

static void *run_beside(void *arg)
{
	struct beside *b = arg;

	b->fn(b->ctx);
	return NULL;
}

void kc_side_by_side(void (*a)(void *ctx), void *a_ctx, void (*b)(void *ctx), void *b_ctx)
{
	struct beside other = { b, b_ctx };
	pthread_t t;
	bool threaded = pthread_create(&t, NULL, run_beside, &other) == 0;

	a(a_ctx);
	if (threaded)
		pthread_join(t, NULL);
	else
		b(b_ctx);
}

struct half {
	void (*fn)(void *ctx, size_t from, size_t to);
	void *ctx;
	size_t from, to;
};

static void run_half(void *arg)
{
	struct half *h = arg;

	h->fn(h->ctx, h->from, h->to);
}

void kc_halves(size_t n, size_t min, void (*fn)(void *ctx, size_t from, size_t to), void *ctx)
{
	struct half first = { fn, ctx, 0, n / 2 }, second = { fn, ctx, n / 2, n };

	if (n < min || n < 2)
		fn(ctx, 0, n);
	else
		kc_side_by_side(run_half, &first, run_half, &second);
}

unsigned long long kc_proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	int fd;
	ssize_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* The line comes whole in one read (a seq_file); refresh reads one per
	 * open session, so the read that would only see its end is spared. */
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0 && buf[n - 1] != '\n') {
		ssize_t more = kc_read_all(fd, buf + n, sizeof(buf) - 1 - (size_t)n);

		n = more < 0 ? more : n + more;
	}
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may contain spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* Fields after the name start at 3 (state); starttime is field 22. */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

long long kc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

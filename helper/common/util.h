/* Small shared pieces of the helper: error messages, growable buffers that can
 * hold secrets, durations, hashing and safe reads of root-owned files. */
#ifndef KC_UTIL_H
#define KC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define KC_ERR_MAX 1024

/* Where a value came from in a file, for messages (1-based; 0: unknown). */
struct kc_mark {
	unsigned line, col;
};

/* What a call found other than a value (an fd, a count: >= 0). Each name
 * means one thing everywhere. */
enum {
	KC_FAILED = -1, /* an error; err says what */
	KC_ABSENT = -2, /* it does not exist (and was not to be made) */
	KC_UNKNOWN = -3, /* the source could not answer (a directory service down): conclude nothing */
};

/* One error message travels up with a -1 return; the outermost caller prints it. */
struct kc_err {
	char msg[KC_ERR_MAX];
};

/* Arguments may point into err->msg itself. */
void kc_seterr(struct kc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable byte buffer, always NUL-terminated. A secret buffer is wiped on
 * every reallocation and on kc_buf_free(). */
struct kc_buf {
	char *data;
	size_t len;
	size_t cap;
	bool secret;
};

int kc_buf_append(struct kc_buf *b, const void *data, size_t len);
int kc_buf_puts(struct kc_buf *b, const char *s);
int kc_buf_printf(struct kc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kc_buf_free(struct kc_buf *b);

/* Free a string after wiping it; for tokens and keys. */
void kc_free_secret(char *s);

static inline void kc_freep(void *p)
{
	free(*(void **)p);
}
#define kc_autofree __attribute__((cleanup(kc_freep)))

static inline void kc_buf_freep(struct kc_buf *b)
{
	kc_buf_free(b);
}
#define kc_autobuf __attribute__((cleanup(kc_buf_freep)))

static inline void kc_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define kc_autoclose __attribute__((cleanup(kc_closep)))

/* "8h", "90m", "1h30m", "45s", "2s" -> seconds. 0 on success. */
int kc_parse_duration(const char *s, long *seconds);
/* "20%" -> 20. */
int kc_parse_percent(const char *s, int *percent);
/* Seconds -> "8h", "1h30m", "45s" (into buf). */
void kc_format_duration(long seconds, char *buf, size_t len);
/* UTC time -> RFC 3339 "2026-11-29T08:00:00Z". */
void kc_format_time(time_t t, char *buf, size_t len);
/* RFC 3339 with Z or numeric offset -> time_t. 0 on success. */
int kc_parse_time(const char *s, time_t *t);

/* Lowercase hex SHA-256 of data (65 bytes with NUL). */
void kc_sha256_hex(const void *data, size_t len, char out[65]);

/* Base64: std with padding, or url-safe without. Caller frees the result. */
char *kc_base64_encode(const void *data, size_t len, bool url);
/* The value of one digit of base64's standard alphabet (RFC 4648 4), or -1. */
int kc_base64_digit(int c);
/* Decodes standard base64 (whitespace ignored). Caller frees *out. */
int kc_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

#define KC_CREDENTIAL_MAX (64u << 10) /* a credential file: a token, a key, a certificate */

/* Waits until fd is ready for events (POLLIN, POLLOUT) or deadline_ms (the
 * kc_now_ms() clock) comes. 0 ready, -1 not in time. */
int kc_wait_fd(int fd, short events, long long deadline_ms);
/* Writes all of buf to fd, retrying on EINTR and short writes. With a deadline
 * (0: none) it never waits past it: root writing to a pipe of a process the
 * user can stop gives that fd O_NONBLOCK and a deadline. 0 / -1. */
int kc_write_all(int fd, const void *buf, size_t len, long long deadline_ms);
/* Reads exactly len bytes, the same way; an early end of file is -1. */
int kc_read_exact(int fd, void *buf, size_t len, long long deadline_ms);
/* Reads up to max bytes until EOF. Returns bytes read or -1. */
ssize_t kc_read_all(int fd, void *buf, size_t max);

/* a(a_ctx) here and b(b_ctx) on a thread of its own, side by side; both done
 * on return (a thread that cannot be started leaves b to this one, after a).
 * They must share nothing but what they only read. */
void kc_side_by_side(void (*a)(void *ctx), void *a_ctx, void (*b)(void *ctx), void *b_ctx);
/* fn(ctx, from, to) over [0, n): with at least min items, in two halves side
 * by side (kc_side_by_side). */
void kc_halves(size_t n, size_t min, void (*fn)(void *ctx, size_t from, size_t to), void *ctx);
/* The current boot id from /proc (36 chars + NUL), "" if unknown. */
void kc_boot_id(char out[64]);
/* Start time of a process in clock ticks since boot, 0 if it does not exist. */
unsigned long long kc_proc_start_time(pid_t pid);

/* Monotonic milliseconds. */
long long kc_now_ms(void);

#endif

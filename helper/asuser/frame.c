/* Length-prefixed fields for the writer's pipe. */
#include "asuser/frame.h"

#include <string.h>

int kc_frame_put(struct kc_buf *b, const void *data, size_t len)
{
	uint32_t n = (uint32_t)len;

	if (len > KC_FRAME_MAX)
		return -1;
	return kc_buf_append(b, &n, sizeof(n)) < 0 || kc_buf_append(b, data, len) < 0 ? -1 : 0;
}

int kc_frame_puts(struct kc_buf *b, const char *s)
{
	return kc_frame_put(b, s ? s : "", s ? strlen(s) : 0);
}

const char *kc_frame_get(struct kc_frame_reader *r, size_t *len)
{
	static const char empty[1];
	uint32_t n;
	const char *p;

	*len = 0;
	if (r->bad || r->end - r->p < (ptrdiff_t)sizeof(n)) {
		r->bad = true;
		return NULL;
	}
	memcpy(&n, r->p, sizeof(n));
	if ((size_t)(r->end - r->p) - sizeof(n) < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p + sizeof(n);
	r->p = p + n;
	*len = n;
	return n ? p : empty;
}

char *kc_frame_strdup(struct kc_frame_reader *r)
{
	size_t len;
	const char *p = kc_frame_get(r, &len);
	char *s;

	if (!p)
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

int kc_frame_send(int fd, const struct kc_buf *b, long long deadline_ms)
{
	uint32_t n = (uint32_t)b->len;

	if (b->len > KC_FRAME_MAX)
		return -1;
	return kc_write_all(fd, &n, sizeof(n), deadline_ms) < 0 ||
			       kc_write_all(fd, b->data ? b->data : "", b->len, deadline_ms) < 0
		       ? -1
		       : 0;
}

int kc_frame_recv(int fd, struct kc_buf *b, long long deadline_ms)
{
	char chunk[4096];
	uint32_t len;
	int rc = 0;

	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	if (kc_read_exact(fd, &len, sizeof(len), deadline_ms) < 0 || len > KC_FRAME_MAX)
		return -1;
	while (rc == 0 && b->len < len) {
		size_t want = len - b->len < sizeof(chunk) ? len - b->len : sizeof(chunk);

		rc = kc_read_exact(fd, chunk, want, deadline_ms) < 0 || kc_buf_append(b, chunk, want) < 0 ? -1 : 0;
	}
	explicit_bzero(chunk, sizeof(chunk));
	return rc;
}

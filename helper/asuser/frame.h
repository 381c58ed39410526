/* The pipe protocol between the root helper and the writer: messages of
 * length-prefixed fields. */
#ifndef KC_ASUSER_FRAME_H
#define KC_ASUSER_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

#define KC_FRAME_MAX (8u << 20)

int kc_frame_put(struct kc_buf *b, const void *data, size_t len);
int kc_frame_puts(struct kc_buf *b, const char *s);
struct kc_frame_reader {
	const char *p, *end;
	bool bad;
};
/* The next field's bytes (not NUL-terminated) and length, or NULL when the
 * message ends or is malformed (r->bad set). */
const char *kc_frame_get(struct kc_frame_reader *r, size_t *len);
/* The next field as a NUL-terminated copy; caller frees. NULL: malformed. */
char *kc_frame_strdup(struct kc_frame_reader *r);

/* One message on the pipe: its length (4 bytes, host order), then its bytes.
 * deadline_ms as kc_write_all()'s: the root side passes one (and keeps its
 * ends O_NONBLOCK), the writer none. recv replaces b's contents with at most
 * KC_FRAME_MAX bytes (NUL-terminated); a secret buffer stays one. 0 / -1. */
int kc_frame_send(int fd, const struct kc_buf *b, long long deadline_ms);
int kc_frame_recv(int fd, struct kc_buf *b, long long deadline_ms);

#endif

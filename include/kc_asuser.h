/* The user-side wing (helper/asuser/): everything that runs as the user. The
 * root helper forks the writer before it loads any secret; the writer drops to
 * the user for good, proves it, and then serves requests on a pipe: merge our
 * entries into the user's kubeconfig, working from directory fds and never
 * following a link. Nothing in this wing sees the helper's credentials or the
 * config; what it is told is only what the user's own file will say. `make
 * lint` fails if a file here includes anything else. */
#ifndef KC_ASUSER_H
#define KC_ASUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kc_util.h"

#define KC_FRAME_MAX (8u << 20)

/* The user, as the wing needs them (filled by the root side from passwd). */
struct kc_user {
	const char *name;
	uid_t uid;
	gid_t gid;
	const char *home;
};

/* Drops this process to the user for good (initgroups, setresgid, setresuid)
 * and proves it: ids, no root group left, no way back. Never for root. 0 / -1. */
int kc_asuser_drop(const struct kc_user *u);

/* The writer process: drops, answers "ready" on out, then serves requests from
 * in until it closes. Never returns. */
void kc_asuser_writer(const struct kc_user *u, int in, int out) __attribute__((noreturn));

/* ---- the pipe protocol: length-prefixed fields -------------------------- */

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

/* A request: "merge", then the file under the home (e.g. .kube/config-eks),
 * the other file whose names matter (.kube/config), "1" to remove the file when
 * nothing but our entries was in it and none are left, the number of entries,
 * and per entry: name, server, CA PEM, "1" for insecure, namespace, token file,
 * token ("" unless inline). The answer: status ("ok", "left", "error"),
 * "1" when the file changed, "1" when it was removed, a message, notes (one per
 * line) for the user. */
enum { KC_ENTRY_FIELDS = 7 };

#endif

/* The writer process, as the user: merges our entries into the user's
 * kubeconfig, working from directory fds and never following a link. Its root
 * side is lifecycle/writer.h. */
#ifndef KC_ASUSER_WRITER_H
#define KC_ASUSER_WRITER_H

#include "asuser/drop.h"

/* Drops, answers "ready" on out, then serves requests from in until it closes.
 * Never returns. */
void kc_asuser_writer(const struct kc_user *u, int in, int out) __attribute__((noreturn));

/* A request: "merge", then the file under the home (e.g. .kube/config-eks),
 * the other file whose names matter (.kube/config), "1" to remove the file when
 * nothing but our entries was in it and none are left, the number of entries,
 * and per entry: name, server, CA PEM, "1" for insecure, namespace, token file,
 * token ("" unless inline). The answer: status ("ok", "left", "error"),
 * "1" when the file changed, "1" when it was removed, a message, notes (one per
 * line) for the user. */
enum { KC_ENTRY_FIELDS = 7 };

#endif

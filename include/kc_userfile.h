/* The writer: a child forked before any secret is loaded, which drops to the
 * user for good and then writes or removes the user's kubeconfig from directory
 * fds (O_NOFOLLOW at every step). Root never touches the user's tree by path. */
#ifndef KC_USERFILE_H
#define KC_USERFILE_H

#include <sys/types.h>

#include "kc_mapping.h"
#include "kc_util.h"

struct kc_writer {
	pid_t pid;
	int to_child;
	int from_child;
};

/* Forks the writer for id (never root). Caller ends it with kc_writer_finish(). */
int kc_writer_start(const struct kc_identity *id, struct kc_writer *w, struct kc_err *err);

/* Writes data to HOME/relpath atomically with mode 0600, creating missing
 * directories 0700. The previous file stays intact on any failure. */
int kc_writer_write(struct kc_writer *w, const char *relpath, const struct kc_buf *data, struct kc_err *err);

/* Removes HOME/relpath if its header names host_id. Returns 0 removed or absent,
 * 1 left alone (another host's file or not ours), -1 error. */
int kc_writer_remove(struct kc_writer *w, const char *relpath, const char *host_id, struct kc_err *err);

/* Tells the writer to exit and reaps it. */
void kc_writer_finish(struct kc_writer *w);

/* Drops this process to the user for good (initgroups, setresgid, setresuid) and
 * proves it: ids, no root group left, no way back. Never for root. 0 or -1. */
int kc_drop_privileges(const struct kc_identity *id);

#endif

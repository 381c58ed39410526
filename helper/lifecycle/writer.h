/* The root side of the writer (helper/asuser/writer.c is the other): forked
 * before any secret is loaded, spoken to over two pipes, and never waited on
 * past a deadline: the user may stop or slow their own process at will, so at
 * the deadline it is killed and left for init to reap if it will not go. */
#ifndef KC_WRITER_H
#define KC_WRITER_H

#include <stdbool.h>
#include <sys/types.h>

#include "asuser/drop.h"
#include "asuser/kubeconfig_merge.h"
#include "common/util.h"

struct kc_writer {
	pid_t pid; /* -1: none */
	int to_child;
	int from_child;
	bool greeted; /* it said it runs as the user */
};

#define KC_WRITER_NONE                                      \
	{                                                   \
		.pid = -1, .to_child = -1, .from_child = -1 \
	}

/* Forks the writer for u (never root) and goes on; it drops to the user and
 * says so. kc_writer_ready(), or else the first merge, waits for that word
 * within its deadline; kc_writer_finish() ends it. open forks it first and waits before its
 * first request; close, gc and refresh fork it before loading any credential
 * but must revoke before anything of the user's may hold them up. */
int kc_writer_spawn(const struct kc_user *u, struct kc_writer *w, struct kc_err *err);
/* Waits until deadline_ms for the word that it runs as the user. 0, or -1
 * (err set; it is ended). */
int kc_writer_ready(struct kc_writer *w, long long deadline_ms, struct kc_err *err);

struct kc_writer_result {
	enum { KC_WRITE_OK, KC_WRITE_LEFT, KC_WRITE_ERROR } status; /* LEFT: the file was left as it was */
	bool changed;
	bool removed;
	char message[KC_ERR_MAX];
	struct kc_buf notes; /* lines for the user; caller frees */
};

/* Merges entries into HOME/relpath (others: the file whose names matter too);
 * with remove_if_empty and no entries, removes what is ours. -1 (err set) when
 * the writer did not answer by deadline_ms or is gone; it is killed then. */
int kc_writer_merge(struct kc_writer *w, const char *relpath, const char *others, bool remove_if_empty,
		    const struct kc_merge_entry *e, size_t n, long long deadline_ms, struct kc_writer_result *res,
		    struct kc_err *err);

/* Closes the pipes, kills the writer if it has not left within a moment, reaps
 * it if it can without waiting. */
void kc_writer_finish(struct kc_writer *w);
/* Tells it there is no more to do (it exits meanwhile); kc_writer_finish()
 * reaps it later. */
void kc_writer_hangup(struct kc_writer *w);

#endif

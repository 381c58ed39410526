/* The index of open sessions, for refresh to see at every run, with no verdict
 * in the way, that a session's process died without a logout (an OOM kill, a
 * kill -9, a crashed sshd). /var/lib/pam_kubeconfig/live/ (root 0700) holds
 * one empty file per open session whose name says everything refresh needs:
 *
 *   UID.PID.START.BOOT.SESSION[.cUNTIL]   (START: the process's start time
 *         in clock ticks; BOOT: the boot id's first 8 hex digits; UNTIL: the
 *         valid_before of the SSH certificate it logged in with)
 *
 * so one directory read and one /proc read per session tell which are dead.
 * open adds an entry after its record, close drops it with the record; an
 * entry is an index, not a record: the session records stay the truth, and a
 * lost entry only leaves that session to the verdicts' limit and gc. */
#ifndef KC_LIFECYCLE_LIVE_H
#define KC_LIFECYCLE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/util.h"
#include "lifecycle/state.h"

#define KC_LIVE_DIR KC_STATE_DIR "/live"

struct kc_live_entry {
	uid_t uid;
	pid_t pid;
	unsigned long long start;
	bool dead; /* its process is gone, or it is of another boot */
	time_t cert_until; /* 0: it logged in without a certificate */
	char name[160];
};

void kc_live_add(uid_t uid, const struct kc_session_record *r);
void kc_live_drop(uid_t uid, const struct kc_session_record *r);

/* Every entry, each checked against /proc, sorted by uid. Caller frees *out. */
int kc_live_read(struct kc_live_entry **out, size_t *n, struct kc_err *err);
/* A uid's entries in what kc_live_read() gave: the first, *count of them
 * (NULL, 0: none). A binary search: refresh asks it for every user. */
const struct kc_live_entry *kc_live_of(const struct kc_live_entry *e, size_t n, uid_t uid, size_t *count);
/* Removes an entry kc_live_read() found dead. */
void kc_live_remove(const char *name);

#endif

/* The root ledger: the audit trail only root writes. One JSON object a line in
 * /var/log/pam_kubeconfig/ledger.jsonl (directory root 0700 or 0750, file root
 * 0600), rotated by logrotate (delaycompress, never copytruncate):
 *   {"time":"2026-01-02T03:04:05Z","host":"H","event":"mint","user":"alice","uid":1001,
 *    "sessions":[{"id":"S","rhost":"10.0.0.7"}],"cluster":"prod","serviceaccount":"team-a/alice",
 *    "secret":"team-a/pam-kubeconfig-...","jti":"J","exp":"2026-01-02T03:19:05Z","reason":"login",...}
 * time, host and event are always there; the other keys only when known (no
 * user for a `check` mint); times are RFC 3339 UTC; more keys from the caller
 * follow. Never a token, key, signature or presigned URL.
 * Each append reopens the file (a rename by logrotate is followed) under an
 * flock on ledger.lock waited for until a deadline, closes a torn tail with a
 * newline first, writes the line with one write() (a short one is carried on,
 * so errno says why it stopped) and fsyncs it (but an entry marked unsynced):
 * a caller that gets -1 must not hand out the mint the line was for. Written here, read back
 * (with the rotations) by `audit`, lifecycle/ledger_read.h. */
#ifndef KC_LEDGER_H
#define KC_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "common/util.h"

#define KC_LEDGER_DIR "/var/log/pam_kubeconfig"
#define KC_LEDGER_NAME "ledger.jsonl"
#define KC_LEDGER_LOCK_NAME "ledger.lock"
#define KC_LEDGER_LINE_MAX (1u << 20) /* a longer line is refused by the writer, skipped by the reader */

enum kc_ledger_event {
	KC_LEDGER_MINT, /* a token for a login */
	KC_LEDGER_ROTATION, /* a token rotated for live sessions */
	KC_LEDGER_REMAP, /* a token minted anew because the mapping changed */
	KC_LEDGER_REVOKE, /* a Secret deleted: its tokens revoked */
	KC_LEDGER_REVOKE_FAILED, /* a revocation left pending */
	KC_LEDGER_CUT, /* connections cut */
	KC_LEDGER_LOCK, /* a user locked */
	KC_LEDGER_UNLOCK,
	KC_LEDGER_LOGIN,
	KC_LEDGER_LOGOUT,
	KC_LEDGER_N_EVENTS
};

/* One login session a line is about. */
struct kc_ledger_session {
	const char *id;
	const char *rhost; /* NULL: unknown */
};

/* One line. Appending: the caller's strings, NULL for what is not known.
 * Reading: pointers into the parsed line, valid during the callback only. */
struct kc_ledger_entry {
	time_t time; /* appending: 0 means now */
	const char *host; /* appending: NULL means the host name */
	enum kc_ledger_event event;
	const char *user; /* NULL: no user (a `check` mint); uid is then not written */
	uid_t uid; /* (uid_t)-1: not known, not written */
	const struct kc_ledger_session *sessions;
	size_t n_sessions;
	const char *cluster;
	const char *serviceaccount; /* NAMESPACE/NAME */
	const char *secret; /* NAMESPACE/NAME */
	const char *jti;
	time_t exp; /* the token's expiry, 0: none */
	const char *reason;
	/* Appending: more keys (an object, borrowed), none of them one of the
	 * above. Reading: the whole line's object, borrowed. */
	json_t *detail;
	/* Appending: not synced on its own (a login or logout line: the mint's
	 * or revocation's fsync that follows it into the file, or the kernel's
	 * writeback, makes it durable). */
	bool unsynced;
};

/* "mint", "revoke-failed", ...; NULL for an out-of-range value. */
const char *kc_ledger_event_name(enum kc_ledger_event ev);
/* The event a name stands for, or -1. */
int kc_ledger_event_parse(const char *name);

/* The one line an entry is written as, with its '\n', appended to out
 * (invalid UTF-8 in a value becomes '?'). 0, or -1 with err set. */
int kc_ledger_format(const struct kc_ledger_entry *e, struct kc_buf *out, struct kc_err *err);

/* Appends the entry's line to the ledger; never waits for the lock past
 * deadline_ms (kc_now_ms() clock). 0 when the line is written and synced;
 * -1 (err set, errno as the failing call left it: ENOSPC for a full disk)
 * when it may not be. A failed append leaves no partial line behind it when the
 * file can be cut back; when it cannot, the next append closes it. */
int kc_ledger_append(const struct kc_ledger_entry *e, long long deadline_ms, struct kc_err *err);

/* The directory appends go to (KC_LEDGER_DIR unless a test moved it). */
const char *kc_ledger_dir(void);

/* Tests only: the ledger in another directory (NULL: KC_LEDGER_DIR again). */
void kc_ledger_use_dir(const char *dir);

#endif

/* The records `pam-kubeconfig audit` gathers (admin/audit.h): logins, logouts
 * and who each token was minted for, from the trusted sources
 * (admin/audit_sources.c), one record per jti (audit_trail.c), and the
 * requests joined to them (audit.c). Internal to admin/audit*.c. */
#ifndef KC_ADMIN_AUDIT_TRAIL_H
#define KC_ADMIN_AUDIT_TRAIL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define LINE_MAX_BYTES (4u << 20) /* a longer line is skipped */
#define FIELD 300
#define URI_MAX 2048
#define LIST 4096

enum source { SRC_LEDGER, SRC_JOURNAL, SRC_SYSLOG };
extern const char *const kc_trail_source_name[]; /* "ledger", "journal", "syslog" */

struct login {
	char user[FIELD], uid[FIELD], session[FIELD], rhost[FIELD], service[FIELD], start[FIELD], end[FIELD];
	char host[FIELD];
};

struct logout {
	char user[FIELD], session[FIELD], time[FIELD];
};

/* Who a token was minted for, by one record. */
struct mint {
	char jti[FIELD];
	char user[FIELD];
	char host[FIELD]; /* "-": not known (a syslog line) */
	char *sessions, *rhosts; /* "ID,ID" sorted by session, and the rhosts in that order */
	enum source src;
	char where[FIELD + 32]; /* file:line */
	long conflict; /* index into the conflicts, -1: none */
};

struct request_list {
	char **req; /* one line each, as printed */
	json_t *json; /* and as objects */
	size_t n, cap;
};

/* The logins one token served, and what was done with tokens that served
 * exactly these logins. */
struct group {
	char user[FIELD];
	char sessions[LIST];
	char rhosts[LIST];
	struct request_list r;
};

/* One jti recorded for two users or two hosts. */
struct conflict {
	char jti[FIELD];
	struct mint a, b; /* sessions and rhosts not owned */
	struct request_list r;
};

struct trail {
	struct login *logins;
	size_t n_logins, cap_logins;
	struct logout *logouts;
	size_t n_logouts, cap_logouts;
	struct mint *mints;
	size_t n_mints, cap_mints;
	struct group *groups;
	size_t n_groups, cap_groups;
	struct conflict *conflicts;
	size_t n_conflicts, cap_conflicts;
	size_t unmatched;
	const char *file; /* the source being read, for where */
	size_t lineno;
	enum source src;
	char host[FIELD]; /* of the entry being read ("-": not known) */
	json_t *sources; /* what was read and trusted, for --output json */
};

/* As one word: printable, no spaces or commas ('?' instead), '-' when empty. */
void kc_trail_clean(const char *in, char *out, size_t len);
/* Room for one more of *items (n held, *cap allotted). 0, or -1 out of memory. */
int kc_trail_grow(void *items, size_t *cap, size_t n, size_t size);
/* A session list and the rhosts beside it, sorted by session: one set of
 * logins reads the same whatever the order it was said in. */
void kc_trail_sorted_lists(const char *sessions, const char *rhosts, char *s_out, char *r_out, size_t len);

/* Records, from whichever source t->src, t->file, t->lineno and t->host say
 * is being read. Each 0, or -1 out of memory. */
int kc_trail_add_login(struct trail *t, const char *user, const char *uid, const char *session, const char *rhost,
		       const char *service, const char *start);
int kc_trail_add_logout(struct trail *t, const char *user, const char *session, const char *when);
/* sessions, rhosts: comma-separated, in the same order ("-" or "": none). A
 * record without a jti has nothing to join on and is not kept. */
int kc_trail_add_mint(struct trail *t, const char *jti, const char *user, const char *sessions, const char *rhosts);
/* One syslog audit line (lifecycle/auditlog.h): login, logout or mint. */
int kc_trail_add_line(struct trail *t, const char *msg);

/* Once every source is read: each jti once, its agreeing records joined, two
 * that name different users or hosts a conflict (t->mints sorted by jti). */
int kc_trail_merge_mints(struct trail *t);
int kc_trail_by_jti(const void *a, const void *b);
/* Each (user, session) once, sorted, with its end from the logouts. */
void kc_trail_settle_logins(struct trail *t);
struct login *kc_trail_find_login(struct trail *t, const char *user, const char *session);
bool kc_trail_in_list(const char *list, const char *item);
void kc_trail_free(struct trail *t);

/* The sources (admin/audit_sources.c): each says on stderr what it trusted,
 * and adds what it read to t->sources. 0, or -1 (said on stderr). */
int kc_audit_read_ledger(struct trail *t, const char *path);
/* exe: the _EXE an entry must name, beside _UID=0. */
int kc_audit_read_journal(struct trail *t, const char *path, const char *exe);
int kc_audit_read_syslog(struct trail *t, const char *path);

#endif

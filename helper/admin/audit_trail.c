/* The records of `pam-kubeconfig audit` (see admin/audit_trail.h): added
 * from any source, one per jti, the logins settled. */
#include "admin/audit_trail.h"
#include "admin/audit.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

const char *const kc_trail_source_name[] = { "ledger", "journal", "syslog" };

/* ---- the lines of lifecycle/auditlog.h -------------------------------------------------- */

enum kc_audit_kind kc_audit_line_kind(const char *msg)
{
	static const struct {
		const char *word;
		enum kc_audit_kind kind;
	} kinds[] = { { "login ", KC_AUDIT_LOGIN },
		      { "logout ", KC_AUDIT_LOGOUT },
		      { "mint ", KC_AUDIT_MINT },
		      { "revoke ", KC_AUDIT_REVOKE } };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(msg, kinds[i].word, strlen(kinds[i].word)) == 0)
			return kinds[i].kind;
	return KC_AUDIT_NONE;
}

bool kc_audit_line_value(const char *msg, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = strchr(msg, ' '); p; p = strchr(p, ' ')) {
		p++;
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " \r\n");

			if (len == 0 || n >= len)
				return false;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

/* As one word: printable, no spaces or commas ('?' instead), '-' when empty. */
void kc_trail_clean(const char *in, char *out, size_t len)
{
	size_t n = 0;

	if (!in || !*in) {
		snprintf(out, len, "-");
		return;
	}
	for (; in[n] && n + 1 < len; n++)
		out[n] = (unsigned char)in[n] > ' ' && (unsigned char)in[n] < 0x7f && in[n] != ',' ? in[n] : '?';
	out[n] = '\0';
}

int kc_trail_grow(void *items, size_t *cap, size_t n, size_t size)
{
	void **p = items;
	void *more;
	size_t want;

	if (n < *cap)
		return 0;
	want = *cap ? *cap * 2 : 16;
	more = realloc(*p, want * size);
	if (!more)
		return -1;
	*p = more;
	*cap = want;
	return 0;
}

static void value(const char *msg, const char *key, char *out, size_t len)
{
	if (!kc_audit_line_value(msg, key, out, len))
		snprintf(out, len, "-");
}

/* ---- records, from any source ------------------------------------------------------ */

struct pair {
	char *session, *rhost;
};

static int by_pair_session(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->session, ((const struct pair *)b)->session);
}

/* The session list (and the rhosts beside it) in one order, so the same set of
 * logins is one group. */
void kc_trail_sorted_lists(const char *sessions, const char *rhosts, char *s_out, char *r_out, size_t len)
{
	char s_copy[LIST], r_copy[LIST], *s_save = NULL, *r_save = NULL;
	struct pair items[512] = { { NULL, NULL } };
	size_t n = 0, s_off = 0, r_off = 0;
	char *s, *r;

	snprintf(s_copy, sizeof(s_copy), "%s", sessions);
	snprintf(r_copy, sizeof(r_copy), "%s", rhosts);
	s = strtok_r(s_copy, ",", &s_save);
	r = strtok_r(r_copy, ",", &r_save);
	for (; s && n < 512; s = strtok_r(NULL, ",", &s_save), r = r ? strtok_r(NULL, ",", &r_save) : NULL)
		items[n++] = (struct pair){ s, r ? r : (char *)"-" };
	qsort(items, n, sizeof(items[0]), by_pair_session);
	s_out[0] = r_out[0] = '\0';
	for (size_t i = 0; i < n && s_off < len && r_off < len; i++) {
		s_off += (size_t)snprintf(s_out + s_off, len - s_off, "%s%s", i ? "," : "", items[i].session);
		r_off += (size_t)snprintf(r_out + r_off, len - r_off, "%s%s", i ? "," : "", items[i].rhost);
	}
}

int kc_trail_add_login(struct trail *t, const char *user, const char *uid, const char *session, const char *rhost,
		       const char *service, const char *start)
{
	struct login *l;

	if (kc_trail_grow(&t->logins, &t->cap_logins, t->n_logins, sizeof(*t->logins)) < 0)
		return -1;
	l = &t->logins[t->n_logins++];
	kc_trail_clean(user, l->user, sizeof(l->user));
	kc_trail_clean(uid, l->uid, sizeof(l->uid));
	kc_trail_clean(session, l->session, sizeof(l->session));
	kc_trail_clean(rhost, l->rhost, sizeof(l->rhost));
	kc_trail_clean(service, l->service, sizeof(l->service));
	kc_trail_clean(start, l->start, sizeof(l->start));
	kc_trail_clean(t->host, l->host, sizeof(l->host));
	snprintf(l->end, sizeof(l->end), "-");
	return 0;
}

int kc_trail_add_logout(struct trail *t, const char *user, const char *session, const char *when)
{
	struct logout *o;

	if (kc_trail_grow(&t->logouts, &t->cap_logouts, t->n_logouts, sizeof(*t->logouts)) < 0)
		return -1;
	o = &t->logouts[t->n_logouts++];
	kc_trail_clean(user, o->user, sizeof(o->user));
	kc_trail_clean(session, o->session, sizeof(o->session));
	kc_trail_clean(when, o->time, sizeof(o->time));
	return 0;
}

/* sessions, rhosts: comma-separated, in the same order ("-" or "": none). */
int kc_trail_add_mint(struct trail *t, const char *jti, const char *user, const char *sessions, const char *rhosts)
{
	char sorted[LIST], sorted_rhosts[LIST];
	struct mint *m;

	if (!jti || !*jti || strcmp(jti, "-") == 0)
		return 0; /* nothing to join on */
	kc_trail_sorted_lists(strcmp(sessions, "-") == 0 ? "" : sessions, rhosts, sorted, sorted_rhosts,
			      sizeof(sorted));
	if (kc_trail_grow(&t->mints, &t->cap_mints, t->n_mints, sizeof(*t->mints)) < 0)
		return -1;
	m = &t->mints[t->n_mints];
	memset(m, 0, sizeof(*m));
	kc_trail_clean(jti, m->jti, sizeof(m->jti));
	kc_trail_clean(user, m->user, sizeof(m->user));
	kc_trail_clean(t->host, m->host, sizeof(m->host));
	m->src = t->src;
	m->conflict = -1;
	snprintf(m->where, sizeof(m->where), "%s:%zu", t->file, t->lineno);
	m->sessions = strdup(*sorted ? sorted : "-");
	m->rhosts = strdup(*sorted ? sorted_rhosts : "-");
	if (!m->sessions || !m->rhosts) {
		free(m->sessions);
		free(m->rhosts);
		return -1;
	}
	t->n_mints++;
	return 0;
}

/* One syslog audit line (lifecycle/auditlog.h), from the journal or trusted syslog. */
int kc_trail_add_line(struct trail *t, const char *msg)
{
	char a[FIELD], b[FIELD], c[FIELD], d[FIELD], e[FIELD], f[FIELD], s[LIST], r[LIST];

	switch (kc_audit_line_kind(msg)) {
	case KC_AUDIT_LOGIN:
		value(msg, "user", a, sizeof(a));
		value(msg, "uid", b, sizeof(b));
		value(msg, "session", c, sizeof(c));
		value(msg, "rhost", d, sizeof(d));
		value(msg, "service", e, sizeof(e));
		value(msg, "time", f, sizeof(f));
		return kc_trail_add_login(t, a, b, c, d, e, f);
	case KC_AUDIT_LOGOUT:
		value(msg, "user", a, sizeof(a));
		value(msg, "session", b, sizeof(b));
		value(msg, "time", c, sizeof(c));
		return kc_trail_add_logout(t, a, b, c);
	case KC_AUDIT_MINT:
		value(msg, "jti", a, sizeof(a));
		value(msg, "user", b, sizeof(b));
		value(msg, "sessions", s, sizeof(s));
		value(msg, "rhosts", r, sizeof(r));
		return kc_trail_add_mint(t, a, b, s, r);
	default: return 0;
	}
}

/* ---- one record per jti ----------------------------------------------------------- */

int kc_trail_by_jti(const void *a, const void *b)
{
	return strcmp(((const struct mint *)a)->jti, ((const struct mint *)b)->jti);
}

static bool differ(const char *a, const char *b)
{
	return strcmp(a, "-") != 0 && strcmp(b, "-") != 0 && strcmp(a, b) != 0;
}

/* keep's session list gains other's (a token that served several sessions,
 * said by several sources). */
static int union_sessions(struct mint *keep, const struct mint *other)
{
	kc_autobuf struct kc_buf s = { 0 }, r = { 0 };
	char sorted[LIST], sorted_rhosts[LIST];
	char copy[LIST], *save = NULL;
	const char *rh = other->rhosts;

	if (strcmp(other->sessions, "-") == 0)
		return 0;
	kc_buf_puts(&s, strcmp(keep->sessions, "-") == 0 ? "" : keep->sessions);
	kc_buf_puts(&r, strcmp(keep->sessions, "-") == 0 ? "" : keep->rhosts);
	snprintf(copy, sizeof(copy), "%s", other->sessions);
	for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
		size_t hl = rh ? strcspn(rh, ",") : 0;
		char one[LIST];
		bool seen = false;

		snprintf(one, sizeof(one), ",%s,", s.data ? s.data : "");
		{
			char needle[FIELD + 2];

			snprintf(needle, sizeof(needle), ",%s,", id);
			seen = strstr(one, needle) != NULL;
		}
		if (!seen) {
			kc_buf_printf(&s, "%s%s", s.len ? "," : "", id);
			kc_buf_printf(&r, "%s%.*s", r.len ? "," : "", (int)(hl ? hl : 1), hl ? rh : "-");
		}
		rh = rh && rh[hl] == ',' ? rh + hl + 1 : NULL;
	}
	kc_trail_sorted_lists(s.data ? s.data : "", r.data ? r.data : "", sorted, sorted_rhosts, sizeof(sorted));
	free(keep->sessions);
	free(keep->rhosts);
	keep->sessions = strdup(*sorted ? sorted : "-");
	keep->rhosts = strdup(*sorted ? sorted_rhosts : "-");
	return keep->sessions && keep->rhosts ? 0 : -1;
}

/* Sorted by jti, each jti once: the records that agree are one (their
 * sessions joined), two that name different users or hosts a conflict. */
int kc_trail_merge_mints(struct trail *t)
{
	size_t out = 0;

	if (t->n_mints)
		qsort(t->mints, t->n_mints, sizeof(*t->mints), kc_trail_by_jti);
	for (size_t i = 0; i < t->n_mints; i++) {
		struct mint *keep = out ? &t->mints[out - 1] : NULL, *m = &t->mints[i];

		if (!keep || strcmp(keep->jti, m->jti) != 0) {
			t->mints[out++] = *m;
			continue;
		}
		if (keep->conflict < 0 && (differ(keep->user, m->user) || differ(keep->host, m->host))) {
			struct conflict *c;

			if (kc_trail_grow(&t->conflicts, &t->cap_conflicts, t->n_conflicts, sizeof(*t->conflicts)) < 0)
				return -1;
			c = &t->conflicts[t->n_conflicts];
			memset(c, 0, sizeof(*c));
			snprintf(c->jti, sizeof(c->jti), "%s", m->jti);
			c->a = *keep;
			c->b = *m;
			c->a.sessions = c->a.rhosts = c->b.sessions = c->b.rhosts = NULL;
			keep->conflict = (long)t->n_conflicts++;
		} else if (keep->conflict < 0 && union_sessions(keep, m) < 0) {
			return -1;
		}
		if (strcmp(keep->user, "-") == 0)
			memcpy(keep->user, m->user, sizeof(keep->user));
		if (strcmp(keep->host, "-") == 0)
			memcpy(keep->host, m->host, sizeof(keep->host));
		free(m->sessions);
		free(m->rhosts);
	}
	t->n_mints = out;
	return 0;
}

/* ---- logins -------------------------------------------------------------------- */

static int by_session(const void *a, const void *b)
{
	const struct login *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c ? c : strcmp(x->session, y->session);
}

struct login *kc_trail_find_login(struct trail *t, const char *user, const char *session)
{
	struct login key = { 0 };

	snprintf(key.user, sizeof(key.user), "%s", user);
	snprintf(key.session, sizeof(key.session), "%s", session);
	return t->n_logins ? bsearch(&key, t->logins, t->n_logins, sizeof(key), by_session) : NULL;
}

/* Sorted, each (user, session) once (the ledger and the journal may both say
 * it), with its end from the logouts. */
void kc_trail_settle_logins(struct trail *t)
{
	size_t out = 0;

	if (t->n_logins)
		qsort(t->logins, t->n_logins, sizeof(*t->logins), by_session);
	for (size_t i = 0; i < t->n_logins; i++)
		if (!out || by_session(&t->logins[out - 1], &t->logins[i]) != 0)
			t->logins[out++] = t->logins[i];
	t->n_logins = out;
	for (size_t i = 0; i < t->n_logouts; i++) {
		struct login *l = kc_trail_find_login(t, t->logouts[i].user, t->logouts[i].session);

		if (l && (strcmp(l->end, "-") == 0 || strcmp(t->logouts[i].time, l->end) < 0))
			snprintf(l->end, sizeof(l->end), "%s", t->logouts[i].time);
	}
}

bool kc_trail_in_list(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static void request_list_free(struct request_list *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->req[i]);
	free(r->req);
	json_decref(r->json);
}

void kc_trail_free(struct trail *t)
{
	for (size_t i = 0; i < t->n_groups; i++)
		request_list_free(&t->groups[i].r);
	for (size_t i = 0; i < t->n_conflicts; i++)
		request_list_free(&t->conflicts[i].r);
	for (size_t i = 0; i < t->n_mints; i++) {
		free(t->mints[i].sessions);
		free(t->mints[i].rhosts);
	}
	free(t->groups);
	free(t->conflicts);
	free(t->mints);
	free(t->logins);
	free(t->logouts);
	json_decref(t->sources);
}

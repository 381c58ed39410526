/* pam-kubeconfig audit: which Unix login made which API request. Joins the API
 * server's audit log (JSON lines) with the helper's own audit lines (syslog or
 * journal export) on the token's credential id, "JTI=<jti>". */
#include "admin/audit.h"
#include "admin/admin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lifecycle/auditlog.h"
#include "kc_protocol.h"

#define LINE_MAX_BYTES (4u << 20) /* a longer line is skipped */
#define FIELD 300
#define URI_MAX 2048

struct login {
	char user[FIELD], uid[FIELD], session[FIELD], rhost[FIELD], service[FIELD], start[FIELD], end[FIELD];
};

/* The logins one token served, and what was done with tokens that served
 * exactly these logins. */
struct group {
	char user[FIELD];
	char sessions[4096]; /* as the mint line lists them, sorted */
	char rhosts[4096];
	char **req; /* one line each, as printed */
	size_t n_req, cap_req;
};

struct mint {
	char jti[FIELD];
	char user[FIELD];
	char *sessions, *rhosts; /* as the line lists them, sorted by session */
};

struct trail {
	struct login *logins;
	size_t n_logins, cap_logins;
	struct mint *mints;
	size_t n_mints, cap_mints;
	struct group *groups;
	size_t n_groups, cap_groups;
	size_t unmatched;
};

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

/* What the report prints from the API server's log, as one word: printable,
 * no spaces ('?' instead), '-' when empty. */
static void clean(const char *in, char *out, size_t len)
{
	size_t n = 0;

	if (!in || !*in) {
		snprintf(out, len, "-");
		return;
	}
	for (; in[n] && n + 1 < len; n++)
		out[n] = (unsigned char)in[n] > ' ' && (unsigned char)in[n] < 0x7f ? in[n] : '?';
	out[n] = '\0';
}

static int grow(void *items, size_t *cap, size_t n, size_t size)
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

/* ---- the mint log ------------------------------------------------------------- */

static int by_session(const void *a, const void *b)
{
	const struct login *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c ? c : strcmp(x->session, y->session);
}

static struct login *find_login(struct trail *t, const char *user, const char *session)
{
	struct login key = { 0 };

	snprintf(key.user, sizeof(key.user), "%s", user);
	snprintf(key.session, sizeof(key.session), "%s", session);
	return t->n_logins ? bsearch(&key, t->logins, t->n_logins, sizeof(key), by_session) : NULL;
}

struct pair {
	char *session, *rhost;
};

static int by_pair_session(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->session, ((const struct pair *)b)->session);
}

/* The session list (and the rhosts beside it) in one order, so the same set of
 * logins is one group. */
static void sorted_lists(const char *sessions, const char *rhosts, char *s_out, char *r_out, size_t len)
{
	char s_copy[4096], r_copy[4096], *s_save = NULL, *r_save = NULL;
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

static int add_mint(struct trail *t, const char *msg)
{
	char sessions[4096], rhosts[4096], sorted[4096], sorted_rhosts[4096];
	struct mint *m;

	value(msg, "sessions", sessions, sizeof(sessions));
	value(msg, "rhosts", rhosts, sizeof(rhosts));
	sorted_lists(sessions, rhosts, sorted, sorted_rhosts, sizeof(sorted));
	if (grow(&t->mints, &t->cap_mints, t->n_mints, sizeof(*t->mints)) < 0)
		return -1;
	m = &t->mints[t->n_mints];
	value(msg, "jti", m->jti, sizeof(m->jti));
	value(msg, "user", m->user, sizeof(m->user));
	m->sessions = strdup(sorted);
	m->rhosts = strdup(sorted_rhosts);
	if (!m->sessions || !m->rhosts) {
		free(m->sessions);
		free(m->rhosts);
		return -1;
	}
	t->n_mints++;
	return 0;
}

static size_t find_group(struct trail *t, const char *user, const char *sessions, const char *rhosts)
{
	size_t g;

	for (g = 0; g < t->n_groups; g++)
		if (strcmp(t->groups[g].user, user) == 0 && strcmp(t->groups[g].sessions, sessions) == 0)
			return g;
	if (grow(&t->groups, &t->cap_groups, t->n_groups, sizeof(*t->groups)) < 0)
		return (size_t)-1;
	memset(&t->groups[g], 0, sizeof(t->groups[g]));
	snprintf(t->groups[g].user, sizeof(t->groups[g].user), "%s", user);
	snprintf(t->groups[g].sessions, sizeof(t->groups[g].sessions), "%s", sessions);
	snprintf(t->groups[g].rhosts, sizeof(t->groups[g].rhosts), "%s", rhosts);
	t->n_groups++;
	return g;
}

/* Was the login open at this time? Times compare as RFC 3339 text, to the
 * second (the login lines have no more): a request in the second a login
 * starts or ends counts for it. */
static bool live_at(const struct login *l, const char *when)
{
	if (strcmp(l->start, "-") == 0 || strcmp(when, "-") == 0)
		return false;
	return strncmp(l->start, when, 19) <= 0 && (strcmp(l->end, "-") == 0 || strncmp(when, l->end, 19) <= 0);
}

static bool in_list(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* The logins a request with m's token may have come from: those its mint line
 * names, and every other login of that user open at the time (the token file
 * is the user's, so a login opened after the mint reads the same token). */
static size_t attribute(struct trail *t, const struct mint *m, const char *when)
{
	kc_autobuf struct kc_buf sessions = { 0 }, rhosts = { 0 };
	char sorted[4096], sorted_rhosts[4096];
	size_t first = 0;

	kc_buf_puts(&sessions, strcmp(m->sessions, "-") == 0 ? "" : m->sessions);
	kc_buf_puts(&rhosts, strcmp(m->sessions, "-") == 0 ? "" : m->rhosts);
	/* The user's logins are together in the sorted array. */
	while (first < t->n_logins && strcmp(t->logins[first].user, m->user) < 0)
		first++;
	for (size_t i = first; i < t->n_logins && strcmp(t->logins[i].user, m->user) == 0; i++) {
		const struct login *l = &t->logins[i];

		if (!live_at(l, when) || in_list(sessions.data, l->session))
			continue;
		kc_buf_printf(&sessions, "%s%s", sessions.len ? "," : "", l->session);
		kc_buf_printf(&rhosts, "%s%s", rhosts.len ? "," : "", l->rhost);
	}
	if (!sessions.len)
		return find_group(t, m->user, "-", "-");
	sorted_lists(sessions.data, rhosts.data, sorted, sorted_rhosts, sizeof(sorted));
	return find_group(t, m->user, sorted, sorted_rhosts);
}

static int add_login(struct trail *t, const char *msg)
{
	struct login *l;

	if (grow(&t->logins, &t->cap_logins, t->n_logins, sizeof(*t->logins)) < 0)
		return -1;
	l = &t->logins[t->n_logins++];
	value(msg, "user", l->user, sizeof(l->user));
	value(msg, "uid", l->uid, sizeof(l->uid));
	value(msg, "session", l->session, sizeof(l->session));
	value(msg, "rhost", l->rhost, sizeof(l->rhost));
	value(msg, "service", l->service, sizeof(l->service));
	value(msg, "time", l->start, sizeof(l->start));
	snprintf(l->end, sizeof(l->end), "-");
	return 0;
}

/* The audit line inside one line of the log: a raw syslog datagram, a syslog
 * file line ("... pam-kubeconfig[PID]: MSG"), journalctl -o export
 * ("MESSAGE=MSG"), -o json ({"MESSAGE": "MSG", ...}) or -o cat (MSG alone). */
static const char *message_of(const char *line, json_t **json)
{
	const char *p;

	*json = NULL;
	if (line[0] == '{') {
		json_t *m, *tag;

		*json = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		m = json_object_get(*json, "MESSAGE");
		tag = json_object_get(*json, "SYSLOG_IDENTIFIER");
		if (!json_is_string(m) ||
		    (tag && (!json_is_string(tag) || strcmp(json_string_value(tag), KC_AUDIT_TAG) != 0)))
			return NULL;
		return json_string_value(m);
	}
	if (strncmp(line, "MESSAGE=", 8) == 0)
		return line + 8;
	if ((p = strstr(line, KC_AUDIT_TAG "[")) && (p = strstr(p, "]: ")))
		return p + 3;
	if ((p = strstr(line, KC_AUDIT_TAG ": ")))
		return p + strlen(KC_AUDIT_TAG) + 2;
	return line;
}

static int read_mint_log(FILE *f, struct trail *t)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	/* Logins and logouts first: a mint refers to them. */
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		json_t *json;
		const char *msg;

		if ((size_t)n > LINE_MAX_BYTES)
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		msg = message_of(line, &json);
		if (msg && kc_audit_line_kind(msg) == KC_AUDIT_LOGIN)
			rc = add_login(t, msg);
		else if (msg && kc_audit_line_kind(msg) == KC_AUDIT_MINT)
			rc = add_mint(t, msg);
		json_decref(json);
	}
	if (t->n_logins)
		qsort(t->logins, t->n_logins, sizeof(*t->logins), by_session);
	rewind(f);
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		json_t *json;
		const char *msg;
		char user[FIELD], session[FIELD];
		struct login *l;

		if ((size_t)n > LINE_MAX_BYTES)
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		msg = message_of(line, &json);
		if (msg && kc_audit_line_kind(msg) == KC_AUDIT_LOGOUT) {
			value(msg, "user", user, sizeof(user));
			value(msg, "session", session, sizeof(session));
			if ((l = find_login(t, user, session)))
				value(msg, "time", l->end, sizeof(l->end));
		}
		json_decref(json);
	}
	free(line);
	return rc;
}

/* ---- the API server's audit log ------------------------------------------------ */

static int by_jti(const void *a, const void *b)
{
	return strcmp(((const struct mint *)a)->jti, ((const struct mint *)b)->jti);
}

static const char *str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

static int add_event(struct trail *t, json_t *ev)
{
	json_t *user = json_object_get(ev, "user");
	json_t *ids = json_object_get(json_object_get(user, "extra"), "authentication.kubernetes.io/credential-id");
	const char *id = json_string_value(json_array_get(ids, 0));
	const char *stage = str_at(ev, "stage");
	struct mint key = { "", "", NULL, NULL }, *m;
	struct group *g;
	size_t gi;
	char when[FIELD], verb[FIELD], uri[URI_MAX], as[FIELD], line[URI_MAX + 5 * FIELD];
	const char *at = str_at(ev, "requestReceivedTimestamp");

	/* One line per request: the last stage of it. */
	if (!id || strncmp(id, "JTI=", 4) != 0 ||
	    (*stage && strcmp(stage, "ResponseComplete") != 0 && strcmp(stage, "Panic") != 0))
		return 0;
	snprintf(key.jti, sizeof(key.jti), "%s", id + 4);
	m = t->n_mints ? bsearch(&key, t->mints, t->n_mints, sizeof(key), by_jti) : NULL;
	if (!m) {
		t->unmatched++;
		return 0;
	}
	clean(*at ? at : str_at(ev, "stageTimestamp"), when, sizeof(when));
	if ((gi = attribute(t, m, when)) == (size_t)-1)
		return -1;
	g = &t->groups[gi];
	if (grow(&g->req, &g->cap_req, g->n_req, sizeof(*g->req)) < 0)
		return -1;
	clean(str_at(ev, "verb"), verb, sizeof(verb));
	clean(str_at(ev, "requestURI"), uri, sizeof(uri));
	clean(str_at(user, "username"), as, sizeof(as));
	snprintf(line, sizeof(line), "  request time=%s verb=%s code=%lld uri=%s as=%s jti=%s", when, verb,
		 (long long)json_integer_value(json_object_get(json_object_get(ev, "responseStatus"), "code")), uri, as,
		 m->jti);
	if (!(g->req[g->n_req] = strdup(line)))
		return -1;
	g->n_req++;
	return 0;
}

/* One audit event per line, as kube-apiserver's log backend writes them and
 * EKS ships them to CloudWatch; a line that wraps one in {"message": "..."} (a
 * CloudWatch export) is unwrapped. */
static int read_audit_log(FILE *f, struct trail *t)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (t->n_mints)
		qsort(t->mints, t->n_mints, sizeof(*t->mints), by_jti);
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		json_t *ev, *inner = NULL;

		if ((size_t)n > LINE_MAX_BYTES || line[0] != '{')
			continue;
		ev = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		if (ev && !json_object_get(ev, "kind") && json_is_string(json_object_get(ev, "message")))
			inner = json_loads(str_at(ev, "message"), JSON_REJECT_DUPLICATES, NULL);
		if (inner || ev)
			rc = add_event(t, inner ? inner : ev);
		json_decref(inner);
		json_decref(ev);
	}
	free(line);
	return rc;
}

/* ---- the report ------------------------------------------------------------------- */

static void print_login(struct trail *t, const struct group *g, const char *session, size_t index)
{
	const struct login *l = find_login(t, g->user, session);
	char rhost[FIELD] = "-";
	const char *p = g->rhosts;

	/* The mint line's rhost at the same position, when the login line is gone. */
	for (size_t i = 0; p && i < index; i++)
		if ((p = strchr(p, ',')))
			p++;
	if (p)
		snprintf(rhost, sizeof(rhost), "%.*s", (int)strcspn(p, ","), p);
	if (l)
		printf("login user=%s uid=%s session=%s rhost=%s service=%s start=%s end=%s\n", l->user, l->uid,
		       l->session, l->rhost, l->service, l->start, l->end);
	else
		printf("login user=%s uid=- session=%s rhost=%s service=- start=- end=-\n", g->user, session, rhost);
}

static void print_report(struct trail *t)
{
	for (size_t i = 0; i < t->n_groups; i++) {
		const struct group *g = &t->groups[i];
		char copy[4096], *save = NULL;
		size_t k = 0;

		if (!g->n_req)
			continue;
		if (strcmp(g->sessions, "-") == 0) {
			printf("no login: tokens minted without a session (check --online)\n");
		} else {
			snprintf(copy, sizeof(copy), "%s", g->sessions);
			for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
				print_login(t, g, s, k++);
		}
		for (size_t r = 0; r < g->n_req; r++)
			printf("%s\n", g->req[r]);
		printf("\n");
	}
	/* Logins none of whose tokens made a request. */
	for (size_t i = 0; i < t->n_logins; i++) {
		const struct login *l = &t->logins[i];
		bool shown = false;

		for (size_t g = 0; g < t->n_groups && !shown; g++) {
			char copy[4096], *save = NULL;

			if (!t->groups[g].n_req || strcmp(t->groups[g].user, l->user) != 0)
				continue;
			snprintf(copy, sizeof(copy), "%s", t->groups[g].sessions);
			for (char *s = strtok_r(copy, ",", &save); s && !shown; s = strtok_r(NULL, ",", &save))
				shown = strcmp(s, l->session) == 0;
		}
		if (!shown)
			printf("login user=%s uid=%s session=%s rhost=%s service=%s start=%s end=%s\n  (no "
			       "requests)\n\n",
			       l->user, l->uid, l->session, l->rhost, l->service, l->start, l->end);
	}
}

int kc_cmd_audit(const char *audit_log, const char *mint_log)
{
	struct trail t = { 0 };
	FILE *mints = fopen(mint_log, "re"), *events = NULL;
	int rc = KC_EXIT_ERROR;

	if (!mints) {
		fprintf(stderr, "pam-kubeconfig: cannot read the mint log %s: %s\n", mint_log, strerror(errno));
		return KC_EXIT_USAGE;
	}
	events = fopen(audit_log, "re");
	if (!events) {
		fprintf(stderr, "pam-kubeconfig: cannot read the audit log %s: %s\n", audit_log, strerror(errno));
		fclose(mints);
		return KC_EXIT_USAGE;
	}
	if (read_mint_log(mints, &t) < 0 || read_audit_log(events, &t) < 0) {
		fprintf(stderr, "pam-kubeconfig: out of memory\n");
		goto out;
	}
	print_report(&t);
	if (t.unmatched)
		fprintf(stderr,
			"pam-kubeconfig: %zu requests used tokens that no mint line of %s names (other clients, or "
			"mints older than that log)\n",
			t.unmatched, mint_log);
	rc = KC_EXIT_OK;
out:
	for (size_t i = 0; i < t.n_groups; i++) {
		for (size_t r = 0; r < t.groups[i].n_req; r++)
			free(t.groups[i].req[r]);
		free(t.groups[i].req);
	}
	free(t.groups);
	for (size_t i = 0; i < t.n_mints; i++) {
		free(t.mints[i].sessions);
		free(t.mints[i].rhosts);
	}
	free(t.mints);
	free(t.logins);
	fclose(mints);
	fclose(events);
	return rc;
}

/* pam-kubeconfig audit: which Unix login made which API request (see
 * admin/audit.h). The records of who got which token come from trusted
 * sources only; the API server's audit log is joined with them on the token's
 * credential id, "JTI=<jti>". */
#include "admin/audit.h"
#include "admin/admin.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/audit_trail.h"
#include "common/json_alloc.h"
#include "lifecycle/auditlog.h"
#include "kc_protocol.h"

static size_t find_group(struct trail *t, const char *user, const char *sessions, const char *rhosts)
{
	size_t g;

	for (g = 0; g < t->n_groups; g++)
		if (strcmp(t->groups[g].user, user) == 0 && strcmp(t->groups[g].sessions, sessions) == 0)
			return g;
	if (kc_trail_grow(&t->groups, &t->cap_groups, t->n_groups, sizeof(*t->groups)) < 0)
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

/* The logins a request with m's token may have come from: those its record
 * names, and every other login of that user open at the time (the token file
 * is the user's, so a login opened after the mint reads the same token). */
static size_t attribute(struct trail *t, const struct mint *m, const char *when)
{
	kc_autobuf struct kc_buf sessions = { 0 }, rhosts = { 0 };
	char sorted[LIST], sorted_rhosts[LIST];
	size_t first = 0;

	kc_buf_puts(&sessions, strcmp(m->sessions, "-") == 0 ? "" : m->sessions);
	kc_buf_puts(&rhosts, strcmp(m->sessions, "-") == 0 ? "" : m->rhosts);
	/* The user's logins are together in the sorted array. */
	while (first < t->n_logins && strcmp(t->logins[first].user, m->user) < 0)
		first++;
	for (size_t i = first; i < t->n_logins && strcmp(t->logins[i].user, m->user) == 0; i++) {
		const struct login *l = &t->logins[i];

		if (!live_at(l, when) || kc_trail_in_list(sessions.data, l->session))
			continue;
		kc_buf_printf(&sessions, "%s%s", sessions.len ? "," : "", l->session);
		kc_buf_printf(&rhosts, "%s%s", rhosts.len ? "," : "", l->rhost);
	}
	if (!sessions.len)
		return find_group(t, m->user, "-", "-");
	kc_trail_sorted_lists(sessions.data, rhosts.data, sorted, sorted_rhosts, sizeof(sorted));
	return find_group(t, m->user, sorted, sorted_rhosts);
}

/* ---- the API server's audit log ------------------------------------------------ */

static const char *str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

static int add_request(struct request_list *r, json_t *ev, const char *when, const char *jti)
{
	json_t *user = json_object_get(ev, "user");
	char verb[FIELD], uri[URI_MAX], as[FIELD], line[URI_MAX + 5 * FIELD];
	long long code = json_integer_value(json_object_get(json_object_get(ev, "responseStatus"), "code"));

	if (kc_trail_grow(&r->req, &r->cap, r->n, sizeof(*r->req)) < 0)
		return -1;
	kc_trail_clean(str_at(ev, "verb"), verb, sizeof(verb));
	kc_trail_clean(str_at(ev, "requestURI"), uri, sizeof(uri));
	kc_trail_clean(str_at(user, "username"), as, sizeof(as));
	snprintf(line, sizeof(line), "  request time=%s verb=%s code=%lld uri=%s as=%s jti=%s", when, verb, code, uri,
		 as, jti);
	if (!(r->req[r->n] = strdup(line)))
		return -1;
	r->n++;
	if (!r->json)
		r->json = json_array();
	json_array_append_new(r->json, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "time", when, "verb", verb, "code",
						 (json_int_t)code, "uri", uri, "as", as, "jti", jti));
	return 0;
}

static int add_event(struct trail *t, json_t *ev)
{
	json_t *ids = json_object_get(json_object_get(json_object_get(ev, "user"), "extra"),
				      "authentication.kubernetes.io/credential-id");
	const char *id = json_string_value(json_array_get(ids, 0));
	const char *stage = str_at(ev, "stage");
	struct mint key, *m;
	size_t gi;
	char when[FIELD];
	const char *at = str_at(ev, "requestReceivedTimestamp");

	/* One line per request: the last stage of it. */
	if (!id || strncmp(id, "JTI=", 4) != 0 ||
	    (*stage && strcmp(stage, "ResponseComplete") != 0 && strcmp(stage, "Panic") != 0))
		return 0;
	memset(&key, 0, sizeof(key));
	kc_trail_clean(id + 4, key.jti, sizeof(key.jti));
	m = t->n_mints ? bsearch(&key, t->mints, t->n_mints, sizeof(key), kc_trail_by_jti) : NULL;
	if (!m) {
		t->unmatched++;
		return 0;
	}
	kc_trail_clean(*at ? at : str_at(ev, "stageTimestamp"), when, sizeof(when));
	if (m->conflict >= 0)
		return add_request(&t->conflicts[m->conflict].r, ev, when, m->jti);
	if ((gi = attribute(t, m, when)) == (size_t)-1)
		return -1;
	return add_request(&t->groups[gi].r, ev, when, m->jti);
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

/* A login of a group, by its record, or by what the mint said when the login
 * record is gone (rotated away). */
static struct login login_of(struct trail *t, const struct group *g, const char *session, size_t index)
{
	const struct login *l = kc_trail_find_login(t, g->user, session);
	struct login out = { 0 };
	const char *p = g->rhosts;

	if (l)
		return *l;
	for (size_t i = 0; p && i < index; i++)
		if ((p = strchr(p, ',')))
			p++;
	snprintf(out.user, sizeof(out.user), "%s", g->user);
	snprintf(out.session, sizeof(out.session), "%s", session);
	snprintf(out.rhost, sizeof(out.rhost), "%.*s", p ? (int)strcspn(p, ",") : 1, p ? p : "-");
	snprintf(out.uid, sizeof(out.uid), "-");
	snprintf(out.service, sizeof(out.service), "-");
	snprintf(out.start, sizeof(out.start), "-");
	snprintf(out.end, sizeof(out.end), "-");
	snprintf(out.host, sizeof(out.host), "-");
	return out;
}

static void print_login(const struct login *l)
{
	printf("login user=%s uid=%s session=%s rhost=%s service=%s start=%s end=%s host=%s\n", l->user, l->uid,
	       l->session, l->rhost, l->service, l->start, l->end, l->host);
}

static json_t *login_json(const struct login *l)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "user", l->user, "uid", l->uid, "session",
			 l->session, "rhost", l->rhost, "service", l->service, "start", l->start, "end", l->end, "host",
			 l->host);
}

static bool shown_in_a_group(const struct trail *t, const struct login *l)
{
	for (size_t g = 0; g < t->n_groups; g++)
		if (t->groups[g].r.n && strcmp(t->groups[g].user, l->user) == 0 &&
		    kc_trail_in_list(t->groups[g].sessions, l->session))
			return true;
	return false;
}

static const char *conflict_side(const struct mint *m, char *out, size_t len)
{
	snprintf(out, len, "user=%s host=%s (%s %s)", m->user, m->host, kc_trail_source_name[m->src], m->where);
	return out;
}

static void print_text(struct trail *t)
{
	char a[FIELD * 5], b[FIELD * 5];

	for (size_t i = 0; i < t->n_groups; i++) {
		struct group *g = &t->groups[i];
		char copy[LIST], *save = NULL;
		size_t k = 0;

		if (!g->r.n)
			continue;
		if (strcmp(g->sessions, "-") == 0) {
			printf("no login: tokens minted without a session (check --online)\n");
		} else {
			snprintf(copy, sizeof(copy), "%s", g->sessions);
			for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
				struct login l = login_of(t, g, s, k++);

				print_login(&l);
			}
		}
		for (size_t r = 0; r < g->r.n; r++)
			printf("%s\n", g->r.req[r]);
		printf("\n");
	}
	for (size_t i = 0; i < t->n_conflicts; i++) {
		const struct conflict *c = &t->conflicts[i];

		printf("conflict jti=%s: recorded for %s and for %s; its requests are attributed to neither\n", c->jti,
		       conflict_side(&c->a, a, sizeof(a)), conflict_side(&c->b, b, sizeof(b)));
		for (size_t r = 0; r < c->r.n; r++)
			printf("%s\n", c->r.req[r]);
		printf("\n");
	}
	/* Logins none of whose tokens made a request. */
	for (size_t i = 0; i < t->n_logins; i++)
		if (!shown_in_a_group(t, &t->logins[i])) {
			print_login(&t->logins[i]);
			printf("  (no requests)\n\n");
		}
}

static void print_json(struct trail *t)
{
	json_t *out = json_object(), *groups = json_array(), *idle = json_array(), *conflicts = json_array();
	char *text;

	for (size_t i = 0; i < t->n_groups; i++) {
		struct group *g = &t->groups[i];
		json_t *logins = json_array();
		char copy[LIST], *save = NULL;
		size_t k = 0;

		if (!g->r.n) {
			json_decref(logins);
			continue;
		}
		snprintf(copy, sizeof(copy), "%s", strcmp(g->sessions, "-") == 0 ? "" : g->sessions);
		for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
			struct login l = login_of(t, g, s, k++);

			json_array_append_new(logins, login_json(&l));
		}
		json_array_append_new(
			groups, json_pack("{s:s, s:o, s:O}", "user", g->user, "logins", logins, "requests", g->r.json));
	}
	for (size_t i = 0; i < t->n_conflicts; i++) {
		const struct conflict *c = &t->conflicts[i];
		json_t *recs =
			json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]", "user", c->a.user, "host", c->a.host,
				  "source", kc_trail_source_name[c->a.src], "where", c->a.where, "user", c->b.user,
				  "host", c->b.host, "source", kc_trail_source_name[c->b.src], "where", c->b.where);

		json_array_append_new(conflicts,
				      json_pack("{s:s, s:o, s:o}", "jti", c->jti, "records", recs, "requests",
						c->r.json ? json_incref(c->r.json) : json_array()));
	}
	for (size_t i = 0; i < t->n_logins; i++)
		if (!shown_in_a_group(t, &t->logins[i]))
			json_array_append_new(idle, login_json(&t->logins[i]));
	json_object_set(out, "sources", t->sources);
	json_object_set_new(out, "groups", groups);
	json_object_set_new(out, "conflicts", conflicts);
	json_object_set_new(out, "logins_without_requests", idle);
	json_object_set_new(out, "unattributed_requests", json_integer((json_int_t)t->unmatched));
	text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text)
		printf("%s\n", text);
	kc_json_free(text); /* jansson's allocator, not libc's */
	json_decref(out);
}

/* ---- the command ---------------------------------------------------------------- */

/* This program's own path, as the kernel gives it (what journald records as _EXE). */
static void own_exe(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	const char *deleted = " (deleted)";

	out[n > 0 ? n : 0] = '\0';
	if (n > (ssize_t)strlen(deleted) && strcmp(out + n - strlen(deleted), deleted) == 0)
		out[n - strlen(deleted)] = '\0';
}
int kc_cmd_audit(const struct kc_audit_args *a)
{
	struct trail t = { .sources = json_array() };
	char exe[PATH_MAX];
	FILE *events = NULL;
	int rc = KC_EXIT_USAGE;

	if (a->exe)
		snprintf(exe, sizeof(exe), "%s", a->exe);
	else
		own_exe(exe, sizeof(exe));
	if (kc_audit_read_ledger(&t, a->ledger) < 0 || (a->journal && kc_audit_read_journal(&t, a->journal, exe) < 0) ||
	    (a->trust_syslog && kc_audit_read_syslog(&t, a->trust_syslog) < 0))
		goto out;
	events = fopen(a->audit_log, "re");
	if (!events) {
		fprintf(stderr, "pam-kubeconfig: cannot read the audit log %s: %s\n", a->audit_log, strerror(errno));
		goto out;
	}
	rc = KC_EXIT_ERROR;
	kc_trail_settle_logins(&t);
	if (kc_trail_merge_mints(&t) < 0 || read_audit_log(events, &t) < 0) {
		fprintf(stderr, "pam-kubeconfig: out of memory\n");
		goto out;
	}
	if (a->json)
		print_json(&t);
	else
		print_text(&t);
	for (size_t i = 0; i < t.n_conflicts; i++) {
		char x[FIELD * 5], y[FIELD * 5];

		fprintf(stderr, "pam-kubeconfig: error: jti %s is recorded for %s and for %s\n", t.conflicts[i].jti,
			conflict_side(&t.conflicts[i].a, x, sizeof(x)), conflict_side(&t.conflicts[i].b, y, sizeof(y)));
	}
	if (t.unmatched)
		fprintf(stderr,
			"pam-kubeconfig: %zu requests used tokens that no trusted record names (other clients, or "
			"mints older than the records read)\n",
			t.unmatched);
	rc = t.n_conflicts ? KC_EXIT_ERROR : KC_EXIT_OK;
out:
	if (events)
		fclose(events);
	kc_trail_free(&t);
	return rc;
}

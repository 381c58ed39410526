/* The sources `pam-kubeconfig audit` trusts (see admin/audit.h): the root
 * ledger, journal entries whose fields journald itself set say root and this
 * program, and syslog text only when the administrator says so. */
#include "admin/audit_trail.h"
#include "admin/audit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lifecycle/auditlog.h"
#include "lifecycle/ledger_read.h"

#define FIELD_MAX (1u << 20) /* a journal export's binary field */

/* ---- the ledger ------------------------------------------------------------------ */

static int ledger_record(const struct kc_ledger_entry *e, const struct kc_ledger_where *w, void *arg)
{
	struct trail *t = arg;
	char when[32], uid[16] = "-";
	kc_autobuf struct kc_buf ids = { 0 }, hosts = { 0 };
	const char *service = json_string_value(json_object_get(e->detail, "service"));

	t->file = w->file;
	t->lineno = w->line;
	kc_trail_clean(e->host, t->host, sizeof(t->host));
	kc_format_time(e->time, when, sizeof(when));
	if (e->uid != (uid_t)-1)
		snprintf(uid, sizeof(uid), "%u", (unsigned)e->uid);
	for (size_t i = 0; i < e->n_sessions; i++) {
		char one[FIELD];

		kc_trail_clean(e->sessions[i].id, one, sizeof(one));
		kc_buf_printf(&ids, "%s%s", i ? "," : "", one);
		kc_trail_clean(e->sessions[i].rhost, one, sizeof(one));
		kc_buf_printf(&hosts, "%s%s", i ? "," : "", one);
	}
	switch (e->event) {
	case KC_LEDGER_LOGIN:
		return e->n_sessions ? kc_trail_add_login(t, e->user, uid, e->sessions[0].id, e->sessions[0].rhost,
							  service, when)
				     : 0;
	case KC_LEDGER_LOGOUT: return e->n_sessions ? kc_trail_add_logout(t, e->user, e->sessions[0].id, when) : 0;
	case KC_LEDGER_MINT:
	case KC_LEDGER_ROTATION:
	case KC_LEDGER_REMAP:
		return kc_trail_add_mint(t, e->jti, e->user ? e->user : "-", ids.data ? ids.data : "",
					 hosts.data ? hosts.data : "");
	default: return 0;
	}
}

int kc_audit_read_ledger(struct trail *t, const char *path)
{
	struct kc_ledger_stats st;
	struct kc_err err = { "" };
	char whole[PATH_MAX];

	if (!path)
		snprintf(whole, sizeof(whole), "%s/%s", kc_ledger_dir(), KC_LEDGER_NAME);
	t->src = SRC_LEDGER;
	if (kc_ledger_read(path, ledger_record, t, &st, &err) != 0) {
		fprintf(stderr, "pam-kubeconfig: %s\n", err.msg[0] ? err.msg : "out of memory");
		return -1;
	}
	fprintf(stderr, "pam-kubeconfig: trusted: the ledger %s (and its rotations): %zu records in %zu files%s\n",
		path ? path : whole, st.records, st.files,
		st.skipped ? ", some lines skipped (torn or not records)" : "");
	json_array_append_new(t->sources, json_pack("{s:s, s:s, s:I, s:I, s:I}", "kind", "ledger", "path",
						    path ? path : whole, "files", (json_int_t)st.files, "records",
						    (json_int_t)st.records, "skipped", (json_int_t)st.skipped));
	return 0;
}

/* ---- the journal ------------------------------------------------------------------ */

/* The fields of one journal entry that decide and carry a record. */
struct entry {
	char uid[32], exe[PATH_MAX], ident[64], host[FIELD];
	char *message;
	bool twice; /* a trusted field appeared twice with different values: not trusted */
};

static void entry_reset(struct entry *e)
{
	free(e->message);
	memset(e, 0, sizeof(*e));
}

static void set_field(char *dst, size_t len, const char *v, size_t n, bool *twice)
{
	if (*dst && (strlen(dst) != n || memcmp(dst, v, n) != 0))
		*twice = true;
	snprintf(dst, len, "%.*s", (int)(n < len ? n : len - 1), v);
}

/* One field: only those the trust decision and the record need are kept. */
static void entry_field(struct entry *e, const char *name, size_t nlen, const char *v, size_t n)
{
#define IS(k) (nlen == strlen(k) && memcmp(name, k, nlen) == 0)
	if (IS("_UID"))
		set_field(e->uid, sizeof(e->uid), v, n, &e->twice);
	else if (IS("_EXE"))
		set_field(e->exe, sizeof(e->exe), v, n, &e->twice);
	else if (IS("SYSLOG_IDENTIFIER"))
		set_field(e->ident, sizeof(e->ident), v, n, &e->twice);
	else if (IS("_HOSTNAME"))
		set_field(e->host, sizeof(e->host), v, n, &e->twice);
	else if (IS("MESSAGE") && !memchr(v, '\0', n)) {
		if (e->message)
			e->twice = true;
		free(e->message);
		e->message = strndup(v, n);
	}
#undef IS
}

struct journal_stats {
	size_t entries, accepted, refused; /* refused: named pam-kubeconfig, not written by root's program */
};

/* Root's, written by this program: the fields journald sets itself (a client
 * cannot), never what the message or SYSLOG_IDENTIFIER claim. */
static int entry_done(struct trail *t, struct entry *e, const char *exe, struct journal_stats *js)
{
	int rc = 0;

	if (e->message || e->ident[0]) {
		bool ours = strcmp(e->ident, KC_AUDIT_TAG) == 0;
		bool trusted = ours && !e->twice && strcmp(e->uid, "0") == 0 && strcmp(e->exe, exe) == 0;

		js->entries++;
		if (trusted && e->message) {
			js->accepted++;
			snprintf(t->host, sizeof(t->host), "%s", e->host[0] ? e->host : "-");
			rc = kc_trail_add_line(t, e->message);
		} else if (ours) {
			js->refused++;
		}
	}
	entry_reset(e);
	return rc;
}

/* journalctl -o export: KEY=VALUE lines, binary fields as KEY\n + 64-bit LE
 * length + bytes + \n, entries separated by an empty line. */
static int read_export(FILE *f, struct trail *t, const char *exe, struct journal_stats *js)
{
	struct entry e = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		char *eq;

		t->lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0) {
			rc = entry_done(t, &e, exe, js);
			continue;
		}
		if ((size_t)n > LINE_MAX_BYTES)
			continue;
		eq = memchr(line, '=', (size_t)n);
		if (eq) {
			entry_field(&e, line, (size_t)(eq - line), eq + 1, (size_t)n - (size_t)(eq - line) - 1);
		} else {
			unsigned char len[8];
			unsigned long long size = 0;
			char *data;

			if (fread(len, 1, 8, f) != 8)
				break;
			for (int i = 7; i >= 0; i--)
				size = size << 8 | len[i];
			if (size > FIELD_MAX) {
				e.twice = true; /* not read: the entry is not trusted */
				if (fseeko(f, (off_t)size + 1, SEEK_CUR) < 0)
					break;
				continue;
			}
			data = malloc(size + 1);
			if (!data || fread(data, 1, size, f) != size || fgetc(f) != '\n') {
				free(data);
				break;
			}
			entry_field(&e, line, (size_t)n, data, size);
			free(data);
		}
	}
	if (rc == 0)
		rc = entry_done(t, &e, exe, js);
	entry_reset(&e);
	free(line);
	return rc;
}

/* journalctl -o json: one object per line; a field that is not a string (a
 * binary or repeated value) is not one this reads. */
static int read_json_lines(FILE *f, struct trail *t, const char *exe, struct journal_stats *js)
{
	struct entry e = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		json_t *o, *v;
		const char *key;

		t->lineno++;
		if ((size_t)n > LINE_MAX_BYTES || line[0] != '{')
			continue;
		o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		json_object_foreach(o, key, v)
		{
			if (json_is_string(v))
				entry_field(&e, key, strlen(key), json_string_value(v), json_string_length(v));
			else if (key[0] == '_' || strcmp(key, "SYSLOG_IDENTIFIER") == 0 || strcmp(key, "MESSAGE") == 0)
				e.twice = true;
		}
		json_decref(o);
		rc = entry_done(t, &e, exe, js);
	}
	entry_reset(&e);
	free(line);
	return rc;
}

int kc_audit_read_journal(struct trail *t, const char *path, const char *exe)
{
	FILE *f = fopen(path, "re");
	struct journal_stats js = { 0 };
	int c, rc;

	if (!f) {
		fprintf(stderr, "pam-kubeconfig: cannot read the journal export %s: %s\n", path, strerror(errno));
		return -1;
	}
	t->src = SRC_JOURNAL;
	t->file = path;
	t->lineno = 0;
	while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\t')
		;
	ungetc(c, f);
	rc = c == '{' ? read_json_lines(f, t, exe, &js) : read_export(f, t, exe, &js);
	fclose(f);
	if (rc < 0)
		return fprintf(stderr, "pam-kubeconfig: out of memory\n"), -1;
	fprintf(stderr,
		"pam-kubeconfig: trusted: entries of %s whose journal fields say _UID=0 and _EXE=%s: %zu of %zu; "
		"%zu entries naming %s were not written by it and are ignored\n",
		path, exe, js.accepted, js.entries, js.refused, KC_AUDIT_TAG);
	json_array_append_new(t->sources,
			      json_pack("{s:s, s:s, s:s, s:I, s:I}", "kind", "journal", "path", path, "exe", exe,
					"accepted", (json_int_t)js.accepted, "refused", (json_int_t)js.refused));
	return 0;
}

/* ---- syslog text, when the administrator trusts it ------------------------------------ */

/* The audit line inside one line of a syslog file ("... pam-kubeconfig[PID]: MSG"),
 * a raw datagram, or -o cat output (MSG alone). */
static const char *message_of(const char *line)
{
	const char *p;

	if ((p = strstr(line, KC_AUDIT_TAG "[")) && (p = strstr(p, "]: ")))
		return p + 3;
	if ((p = strstr(line, KC_AUDIT_TAG ": ")))
		return p + strlen(KC_AUDIT_TAG) + 2;
	return line;
}

int kc_audit_read_syslog(struct trail *t, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, used = 0;
	ssize_t n;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "pam-kubeconfig: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	t->src = SRC_SYSLOG;
	t->file = path;
	t->lineno = 0;
	snprintf(t->host, sizeof(t->host), "-");
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		const char *msg;

		t->lineno++;
		if ((size_t)n > LINE_MAX_BYTES)
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		msg = message_of(line);
		used += kc_audit_line_kind(msg) != KC_AUDIT_NONE;
		rc = kc_trail_add_line(t, msg);
	}
	free(line);
	fclose(f);
	if (rc < 0)
		return fprintf(stderr, "pam-kubeconfig: out of memory\n"), -1;
	fprintf(stderr,
		"pam-kubeconfig: trusted as you asked (--trust-syslog): every line of %s that reads as ours (%zu); "
		"any local user can write such lines with logger(1), so a jti they name for another user is "
		"reported as a conflict\n",
		path, used);
	json_array_append_new(t->sources,
			      json_pack("{s:s, s:s, s:I}", "kind", "syslog", "path", path, "lines", (json_int_t)used));
	return 0;
}

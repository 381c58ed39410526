/* The order of a PAM service's session stack (see config/pamstack.h), read
 * after libpam's pam_handlers.c and pam_line.c: comments from '#', lines
 * continued by a trailing backslash, "[...]" as one token, type names in any
 * case with an optional leading '-', include/substack of one type, and
 * Debian's "@include FILE" of every type. Jumps ([success=N]) only go forward,
 * so a line that comes later in the flattened stack never runs earlier. */
#include "config/pamstack.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/fileio.h"

#define AT_MAX (PATH_MAX + 16) /* "PATH:LINE" */

struct walk {
	const char *root; /* prefix of every path; "" for / */
	const char *service;
	unsigned files;
	size_t sessions; /* session lines seen: with none, libpam uses "other" */
	bool env_seen, us_seen;
	char env_at[AT_MAX]; /* the first pam_env.so that reads the user's file */
	struct kc_err *why;
};

static int walk_file(struct walk *w, const char *name, int depth);

/* libpam's _pam_tokenize(): whitespace-separated words, "[...]" one word
 * without its brackets ("\]" inside it is a ']'). */
static char *tokenize(char *from, char **next)
{
	char *end;

	if (!from && !(from = *next))
		return NULL;
	from += strspn(from, " \n\t");
	if (*from == '[') {
		char *to;

		for (to = end = ++from; *end && *end != ']'; ++to, ++end) {
			if (*end == '\\' && end[1] == ']')
				++end;
			*to = *end;
		}
		if (to != end)
			*to = '\0';
	} else if (*from) {
		end = from + strcspn(from, " \n\t");
	} else {
		*next = NULL;
		return NULL;
	}
	if (*end)
		*end++ = '\0';
	*next = *end ? end : NULL;
	return from;
}

/* pam_env's reading of its arguments: the last user_readenv= wins, its value
 * read by atoi() (glibc: (int)strtol), anything but 0 reads the user's file. */
static bool reads_user_env(char *args)
{
	char *next = args, *a;
	bool on = false;

	while ((a = tokenize(NULL, &next)))
		if (strncmp(a, "user_readenv=", 13) == 0)
			on = (int)strtol(a + 13, NULL, 10) != 0;
	return on;
}

static const char *base_name(const char *module)
{
	const char *slash = strrchr(module, '/');

	return slash ? slash + 1 : module;
}

/* One session line that loads a module: 1 when it shows the order wrong. */
static int session_module(struct walk *w, const char *path, unsigned line, const char *module, char *args)
{
	const char *base = base_name(module);

	if (strcmp(base, "pam_kubeconfig.so") == 0) {
		w->us_seen = true;
		if (!w->env_seen)
			return 0;
		kc_seterr(w->why,
			  "%s runs pam_env.so with user_readenv=1 before pam_kubeconfig.so (%s:%u) in the "
			  "session stack of %s: a user's ~/.pam_environment could set SSH_AUTH_INFO_0, so SSH "
			  "certificates are ignored; put every pam_kubeconfig.so session line above it",
			  w->env_at, path, line, w->service);
		return 1;
	}
	if (strcmp(base, "pam_env.so") == 0 && !w->env_seen && reads_user_env(args)) {
		snprintf(w->env_at, sizeof(w->env_at), "%s:%u", path, line);
		w->env_seen = true;
	}
	return 0;
}

static int walk_line(struct walk *w, const char *path, unsigned line, char *buf, int depth)
{
	char *next = NULL, *type = tokenize(buf, &next), *control, *module;
	char none[1] = "";

	if (!type)
		return 0;
	if (strcmp(type, "@include") == 0) {
		module = tokenize(NULL, &next);
		return module ? walk_file(w, module, depth + 1) : 0;
	}
	if (*type == '-')
		type++; /* "-session": a missing module is not logged */
	if (strcasecmp(type, "session") != 0)
		return 0;
	control = tokenize(NULL, &next);
	module = control ? tokenize(NULL, &next) : NULL;
	if (module && strcasecmp(control, "include") == 0)
		return walk_file(w, module, depth + 1);
	/* Every other session line is a handler of the service: a substack, a module, or one that fails. */
	w->sessions++;
	if (!module)
		return 0;
	if (strcasecmp(control, "substack") == 0)
		return walk_file(w, module, depth + 1);
	return session_module(w, path, line, module, next ? next : none);
}

/* One physical line's share of a logical line (pam_line.c): leading blanks
 * dropped, a comment ends the logical line, and a trailing backslash, where
 * there is no comment, joins the next line with a space. Returns whether the
 * logical line goes on. */
static bool add_chunk(struct kc_buf *logical, const char *p, size_t len, bool *failed)
{
	size_t end = strnlen(p, len), lead;
	const char *hash = memchr(p, '#', end);
	bool more = false;

	if (hash) {
		end = (size_t)(hash - p);
	} else {
		size_t keep = end;

		while (keep > 0 && (p[keep - 1] == ' ' || p[keep - 1] == '\t'))
			keep--;
		if (keep > 0 && p[keep - 1] == '\\') {
			end = keep - 1;
			more = true;
		}
	}
	lead = strspn(p, " \t");
	if (lead > end)
		lead = end;
	if (kc_buf_append(logical, p + lead, end - lead) < 0 || (more && kc_buf_puts(logical, " ") < 0))
		*failed = true;
	return more;
}

static int walk_text(struct walk *w, const char *path, const char *text, size_t len, int depth)
{
	unsigned line = 0, first = 0;
	bool failed = false, going_on = false;
	struct kc_buf logical = { 0 };
	int rc = 0;

	for (size_t pos = 0; pos < len && rc == 0;) {
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t ll = eol ? (size_t)(eol - (text + pos)) : len - pos;

		if (!going_on)
			first = line + 1;
		line++;
		going_on = add_chunk(&logical, text + pos, ll, &failed);
		pos += ll + 1;
		if (going_on && pos < len)
			continue;
		if (failed)
			rc = (kc_seterr(w->why, "out of memory reading %s", path), -1);
		else if (logical.len > 0)
			rc = walk_line(w, path, first, logical.data, depth);
		logical.len = 0;
		going_on = false;
	}
	kc_buf_free(&logical);
	return rc;
}

/* Where libpam finds name: an absolute path as it is, else in /etc/pam.d,
 * else in /usr/lib/pam.d; under root. 0 found, KC_ABSENT. */
static int locate(const struct walk *w, const char *name, char *path, size_t len)
{
	static const char *const dirs[] = { "/etc/pam.d/", "/usr/lib/pam.d/" };
	struct stat st;

	if (name[0] == '/')
		return snprintf(path, len, "%s%s", w->root, name) < (int)len ? 0 : KC_ABSENT;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (snprintf(path, len, "%s%s%s", w->root, dirs[i], name) >= (int)len)
			return KC_ABSENT;
		if (lstat(path, &st) == 0 || errno != ENOENT)
			return 0;
	}
	return KC_ABSENT;
}

static int walk_file(struct walk *w, const char *name, int depth)
{
	char path[PATH_MAX];
	kc_autobuf struct kc_buf text = { 0 };

	if (depth >= KC_PAMSTACK_MAX_DEPTH || ++w->files > KC_PAMSTACK_MAX_FILES)
		return kc_seterr(w->why, "the PAM configuration of %s includes files deeper than %d or more than %d",
				 w->service, KC_PAMSTACK_MAX_DEPTH, KC_PAMSTACK_MAX_FILES),
		       -1;
	if (locate(w, name, path, sizeof(path)) < 0)
		return kc_seterr(w->why, "the PAM configuration of %s includes %.200s, which does not exist",
				 w->service, name),
		       -1;
	if (kc_read_root_file(path, KC_PAMSTACK_FILE_MAX, 022, false, &text, w->why) < 0)
		return kc_seterr(w->why, "cannot read the PAM configuration of %s: %s", w->service, w->why->msg), -1;
	return walk_text(w, path, text.data ? text.data : "", text.len, depth);
}

int kc_pamstack_check(const char *root, const char *service, struct kc_err *why)
{
	struct walk w = { .root = root && strcmp(root, "/") != 0 ? root : "", .service = service, .why = why };
	char path[PATH_MAX];
	int rc;

	if (!*service || strchr(service, '/') || strcmp(service, ".") == 0 || strcmp(service, "..") == 0 ||
	    strlen(service) > 255)
		return kc_seterr(why, "'%.64s' is not a PAM service name", service), -1;
	rc = locate(&w, service, path, sizeof(path)) == 0 ? walk_file(&w, service, 0) : 0;
	/* No file, or one with no session line: libpam runs the "other" service's stack. */
	if (rc == 0 && w.sessions == 0) {
		if (locate(&w, "other", path, sizeof(path)) < 0)
			return kc_seterr(why, "no PAM configuration for %s (nor for other) under %s/etc/pam.d", service,
					 w.root),
			       -1;
		rc = walk_file(&w, "other", 0);
	}
	if (rc == 0 && !w.us_seen)
		return kc_seterr(why, "the session stack of PAM service %s has no pam_kubeconfig.so line", service), 1;
	return rc;
}

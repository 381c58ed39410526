/* Unix user and groups -> ServiceAccount per cluster: first matching rule wins. */
#include "config/mapping.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <fnmatch.h>
#include <string.h>

/* The name of group gid into *name (malloc'd). Returns 0, 1 when the gid has
 * no name (it cannot match a rule), -1 when the lookup failed: then the
 * groups are unknown, and a user must not lose a group rule's grant for it.
 * A group line may be long (a department's members): the buffer grows. */
static int group_name(gid_t gid, char **name, struct kc_err *err)
{
	size_t size = 16384;

	for (;;) {
		struct group gr, *grp = NULL;
		char *buf = malloc(size);
		int rc;

		if (!buf)
			return kc_seterr(err, "out of memory"), -1;
		rc = getgrgid_r(gid, &gr, buf, size, &grp);
		if (rc == ERANGE && size < (64u << 20)) {
			free(buf);
			size *= 4;
			continue;
		}
		if (rc == 0 && grp && !(*name = strdup(grp->gr_name)))
			rc = ENOMEM;
		free(buf);
		if (rc != 0)
			return kc_seterr(err, "cannot look up group %u: %s", (unsigned)gid, strerror(rc)), -1;
		return grp ? 0 : 1;
	}
}

int kc_getpw(const char *name, uid_t uid, struct passwd *pw, char **buf)
{
	size_t size = 16384;

	*buf = NULL;
	for (;;) {
		struct passwd *found = NULL;
		int rc;

		free(*buf);
		if (!(*buf = malloc(size)))
			return -ENOMEM;
		rc = name ? getpwnam_r(name, pw, *buf, size, &found) : getpwuid_r(uid, pw, *buf, size, &found);
		if (rc == ERANGE && size < (64u << 20)) {
			size *= 4; /* a long GECOS from a directory */
			continue;
		}
		if (rc != 0 && rc != ENOENT)
			return -rc;
		return found ? 0 : 1;
	}
}

int kc_identity_load(const char *user, struct kc_identity *id, struct kc_err *err)
{
	struct passwd pw;
	char *buf = NULL;
	gid_t *gids = NULL;
	int ngids = 64;
	int rc = -1, got;

	memset(id, 0, sizeof(*id));
	got = kc_getpw(user, 0, &pw, &buf);
	if (got < 0) {
		kc_seterr(err, "cannot look up user '%s': %s", user, strerror(-got));
		rc = KC_UNKNOWN;
		goto out;
	}
	if (got > 0) {
		kc_seterr(err, "no such user '%s'", user);
		rc = KC_ABSENT;
		goto out;
	}
	id->name = strdup(pw.pw_name);
	id->home = strdup(pw.pw_dir ? pw.pw_dir : "");
	id->uid = pw.pw_uid;
	id->gid = pw.pw_gid;
	if (!id->name || !id->home)
		goto oom;

	for (;;) {
		int n = ngids;

		gids = malloc((size_t)ngids * sizeof(gid_t));
		if (!gids)
			goto oom;
		if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &n) >= 0) {
			ngids = n;
			break;
		}
		free(gids);
		gids = NULL;
		if (n <= ngids || n > 65536) {
			kc_seterr(err, "cannot list the groups of '%s'", user);
			rc = KC_UNKNOWN;
			goto out;
		}
		ngids = n;
	}
	id->groups = calloc((size_t)ngids + 1, sizeof(char *));
	if (!id->groups)
		goto oom;
	for (int i = 0; i < ngids; i++) {
		int named = group_name(gids[i], &id->groups[id->n_groups], err);

		if (named < 0) {
			rc = KC_UNKNOWN;
			goto out;
		}
		if (named == 0)
			id->n_groups++;
	}
	id->gids = gids; /* kept for the writer's drop: no second walk of the directory */
	id->n_gids = (size_t)ngids;
	gids = NULL;
	rc = 0;
	goto out;
oom:
	kc_seterr(err, "out of memory");
	rc = KC_UNKNOWN;
out:
	if (rc < 0)
		kc_identity_free(id);
	free(gids);
	free(buf);
	return rc;
}

void kc_identity_free(struct kc_identity *id)
{
	for (size_t i = 0; i < id->n_groups; i++)
		free(id->groups[i]);
	free(id->groups);
	free(id->gids);
	free(id->name);
	free(id->home);
	memset(id, 0, sizeof(*id));
}

static bool lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool kc_valid_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KC_NS_MAX - 1 || !lower_alnum((unsigned char)s[0]) || !lower_alnum((unsigned char)s[n - 1]))
		return false;
	for (; *s; s++)
		if (!lower_alnum((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

/* As Kubernetes' IsDNS1123Subdomain: labels joined by '.', 253 characters in
 * all; a label is not capped at 63 there. */
bool kc_valid_dns_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KC_NAME_MAX - 1)
		return false;
	for (const char *label = s; *label;) {
		size_t len = strcspn(label, ".");

		if (len == 0 || !lower_alnum((unsigned char)label[0]) || !lower_alnum((unsigned char)label[len - 1]))
			return false;
		for (size_t i = 0; i < len; i++)
			if (!lower_alnum((unsigned char)label[i]) && label[i] != '-')
				return false;
		label += len;
		if (*label == '.' && !*++label)
			return false;
	}
	return true;
}

bool kc_user_safe_unchanged(const char *user)
{
	const unsigned char *p = (const unsigned char *)user;

	if (!lower_alnum(*p))
		return false;
	for (; *p; p++)
		if (!lower_alnum(*p) && !(*p == '-' && lower_alnum(p[1])))
			return false;
	return true;
}

static size_t escaped_length(const unsigned char *u, size_t i)
{
	if (lower_alnum(u[i]) || (u[i] == '-' && i > 0 && lower_alnum(u[i + 1])))
		return 1;
	return u[i] >= 'A' && u[i] <= 'Z' ? 3 : 5;
}

/* The escapes of a changed name, each starting with "--" (which no unchanged
 * name holds): "--" + a lowercase letter is that letter in uppercase; "--" +
 * three decimal digits is any other byte. A '-' stays as it is where it stands
 * between a character and a lowercase letter or digit. */
int kc_user_safe(const char *user, char *out, size_t len)
{
	const unsigned char *u = (const unsigned char *)user;
	size_t off = 0;

	if (!*u)
		return -1;
	if (kc_user_safe_unchanged(user)) {
		off = strlen(user);
		if (off >= len)
			return -1;
		memcpy(out, user, off + 1);
		return (int)off;
	}
	for (size_t i = 0; u[i]; i++) {
		char piece[6];
		size_t n = escaped_length(u, i);

		if (n == 1)
			snprintf(piece, sizeof(piece), "%c", u[i]);
		else if (n == 3)
			snprintf(piece, sizeof(piece), "--%c", u[i] - 'A' + 'a');
		else
			snprintf(piece, sizeof(piece), "--%03u", u[i]);
		if (off + n >= len)
			return -1;
		memcpy(out + off, piece, n);
		off += n;
	}
	out[off] = '\0';
	return (int)off;
}

int kc_user_safe_decode(const char *name, char *out, size_t len)
{
	const char *p = name;
	size_t off = 0;
	char again[KC_NAME_MAX];

	while (*p) {
		unsigned char c = (unsigned char)*p;

		if (off + 1 >= len)
			return -1;
		if (p[0] == '-' && p[1] == '-' && p[2] >= 'a' && p[2] <= 'z') {
			c = (unsigned char)(p[2] - 'a' + 'A');
			p += 3;
		} else if (p[0] == '-' && p[1] == '-') {
			unsigned v = 0;

			for (int i = 2; i < 5; i++) {
				if (p[i] < '0' || p[i] > '9')
					return -1;
				v = v * 10 + (unsigned)(p[i] - '0');
			}
			if (v == 0 || v > 255)
				return -1;
			c = (unsigned char)v;
			p += 5;
		} else {
			p++;
		}
		out[off++] = (char)c;
	}
	out[off] = '\0';
	/* Only what kc_user_safe() writes decodes: one name, one encoding. */
	if (kc_user_safe(out, again, sizeof(again)) < 0 || strcmp(again, name) != 0)
		return -1;
	return (int)off;
}

int kc_template_expand(const char *tmpl, const char *user, char *out, size_t len)
{
	size_t off = 0;

	for (const char *p = tmpl; *p;) {
		const char *piece;
		char safe[KC_NAME_MAX];
		size_t n;

		if (strncmp(p, "{user}", 6) == 0) {
			piece = user;
			n = strlen(user);
			p += 6;
		} else if (strncmp(p, "{user_safe}", 11) == 0) {
			int r = kc_user_safe(user, safe, sizeof(safe));

			piece = safe;
			p += 11;
			if (r < 0) { /* longer than any name (or empty): count it, never fits */
				const unsigned char *u = (const unsigned char *)user;
				bool same = kc_user_safe_unchanged(user);

				for (size_t i = 0; u[i]; i++)
					off += same ? 1 : escaped_length(u, i);
				off = off < len ? len : off;
				continue;
			}
			n = (size_t)r;
		} else {
			piece = p;
			n = 1;
			p++;
		}
		if (off + n < len)
			memcpy(out + off, piece, n);
		off += n;
	}
	if (len)
		out[off < len ? off : len - 1] = '\0';
	return off > (size_t)INT_MAX ? INT_MAX : (int)off;
}

int kc_template_check(const char *tmpl, bool is_namespace, char *why, size_t len)
{
	char sample[KC_NAME_MAX];
	const char *what = is_namespace ? "namespace" : "ServiceAccount name";
	size_t max = is_namespace ? KC_NS_MAX - 1 : KC_NAME_MAX - 1;
	int n;

	for (const char *p = tmpl; (p = strpbrk(p, "{}"));) {
		if (strncmp(p, "{user}", 6) == 0) {
			p += 6;
		} else if (strncmp(p, "{user_safe}", 11) == 0) {
			p += 11;
		} else {
			snprintf(why, len,
				 "unknown placeholder in the %s '%s'; the only ones are {user} and {user_safe}", what,
				 tmpl);
			return -1;
		}
	}
	/* "a" is valid in every position a user name can take. */
	n = kc_template_expand(tmpl, "a", sample, sizeof(sample));
	if ((size_t)n > max || !(is_namespace ? kc_valid_dns_label(sample) : kc_valid_dns_subdomain(sample))) {
		snprintf(why, len,
			 "'%s' is not a valid Kubernetes %s: use lowercase letters, digits and '-'%s, starting and "
			 "ending with a letter or digit, at most %zu characters",
			 tmpl, what, is_namespace ? "" : " (and '.')", max);
		return -1;
	}
	return 0;
}

/* Expands one half of a rule's serviceaccount for a user; on failure says why,
 * naming the rule's line. */
static int expand_for(const struct kc_config *cfg, const struct kc_mapping *m, const char *user, bool is_namespace,
		      char *out, size_t len, char *error, size_t error_len)
{
	const char *tmpl = is_namespace ? m->sa_namespace : m->sa_name;
	const char *what = is_namespace ? "namespace" : "ServiceAccount name";
	size_t max = len - 1;
	int n = kc_template_expand(tmpl, user, out, len);

	if ((size_t)n > max) {
		snprintf(error, error_len,
			 "%s:%u:%u: for user '%s' the %s '%s' would be %d characters long; a %s holds at most %zu: "
			 "shorten the fixed part of the template, or map this user by a rule of their own",
			 cfg->path, m->sa_mark.line, m->sa_mark.col, user, what, tmpl, n, what, max);
		return -1;
	}
	if (is_namespace ? kc_valid_dns_label(out) : kc_valid_dns_subdomain(out))
		return 0;
	if (strstr(tmpl, "{user}"))
		snprintf(error, error_len,
			 "%s:%u:%u: for user '%s' the %s '%s' is not a valid Kubernetes name; use {user_safe} "
			 "instead of {user}",
			 cfg->path, m->sa_mark.line, m->sa_mark.col, user, what, tmpl);
	else
		snprintf(error, error_len,
			 "%s:%u:%u: for user '%s' the %s '%s' gives '%s', which is not a valid Kubernetes name; put "
			 "a fixed prefix and suffix of letters or digits around {user_safe}, e.g. u-{user_safe}",
			 cfg->path, m->sa_mark.line, m->sa_mark.col, user, what, tmpl, out);
	return -1;
}

static bool who_matches(const struct kc_mapping *m, const struct kc_identity *id)
{
	if (m->user)
		return strcmp(m->user, "*") == 0 || strcmp(m->user, id->name) == 0;
	for (size_t i = 0; i < id->n_groups; i++)
		if (strcmp(m->group, id->groups[i]) == 0)
			return true;
	return false;
}

static bool claim_meets(const struct kc_mapping *m, const struct kc_cert_claim *c)
{
	bool principal = !m->cert_principal;

	for (size_t k = 0; !principal && k < c->n_principals; k++)
		principal = strcmp(c->principals[k], m->cert_principal) == 0;
	return principal && (!m->cert_key_id || (c->key_id && fnmatch(m->cert_key_id, c->key_id, 0) == 0));
}

/* A rule without ssh_certificate asks nothing more; one with it needs a
 * certificate that meets it, and the grant is bound to the latest such. */
static bool rule_matches(const struct kc_mapping *m, const struct kc_identity *id, time_t *until)
{
	*until = 0;
	if (!who_matches(m, id))
		return false;
	if (!m->cert_principal && !m->cert_key_id)
		return true;
	for (size_t i = 0; i < id->n_certs; i++)
		if (claim_meets(m, &id->certs[i]) && id->certs[i].valid_before > *until)
			*until = id->certs[i].valid_before;
	return *until != 0;
}

static bool listed(const char *const *names, size_t n, const char *cluster)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], cluster) == 0)
			return true;
	return false;
}

size_t kc_map_user(const struct kc_config *cfg, const struct kc_identity *id, struct kc_target *targets)
{
	size_t usable = 0, settled = 0;

	for (size_t c = 0; c < cfg->n_clusters; c++) {
		struct kc_target *t = &targets[c];

		memset(t, 0, sizeof(*t));
		t->cluster = &cfg->clusters[c];
		t->locked = id->locked_all || listed(id->locked, id->n_locked, t->cluster->name);
		t->held = listed(id->held, id->n_held, t->cluster->name);
		settled += t->locked;
	}
	/* One pass over the rules fills every cluster's first match; it ends
	 * when every cluster has one (or is locked). */
	for (size_t i = 0; i < cfg->n_mappings && settled < cfg->n_clusters; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];
		struct kc_target *t = NULL;

		for (size_t c = 0; c < cfg->n_clusters; c++)
			if (targets[c].cluster->name == m->cluster ||
			    strcmp(targets[c].cluster->name, m->cluster) == 0) {
				t = &targets[c];
				break;
			}
		if (!t || t->rule || t->locked || !rule_matches(m, id, &t->cert_until))
			continue;
		t->rule = m;
		t->rule_index = i;
		settled++;
		if (expand_for(cfg, m, id->name, true, t->sa_namespace, sizeof(t->sa_namespace), t->error,
			       sizeof(t->error)) < 0 ||
		    expand_for(cfg, m, id->name, false, t->sa_name, sizeof(t->sa_name), t->error, sizeof(t->error)) < 0)
			continue;
		usable++;
	}
	return usable;
}

bool kc_namespace_shared(const struct kc_config *cfg, const char *cluster, const char *ns)
{
	size_t rules = 0;

	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];

		if (strcmp(m->cluster, cluster) != 0 || strcmp(m->sa_namespace, ns) != 0)
			continue;
		if (m->group || strcmp(m->user, "*") == 0 || ++rules > 1)
			return true;
	}
	return false;
}

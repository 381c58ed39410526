/* Unix user and groups -> ServiceAccount per cluster: first matching rule wins. */
#include "kc_mapping.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

int kc_identity_load(const char *user, struct kc_identity *id, struct kc_err *err)
{
	struct passwd pw, *pwp = NULL;
	char *buf = NULL;
	gid_t *gids = NULL;
	int ngids = 64;
	long bufsize = 16384;
	int rc = -1;

	memset(id, 0, sizeof(*id));
	buf = malloc((size_t)bufsize);
	if (!buf)
		goto oom;
	errno = getpwnam_r(user, &pw, buf, (size_t)bufsize, &pwp);
	if (!pwp) {
		kc_seterr(err, "no such user '%s'%s%s", user, errno ? ": " : "", errno ? strerror(errno) : "");
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
			goto out;
		}
		ngids = n;
	}
	id->groups = calloc((size_t)ngids + 1, sizeof(char *));
	if (!id->groups)
		goto oom;
	for (int i = 0; i < ngids; i++) {
		struct group gr, *grp = NULL;
		char gbuf[16384];

		if (getgrgid_r(gids[i], &gr, gbuf, sizeof(gbuf), &grp) != 0 || !grp)
			continue; /* a gid without a name cannot match a rule */
		if (!(id->groups[id->n_groups] = strdup(grp->gr_name)))
			goto oom;
		id->n_groups++;
	}
	rc = 0;
	goto out;
oom:
	kc_seterr(err, "out of memory");
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
	free(id->name);
	free(id->home);
	memset(id, 0, sizeof(*id));
}

bool kc_valid_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

bool kc_valid_dns_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (const char *label = s; *label;) {
		size_t len = strcspn(label, ".");
		char part[64];

		if (len == 0 || len > 63)
			return false;
		memcpy(part, label, len);
		part[len] = '\0';
		if (!kc_valid_dns_label(part))
			return false;
		label += len;
		if (*label == '.' && !*++label)
			return false;
	}
	return true;
}

void kc_user_safe(const char *user, char *out, size_t len)
{
	bool changed = false;
	size_t i;

	for (i = 0; user[i] && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)user[i];

		if (islower(ch) || isdigit(ch) || ch == '-') {
			out[i] = (char)ch;
		} else if (isupper(ch)) {
			out[i] = (char)tolower(ch);
			changed = true;
		} else {
			out[i] = '-';
			changed = true;
		}
	}
	out[i] = '\0';
	if (changed && i + 10 < len) {
		char hex[65];

		kc_sha256_hex(user, strlen(user), hex);
		snprintf(out + i, len - i, "-%.8s", hex);
	}
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
			kc_user_safe(user, safe, sizeof(safe));
			piece = safe;
			n = strlen(safe);
			p += 11;
		} else {
			piece = p;
			n = 1;
			p++;
		}
		if (off + n >= len)
			return -1;
		memcpy(out + off, piece, n);
		off += n;
	}
	out[off] = '\0';
	return 0;
}

int kc_template_check(const char *tmpl, bool is_namespace, char *why, size_t len)
{
	char sample[KC_NAME_MAX];
	const char *what = is_namespace ? "namespace" : "ServiceAccount name";

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
	if (kc_template_expand(tmpl, "a", sample, sizeof(sample)) < 0 ||
	    !(is_namespace ? kc_valid_dns_label(sample) : kc_valid_dns_subdomain(sample))) {
		snprintf(why, len,
			 "'%s' is not a valid Kubernetes %s: use lowercase letters, digits and '-'%s, starting and "
			 "ending with a letter or digit, at most %d characters",
			 tmpl, what, is_namespace ? "" : " (and '.')", is_namespace ? 63 : 253);
		return -1;
	}
	return 0;
}

static bool rule_matches(const struct kc_mapping *m, const struct kc_identity *id)
{
	if (m->user)
		return strcmp(m->user, "*") == 0 || strcmp(m->user, id->name) == 0;
	for (size_t i = 0; i < id->n_groups; i++)
		if (strcmp(m->group, id->groups[i]) == 0)
			return true;
	return false;
}

size_t kc_map_user(const struct kc_config *cfg, const struct kc_identity *id, struct kc_target *targets)
{
	size_t usable = 0;

	for (size_t c = 0; c < cfg->n_clusters; c++) {
		struct kc_target *t = &targets[c];

		memset(t, 0, sizeof(*t));
		t->cluster = &cfg->clusters[c];
	}
	/* One pass over the rules fills every cluster's first match. */
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];
		struct kc_target *t = NULL;

		for (size_t c = 0; c < cfg->n_clusters; c++)
			if (targets[c].cluster->name == m->cluster ||
			    strcmp(targets[c].cluster->name, m->cluster) == 0) {
				t = &targets[c];
				break;
			}
		if (!t || t->rule || !rule_matches(m, id))
			continue;
		t->rule = m;
		t->rule_index = i;
		if (kc_template_expand(m->sa_namespace, id->name, t->sa_namespace, sizeof(t->sa_namespace)) < 0 ||
		    !kc_valid_dns_label(t->sa_namespace)) {
			snprintf(t->error, sizeof(t->error),
				 "%s:%u:%u: for user '%s' the namespace '%s' is not a valid Kubernetes name; use "
				 "{user_safe} instead of {user}",
				 cfg->path, m->sa_mark.line, m->sa_mark.col, id->name, m->sa_namespace);
			continue;
		}
		if (kc_template_expand(m->sa_name, id->name, t->sa_name, sizeof(t->sa_name)) < 0 ||
		    !kc_valid_dns_subdomain(t->sa_name)) {
			snprintf(t->error, sizeof(t->error),
				 "%s:%u:%u: for user '%s' the ServiceAccount name '%s' is not a valid Kubernetes name; "
				 "use {user_safe} instead of {user}",
				 cfg->path, m->sa_mark.line, m->sa_mark.col, id->name, m->sa_name);
			continue;
		}
		usable++;
	}
	return usable;
}

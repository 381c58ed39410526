/* The shared AWS config (~/.aws/config: [default], [profile NAME]) and
 * credentials (~/.aws/credentials: [NAME]) files, read as botocore reads them:
 * "key = value" or "key: value", keys case-insensitive, full-line comments,
 * indented continuation lines belong to the key above (and are not used here). */
#include "aws/aws_profile.h"
#include "aws/aws_sigv4.h"
#include "common/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROFILE_FILE_MAX (1u << 20)

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

/* "[profile NAME]" -> NAME and "[default]" in the config file; any name in the
 * credentials file. NULL for sections that are not profiles (sso-session, services). */
static char *profile_of_section(const char *name, bool credentials_file)
{
	if (credentials_file || strcmp(name, "default") == 0)
		return strdup(name);
	if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
		const char *p = name + 7;

		while (isspace((unsigned char)*p))
			p++;
		return *p ? trimmed(p, strlen(p)) : NULL;
	}
	return NULL;
}

static int add_entry(struct kc_aws_profiles *p, const char *profile, char *key, char *value, bool creds,
		     const char *path, unsigned line, struct kc_err *err)
{
	struct kc_aws_profile_entry *e;

	for (size_t i = 0; i < p->n; i++)
		if (p->e[i].from_credentials_file == creds && strcmp(p->e[i].profile, profile) == 0 &&
		    strcmp(p->e[i].key, key) == 0) {
			free(key);
			kc_free_secret(value);
			return kc_seterr(err, "%s:%u: '%s' is set twice in [%s]; keep one", path, line, p->e[i].key,
					 profile),
			       -1;
		}
	e = realloc(p->e, (p->n + 1) * sizeof(*e));
	if (!e || !(e[p->n].profile = strdup(profile))) {
		if (e)
			p->e = e;
		free(key);
		kc_free_secret(value);
		return kc_seterr(err, "out of memory"), -1;
	}
	p->e = e;
	e[p->n].key = key;
	e[p->n].value = value;
	e[p->n].from_credentials_file = creds;
	p->n++;
	return 0;
}

/* One "key = value" line of the section now open (profile NULL: not a profile). */
static int parse_line(struct kc_aws_profiles *p, const char *profile, const char *line, size_t n, bool creds,
		      const char *path, unsigned lineno, struct kc_err *err)
{
	size_t k = strcspn(line, "=:");
	char *key, *value;

	if (k >= n)
		return kc_seterr(err, "%s:%u: expected 'key = value'", path, lineno), -1;
	if (!profile)
		return 0;
	key = trimmed(line, k);
	value = trimmed(line + k + 1, n - k - 1);
	if (!key || !value) {
		free(key);
		kc_free_secret(value);
		return kc_seterr(err, "out of memory"), -1;
	}
	for (char *c = key; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return add_entry(p, profile, key, value, creds, path, lineno, err);
}

/* "[name]": the profile it opens (NULL: a section that is not a profile). */
static int open_section(const char *t, size_t len, bool creds, char **profile)
{
	const char *close = memchr(t, ']', len);
	char *name;

	if (!close)
		return -1;
	name = trimmed(t + 1, (size_t)(close - t - 1));
	free(*profile);
	*profile = name ? profile_of_section(name, creds) : NULL;
	free(name);
	return 0;
}

static int parse_ini(struct kc_aws_profiles *p, const char *data, bool creds, const char *path, struct kc_err *err)
{
	char *profile = NULL;
	bool in_section = false, have_key = false;
	size_t key_indent = 0;
	unsigned lineno = 0;
	int rc = 0;

	for (const char *line = data; *line && rc == 0;) {
		size_t n = strcspn(line, "\n");
		const char *t = line;

		lineno++;
		while (t < line + n && isspace((unsigned char)*t))
			t++;
		if (t == line + n || *t == '#' || *t == ';' || (have_key && (size_t)(t - line) > key_indent)) {
			/* blank, comment, or a continuation line */
		} else if (*t == '[') {
			if (open_section(t, (size_t)(line + n - t), creds, &profile) < 0) {
				kc_seterr(err, "%s:%u: a section header needs a closing ']'", path, lineno);
				rc = -1;
			}
			in_section = true;
			have_key = false;
		} else if (!in_section) {
			kc_seterr(err, "%s:%u: a key before the first [section]", path, lineno);
			rc = -1;
		} else {
			rc = parse_line(p, profile, t, (size_t)(line + n - t), creds, path, lineno, err);
			have_key = true;
			key_indent = (size_t)(t - line);
		}
		line += n;
		if (*line)
			line++;
	}
	free(profile);
	return rc;
}

int kc_aws_read_user_file(const char *path, size_t max, struct kc_buf *out, struct kc_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	int rc;

	if (fd < 0)
		return errno == ENOENT ? 1 : (kc_seterr(err, "cannot open %s: %s", path, strerror(errno)), -1);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kc_seterr(err, "%s is not a regular file", path), -1;
	}
	rc = kc_read_fd(fd, max, out, err);
	close(fd);
	if (rc < 0)
		kc_seterr(err, "%s: %s", path, err->msg);
	return rc < 0 ? -1 : 0;
}

static int load_one(struct kc_aws_profiles *p, const char *path, bool creds, unsigned flags, struct kc_err *err)
{
	kc_autobuf struct kc_buf data = { .secret = true };
	int rc;

	if (!path)
		return 0;
	if (flags & KC_AWS_FILES_ROOT_ONLY)
		rc = kc_read_root_file(path, KC_CREDENTIAL_MAX, 077, true, &data, err);
	else
		rc = kc_aws_read_user_file(path, PROFILE_FILE_MAX, &data, err);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	return parse_ini(p, data.data ? data.data : "", creds, path, err);
}

int kc_aws_profiles_load(struct kc_aws_profiles *p, const char *config_file, const char *credentials_file,
			 unsigned flags, struct kc_err *err)
{
	memset(p, 0, sizeof(*p));
	if (load_one(p, config_file, false, flags, err) < 0 || load_one(p, credentials_file, true, flags, err) < 0) {
		kc_aws_profiles_free(p);
		return -1;
	}
	return 0;
}

const char *kc_aws_profile_get(const struct kc_aws_profiles *p, const char *profile, const char *key, int from)
{
	const char *found = NULL;

	for (size_t i = 0; i < p->n; i++) {
		const struct kc_aws_profile_entry *e = &p->e[i];

		if ((from == 1 && e->from_credentials_file) || (from == 2 && !e->from_credentials_file))
			continue;
		if (strcmp(e->profile, profile) == 0 && strcmp(e->key, key) == 0) {
			found = e->value;
			if (e->from_credentials_file)
				break;
		}
	}
	return found;
}

bool kc_aws_profile_exists(const struct kc_aws_profiles *p, const char *profile)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].profile, profile) == 0)
			return true;
	return false;
}

void kc_aws_profiles_free(struct kc_aws_profiles *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].profile);
		free(p->e[i].key);
		kc_free_secret(p->e[i].value);
	}
	free(p->e);
	memset(p, 0, sizeof(*p));
}

int kc_aws_profile_keys(const struct kc_aws_profiles *p, const char *profile, int from, struct kc_aws_credentials *out,
			struct kc_err *err)
{
	const char *akid = kc_aws_profile_get(p, profile, "aws_access_key_id", from);
	const char *secret = kc_aws_profile_get(p, profile, "aws_secret_access_key", from);
	const char *token = kc_aws_profile_get(p, profile, "aws_session_token", from);

	memset(out, 0, sizeof(*out));
	if (!token)
		token = kc_aws_profile_get(p, profile, "aws_security_token", from);
	if (!akid && !secret)
		return 1;
	if (!akid || !secret || !*akid || !*secret)
		return kc_seterr(err, "profile [%s] has only one of aws_access_key_id and aws_secret_access_key",
				 profile),
		       -1;
	return kc_aws_credentials_set(out, akid, secret, token, err);
}

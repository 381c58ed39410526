/* AWS credentials: a shared credentials file, the instance role through IMDSv2,
 * STS AssumeRole; cached root-only until shortly before they expire. */
#include "kc_aws.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "kc_http.h"
#include "kc_json.h"
#include "kc_log.h"
#include "kc_cache.h"

#define CACHE_MARGIN 300 /* refresh credentials this long before they expire */
#define STS_VERSION "2011-06-15"

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

/* INI: [profile] or [profile NAME] sections of key = value lines. */
static int parse_ini(const char *data, const char *profile, struct kc_aws_credentials *out)
{
	bool in = false;

	for (const char *line = data; line && *line;) {
		size_t n = strcspn(line, "\n");
		const char *eq = memchr(line, '=', n);
		char *t = trimmed(line, n);

		if (t && t[0] == '[') {
			char *close = strchr(t, ']');
			char *name = t + 1;

			if (close)
				*close = '\0';
			if (strncmp(name, "profile ", 8) == 0)
				name += 8;
			while (isspace((unsigned char)*name))
				name++;
			in = strcmp(name, profile) == 0;
		} else if (in && eq && t && t[0] != '#' && t[0] != ';') {
			char *key = trimmed(line, (size_t)(eq - line));
			char *value = trimmed(eq + 1, n - (size_t)(eq - line) - 1);
			char **slot = NULL;

			if (key && strcmp(key, "aws_access_key_id") == 0)
				slot = &out->access_key_id;
			else if (key && strcmp(key, "aws_secret_access_key") == 0)
				slot = &out->secret_access_key;
			else if (key && strcmp(key, "aws_session_token") == 0)
				slot = &out->session_token;
			if (slot) {
				kc_free_secret(*slot);
				*slot = value;
				value = NULL;
			}
			free(key);
			kc_free_secret(value);
		}
		kc_free_secret(t);
		line += n;
		if (*line)
			line++;
	}
	return out->access_key_id && out->secret_access_key ? 0 : -1;
}

int kc_aws_credentials_from_file(const char *path, const char *profile, bool trusted_root,
				 struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf data = { .secret = true };
	struct kc_err e;

	memset(out, 0, sizeof(*out));
	if (trusted_root) {
		if (kc_read_root_file(path, KC_CREDENTIAL_MAX, 077, true, &data, &e) < 0) {
			kc_seterr(err, "credentials_file: %s", e.msg);
			return -1;
		}
	} else {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		char chunk[4096];
		ssize_t n;
		struct stat st;

		if (fd < 0)
			return kc_seterr(err, "cannot open %s: %s", path, strerror(errno)), -1;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return kc_seterr(err, "%s is not a regular file", path), -1;
		}
		while ((n = read(fd, chunk, sizeof(chunk))) > 0 && data.len <= KC_CREDENTIAL_MAX)
			kc_buf_append(&data, chunk, (size_t)n);
		explicit_bzero(chunk, sizeof(chunk));
		close(fd);
	}
	if (parse_ini(data.data ? data.data : "", profile, out) < 0) {
		kc_aws_credentials_clear(out);
		kc_seterr(err, "%s: no aws_access_key_id and aws_secret_access_key in profile [%s]", path, profile);
		return -1;
	}
	return 0;
}

/* ---- IMDSv2 ----------------------------------------------------------------- */

static long imds_call(const char *method, const char *url, const char *const *headers, long long deadline,
		      struct kc_buf *resp, struct kc_err *err)
{
	long long left = deadline - kc_now_ms();
	struct kc_http_call c = { method, url, headers, NULL, 0, NULL, true, 0, 0 };

	if (left < 1)
		return kc_seterr(err, "instance metadata: out of time"), -1;
	c.connect_timeout_ms = left < 1000 ? (long)left : 1000;
	c.timeout_ms = (long)left;
	resp->len = 0;
	return kc_http(&c, resp, err);
}

int kc_aws_credentials_from_imds(const char *base_url, long timeout_ms, struct kc_aws_credentials *out,
				 struct kc_err *err)
{
	const char *base = base_url ? base_url : "http://169.254.169.254";
	long long deadline = kc_now_ms() + timeout_ms;
	kc_autobuf struct kc_buf token = { .secret = true }, resp = { .secret = true }, hdr = { .secret = true };
	char url[512], role[256];
	const char *put_hdrs[] = { "X-aws-ec2-metadata-token-ttl-seconds: 300", NULL };
	const char *get_hdrs[] = { NULL, NULL };
	const char *akid = NULL, *secret = NULL, *session = NULL, *expiration = NULL, *code = NULL;
	json_t *j;
	long status;
	size_t n;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	status = imds_call("PUT", url, put_hdrs, deadline, &token, err);
	if (status < 0)
		return kc_seterr(err, "instance metadata (IMDSv2): %s", err->msg), -1;
	if (status != 200 || !token.data || !token.len)
		return kc_seterr(err,
				 "instance metadata at %s refused the IMDSv2 session token (HTTP %ld); IMDSv1 is not "
				 "used: require IMDSv2 on the instance (HttpTokens=required)",
				 base, status),
		       -1;
	kc_buf_printf(&hdr, "X-aws-ec2-metadata-token: %s", token.data);
	get_hdrs[0] = hdr.data;

	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
	status = imds_call("GET", url, get_hdrs, deadline, &resp, err);
	if (status < 0)
		return kc_seterr(err, "instance metadata: %s", err->msg), -1;
	if (status == 401)
		return kc_seterr(err, "instance metadata refused the session token (401)"), -1;
	if (status == 404 || (status == 200 && (!resp.data || !resp.len)))
		return kc_seterr(err, "instance metadata lists no IAM role: attach an instance profile to this host"),
		       -1;
	if (status != 200)
		return kc_seterr(err, "instance metadata: listing roles gave HTTP %ld", status), -1;
	n = strcspn(resp.data, "\r\n");
	if (n == 0 || n >= sizeof(role))
		return kc_seterr(err, "instance metadata lists no usable IAM role name"), -1;
	memcpy(role, resp.data, n);
	role[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)role[i]) && !strchr("+=,.@_-", role[i]))
			return kc_seterr(err, "instance metadata gave an invalid role name"), -1;

	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base, role);
	status = imds_call("GET", url, get_hdrs, deadline, &resp, err);
	if (status < 0)
		return kc_seterr(err, "instance metadata: %s", err->msg), -1;
	if (status != 200)
		return kc_seterr(err, "instance metadata: credentials of role %s gave HTTP %ld", role, status), -1;
	j = json_loadb(resp.data ? resp.data : "", resp.len, JSON_REJECT_DUPLICATES, NULL);
	if (!j ||
	    json_unpack(j, "{s?s, s?s, s?s, s?s, s?s}", "Code", &code, "AccessKeyId", &akid, "SecretAccessKey", &secret,
			"Token", &session, "Expiration", &expiration) < 0 ||
	    !akid || !secret || !session || !expiration || (code && strcmp(code, "Success") != 0)) {
		json_decref(j);
		return kc_seterr(err,
				 "instance metadata: the credentials of role %s miss AccessKeyId, "
				 "SecretAccessKey, Token or Expiration",
				 role),
		       -1;
	}
	if (kc_parse_time(expiration, &out->expiration) < 0 || out->expiration <= time(NULL)) {
		json_decref(j);
		return kc_seterr(err, "instance metadata: the credentials of role %s have expired", role), -1;
	}
	out->access_key_id = strdup(akid);
	out->secret_access_key = strdup(secret);
	out->session_token = strdup(session);
	json_decref(j);
	if (!out->access_key_id || !out->secret_access_key || !out->session_token) {
		kc_aws_credentials_clear(out);
		return kc_seterr(err, "out of memory"), -1;
	}
	return 0;
}

int kc_imds_probe_result(void)
{
	struct kc_err e;
	kc_autoclose int dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	kc_autoclose int fd = -1;
	char buf[16] = "";

	if (dir < 0 || (fd = openat(dir, KC_IMDS_PROBE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (kc_read_all(fd, buf, sizeof(buf) - 1) <= 0)
		return -1;
	return strncmp(buf, "reachable", 9) == 0 ? 1 : 0;
}

void kc_imds_probe_record(bool reachable)
{
	struct kc_err e;
	kc_autoclose int dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	kc_autoclose int fd = -1;
	const char *text = reachable ? "reachable\n" : "blocked\n";

	if (dir < 0)
		return;
	fd = openat(dir, KC_IMDS_PROBE_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		kc_write_all(fd, text, strlen(text));
}

/* ---- STS AssumeRole ----------------------------------------------------------- */

/* The text of <tag>...</tag> in an STS XML answer (its values never hold '<'). */
static char *xml_value(const char *xml, const char *tag)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(xml, open);
	if (!a)
		return NULL;
	a += strlen(open);
	b = strstr(a, close);
	return b ? strndup(a, (size_t)(b - a)) : NULL;
}

static const char *host_of(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	snprintf(out, len, "%.*s", (int)strcspn(p, "/"), p);
	return out;
}

int kc_aws_assume_role(const struct kc_aws_endpoint *sts, const char *region, const char *role_arn,
		       const char *session_name, const struct kc_aws_credentials *cred, time_t now,
		       struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf body = { 0 }, resp = { .secret = true }, auth = { .secret = true }, date = { 0 },
				 token = { .secret = true }, url = { 0 };
	struct kc_sigv4_header h[3];
	struct kc_sigv4_result sig;
	char host[256];
	const char *headers[6];
	size_t nh = 0;
	long status;
	char *expiration;

	memset(out, 0, sizeof(*out));
	kc_buf_puts(&body, "Action=AssumeRole&DurationSeconds=3600&RoleArn=");
	kc_aws_uri_encode(&body, role_arn, strlen(role_arn), false);
	kc_buf_puts(&body, "&RoleSessionName=");
	kc_aws_uri_encode(&body, session_name, strlen(session_name), false);
	kc_buf_puts(&body, "&Version=" STS_VERSION);
	kc_buf_printf(&url, "%s/", sts->url);
	host_of(sts->url, host, sizeof(host));
	h[0] = (struct kc_sigv4_header){ "Host", host };
	h[1] = (struct kc_sigv4_header){ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" };
	{
		struct kc_sigv4_request r = { "POST", "/", NULL, h, 2, body.data, body.len };
		struct kc_sigv4_options o = { region, "sts", now, false, 0, true, false, false };

		if (kc_sigv4_sign(&r, cred, &o, &sig, err) < 0)
			return -1;
	}
	kc_buf_printf(&auth, "Authorization: %s", sig.authorization.data);
	kc_buf_printf(&date, "X-Amz-Date: %s", sig.amz_date);
	headers[nh++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
	headers[nh++] = date.data;
	headers[nh++] = auth.data;
	if (cred->session_token) {
		kc_buf_printf(&token, "X-Amz-Security-Token: %s", cred->session_token);
		headers[nh++] = token.data;
	}
	headers[nh] = NULL;
	kc_sigv4_result_free(&sig);
	{
		struct kc_http_call c = { "POST",	  url.data,	headers, body.data,
					  body.len,	  sts->ca_file, false,	 sts->connect_timeout_ms,
					  sts->timeout_ms };

		status = kc_http(&c, &resp, err);
	}
	if (status < 0)
		return kc_seterr(err, "sts AssumeRole: %s", err->msg), -1;
	if (status != 200) {
		char *code = resp.data ? xml_value(resp.data, "Code") : NULL;
		char *message = resp.data ? xml_value(resp.data, "Message") : NULL;

		kc_seterr(err, "sts AssumeRole %s failed (HTTP %ld%s%s%s%.200s)", role_arn, status, code ? " " : "",
			  code ? code : "", message ? ": " : "", message ? message : "");
		free(code);
		free(message);
		return -1;
	}
	out->access_key_id = xml_value(resp.data, "AccessKeyId");
	out->secret_access_key = xml_value(resp.data, "SecretAccessKey");
	out->session_token = xml_value(resp.data, "SessionToken");
	expiration = xml_value(resp.data, "Expiration");
	if (!out->access_key_id || !out->secret_access_key || !out->session_token || !expiration ||
	    kc_parse_time(expiration, &out->expiration) < 0) {
		free(expiration);
		kc_aws_credentials_clear(out);
		return kc_seterr(err, "sts AssumeRole %s: the answer holds no credentials", role_arn), -1;
	}
	free(expiration);
	return 0;
}

/* ---- the helper's chain, with a root-only cache ------------------------------- */

static void cache_key(const struct kc_eks_ref *a, char out[80])
{
	kc_autobuf struct kc_buf k = { 0 };
	char hex[65];

	kc_buf_printf(&k, "%s|%s|%s|%s|%s|%s", a->credentials_file ? a->credentials_file : "",
		      a->profile ? a->profile : "", a->role_arn ? a->role_arn : "", a->region,
		      a->imds_endpoint ? a->imds_endpoint : "", a->sts_endpoint ? a->sts_endpoint : "");
	kc_sha256_hex(k.data, k.len, hex);
	snprintf(out, 80, "aws-credentials-%.24s", hex);
}

static int cache_load(const char *name, struct kc_aws_credentials *out)
{
	kc_autoclose int dir = -1, fd = -1;
	struct kc_err e;
	char buf[8192];
	ssize_t n;
	json_t *j;
	const char *akid, *secret, *token = NULL;
	json_int_t exp;

	dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	if (dir < 0 || (fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	n = kc_read_all(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	j = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	explicit_bzero(buf, sizeof(buf));
	if (!j)
		return -1;
	if (json_unpack(j, "{s:s, s:s, s?s, s:I}", "AccessKeyId", &akid, "SecretAccessKey", &secret, "Token", &token,
			"Expiration", &exp) < 0 ||
	    (exp && exp - CACHE_MARGIN <= time(NULL))) {
		json_decref(j);
		return -1;
	}
	out->access_key_id = strdup(akid);
	out->secret_access_key = strdup(secret);
	out->session_token = token ? strdup(token) : NULL;
	out->expiration = (time_t)exp;
	json_decref(j);
	return 0;
}

static void cache_store(const char *name, const struct kc_aws_credentials *c)
{
	kc_autoclose int dir = -1, fd = -1;
	struct kc_err e;
	char tmp[128];
	json_t *j;
	char *text;

	if (!c->expiration)
		return; /* long-lived keys from a file: nothing to gain */
	dir = kc_open_state_dir(KC_CACHE_DIR, &e);
	if (dir < 0)
		return;
	j = json_pack("{s:s, s:s, s:s?, s:I}", "AccessKeyId", c->access_key_id, "SecretAccessKey", c->secret_access_key,
		      "Token", c->session_token, "Expiration", (json_int_t)c->expiration);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return;
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && kc_write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0)
		renameat(dir, tmp, dir, name);
	else
		unlinkat(dir, tmp, 0);
	kc_json_free(text);
}

int kc_aws_helper_credentials(const struct kc_config *cfg, const struct kc_eks_ref *a, struct kc_aws_credentials *out,
			      struct kc_err *err)
{
	char name[80];
	struct kc_aws_credentials base = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!a->credentials_file && kc_imds_probe_result() == 1)
		kc_warn("the instance metadata service was reachable by an unprivileged user when "
			"`pam-kubeconfig check --online` last ran: any local user can take the instance role; "
			"apply the firewall rule shipped as imds.nft");
	cache_key(a, name);
	if (cache_load(name, out) == 0)
		return 0;
	if (a->credentials_file)
		rc = kc_aws_credentials_from_file(a->credentials_file, a->profile ? a->profile : "default", true, &base,
						  err);
	else
		rc = kc_aws_credentials_from_imds(a->imds_endpoint, cfg->connect_timeout_ms, &base, err);
	if (rc < 0)
		return -1;
	if (a->role_arn && *a->role_arn) {
		char sts_url[512], session[128], host[64] = "";
		struct kc_aws_endpoint sts = { sts_url, a->endpoint_ca, cfg->connect_timeout_ms,
					       cfg->request_timeout_ms };

		if (a->sts_endpoint)
			snprintf(sts_url, sizeof(sts_url), "%s", a->sts_endpoint);
		else
			snprintf(sts_url, sizeof(sts_url), "https://sts.%s.amazonaws.com", a->region);
		gethostname(host, sizeof(host) - 1);
		for (char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("+=,.@-", *p))
				*p = '-';
		snprintf(session, sizeof(session), "pam-kubeconfig-%.40s", host);
		rc = kc_aws_assume_role(&sts, a->region, a->role_arn, session, &base, time(NULL), out, err);
		kc_aws_credentials_clear(&base);
		if (rc < 0)
			return -1;
	} else {
		*out = base;
	}
	cache_store(name, out);
	return 0;
}

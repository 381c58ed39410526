/* Where AWS credentials come from besides files and STS: the instance role
 * (IMDSv2), the container endpoint (ECS, EKS Pod Identity) and a
 * credential_process, each bounded by the caller's deadline. */
#include "aws/aws_sources.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "aws/http.h"
#include "common/json_alloc.h"
#include "common/subprocess.h"

/* A string member, NULL when absent or null; *bad set when it is another type. */
static const char *member(json_t *j, const char *key, bool *bad)
{
	json_t *v = key ? json_object_get(j, key) : NULL;

	if (v && !json_is_null(v) && !json_is_string(v))
		*bad = true;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* AccessKeyId, SecretAccessKey, a session token and an expiry out of a JSON
 * object (token_key NULL: none expected). Returns 0, or -1 naming what is
 * missing (after "what"). */
static int unpack_credentials(json_t *j, const char *token_key, bool need_token, bool need_expiration, time_t now,
			      const char *what, struct kc_aws_credentials *out, struct kc_err *err)
{
	bool bad = false;
	const char *akid = member(j, "AccessKeyId", &bad), *secret = member(j, "SecretAccessKey", &bad);
	const char *token = member(j, token_key, &bad), *exp = member(j, "Expiration", &bad);

	memset(out, 0, sizeof(*out));
	if (bad || !akid || !secret || (need_token && !token) || (need_expiration && !exp))
		return kc_seterr(err, "%s: the answer lacks AccessKeyId, SecretAccessKey%s%s%s", what,
				 need_token ? ", " : "", need_token ? token_key : "",
				 need_expiration ? " or Expiration" : ""),
		       -1;
	if (exp && kc_parse_time(exp, &out->expiration) < 0)
		return kc_seterr(err, "%s: Expiration '%.40s' is not an RFC 3339 time", what, exp), -1;
	if (out->expiration && out->expiration <= now)
		return kc_seterr(err, "%s: the credentials expired at %s", what, exp), -1;
	return kc_aws_credentials_set(out, akid, secret, token, err);
}

/* ---- IMDSv2 ----------------------------------------------------------------- */

static long imds_call(const char *method, const char *url, const char *const *headers, long long deadline,
		      struct kc_buf *resp, struct kc_err *err)
{
	struct kc_http_call c = { .method = method,
				  .url = url,
				  .headers = headers,
				  .allow_http = true,
				  .connect_timeout_ms = 1000,
				  .deadline_ms = deadline };

	resp->len = 0;
	return kc_http(&c, resp, err);
}

static int imds_role(const char *base, const char *const *hdrs, long long deadline, char role[256], struct kc_err *err)
{
	kc_autobuf struct kc_buf resp = { .secret = true };
	char url[512];
	long status;
	size_t n;

	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
	status = imds_call("GET", url, hdrs, deadline, &resp, err);
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
	if (n == 0 || n >= 256)
		return kc_seterr(err, "instance metadata lists no usable IAM role name"), -1;
	memcpy(role, resp.data, n);
	role[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)role[i]) && !strchr("+=,.@_-", role[i]))
			return kc_seterr(err, "instance metadata gave an invalid role name"), -1;
	return 0;
}

int kc_aws_credentials_from_imds(const char *base_url, long long deadline_ms, struct kc_aws_credentials *out,
				 struct kc_err *err)
{
	const char *base = base_url ? base_url : "http://169.254.169.254";
	kc_autobuf struct kc_buf token = { .secret = true }, resp = { .secret = true }, hdr = { .secret = true };
	const char *put_hdrs[] = { "X-aws-ec2-metadata-token-ttl-seconds: 300", NULL };
	const char *get_hdrs[] = { NULL, NULL };
	char url[512], role[256], what[320];
	long status;
	json_t *j;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	status = imds_call("PUT", url, put_hdrs, deadline_ms, &token, err);
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
	if (imds_role(base, get_hdrs, deadline_ms, role, err) < 0)
		return -1;
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base, role);
	status = imds_call("GET", url, get_hdrs, deadline_ms, &resp, err);
	if (status < 0)
		return kc_seterr(err, "instance metadata: %s", err->msg), -1;
	if (status != 200)
		return kc_seterr(err, "instance metadata: credentials of role %s gave HTTP %ld", role, status), -1;
	j = json_loadb(resp.data ? resp.data : "", resp.len, JSON_REJECT_DUPLICATES, NULL);
	snprintf(what, sizeof(what), "instance metadata: the credentials of role %s", role);
	if (j && json_is_string(json_object_get(j, "Code")) &&
	    strcmp(json_string_value(json_object_get(j, "Code")), "Success") != 0) {
		json_decref(j);
		return kc_seterr(err, "%s: IMDS reports a failure (Code is not Success)", what), -1;
	}
	rc = j ? unpack_credentials(j, "Token", true, true, time(NULL), what, out, err)
	       : (kc_seterr(err, "%s: the answer is not JSON", what), -1);
	json_decref(j);
	if (rc < 0 && strstr(err->msg, "the answer lacks"))
		kc_seterr(err, "%s miss AccessKeyId, SecretAccessKey, Token or Expiration", what);
	else if (rc < 0 && strstr(err->msg, "expired"))
		kc_seterr(err, "%s have expired", what);
	return rc;
}

/* ---- container credentials ----------------------------------------------------- */

/* botocore's rule: any https; plain http to a loopback address (127.0.0.0/8,
 * ::1) or to the ECS and EKS Pod Identity agents. */
static bool allowed_http_host(const char *host)
{
	static const char *const agents[] = { "169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost" };
	struct in_addr v4;
	struct in6_addr v6;

	for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
		if (strcmp(host, agents[i]) == 0)
			return true;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

int kc_aws_container_url_allowed(const char *url, struct kc_err *err)
{
	char host[256];
	const char *h;
	size_t n;

	if (strncmp(url, "https://", 8) == 0)
		return 0;
	if (strncmp(url, "http://", 7) != 0)
		return kc_seterr(err, "container credentials URI '%s' must be http:// or https://", url), -1;
	h = url + 7;
	if (h[0] == '[') {
		h++;
		n = strcspn(h, "]");
	} else {
		n = strcspn(h, ":/?#");
	}
	if (n < sizeof(host)) {
		memcpy(host, h, n);
		host[n] = '\0';
		if (allowed_http_host(host))
			return 0;
	}
	return kc_seterr(err,
			 "container credentials URI '%s': plain http only to a loopback address, 169.254.170.2, "
			 "169.254.170.23 or [fd00:ec2::23]",
			 url),
	       -1;
}

int kc_aws_credentials_from_container(const char *url, const char *authorization, const struct kc_aws_budget *b,
				      struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf resp = { .secret = true }, auth = { .secret = true };
	const char *hdrs[] = { "Accept: application/json", NULL, NULL };
	struct kc_http_call c = { .method = "GET",
				  .url = url,
				  .headers = hdrs,
				  .ca_file = b->ca_file,
				  .allow_http = true,
				  .connect_timeout_ms = b->connect_timeout_ms,
				  .timeout_ms = b->timeout_ms,
				  .deadline_ms = b->deadline_ms };
	long status;
	json_t *j;
	int rc;

	memset(out, 0, sizeof(*out));
	if (kc_aws_container_url_allowed(url, err) < 0)
		return -1;
	if (authorization) {
		if (strpbrk(authorization, "\r\n"))
			return kc_seterr(err, "the container authorization token holds a line break"), -1;
		kc_buf_printf(&auth, "Authorization: %s", authorization);
		hdrs[1] = auth.data;
	}
	status = kc_http(&c, &resp, err);
	if (status < 0)
		return kc_seterr(err, "container credentials: %s", err->msg), -1;
	if (status != 200)
		return kc_seterr(err, "container credentials at %s answered HTTP %ld", url, status), -1;
	j = json_loadb(resp.data ? resp.data : "", resp.len, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return kc_seterr(err, "container credentials at %s: the answer is not JSON", url), -1;
	rc = unpack_credentials(j, "Token", true, true, time(NULL), "container credentials", out, err);
	json_decref(j);
	return rc;
}

/* ---- credential_process --------------------------------------------------------- */

int kc_aws_process_output_parse(const char *text, size_t len, time_t now, struct kc_aws_credentials *out,
				struct kc_err *err)
{
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *version = j ? json_object_get(j, "Version") : NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j)) {
		json_decref(j);
		return kc_seterr(err, "credential_process: its output is not a JSON object"), -1;
	}
	if (!json_is_integer(version) || json_integer_value(version) != 1) {
		json_decref(j);
		return kc_seterr(err, "credential_process: unsupported Version (only 1 is defined)"), -1;
	}
	rc = unpack_credentials(j, "SessionToken", false, false, now, "credential_process", out, err);
	json_decref(j);
	return rc;
}

static int add_word(char ***words, size_t *n, struct kc_buf *w)
{
	char **v = realloc(*words, (*n + 2) * sizeof(**words));

	if (!v)
		return -1;
	*words = v;
	v[(*n)++] = w->data ? w->data : strdup("");
	v[*n] = NULL;
	*w = (struct kc_buf){ 0 };
	return v[*n - 1] ? 0 : -1;
}

int kc_aws_split_words(const char *line, char ***words, size_t *n, struct kc_err *err)
{
	kc_autobuf struct kc_buf w = { 0 };
	bool in_word = false;
	char quote = 0;

	*words = NULL;
	*n = 0;
	for (const char *p = line;; p++) {
		char ch = *p;

		if (!ch && quote)
			break;
		if (!ch || (!quote && isspace((unsigned char)ch))) {
			if (in_word && add_word(words, n, &w) < 0)
				goto oom;
			in_word = false;
			if (!ch)
				return *n ? 0 : (kc_seterr(err, "credential_process is empty"), -1);
			continue;
		}
		in_word = true;
		if (!quote && (ch == '\'' || ch == '"')) {
			quote = ch;
			continue;
		}
		if (quote && ch == quote) {
			quote = 0;
			continue;
		}
		if (ch == '\\' && quote != '\'' && p[1] && (!quote || strchr("\\\"$`", p[1])))
			ch = *++p;
		if (kc_buf_append(&w, &ch, 1) < 0)
			goto oom;
	}
	kc_seterr(err, "credential_process has an unterminated quote");
	goto fail;
oom:
	kc_seterr(err, "out of memory");
fail:
	for (size_t i = 0; i < *n; i++)
		free((*words)[i]);
	free(*words);
	*words = NULL;
	*n = 0;
	return -1;
}

/* The program: as given when it holds a '/', else found on envp's PATH. */
static int find_program(const char *word, char *const *envp, char *out, size_t len)
{
	const char *path = "/usr/local/bin:/usr/bin:/bin";

	if (strchr(word, '/'))
		return snprintf(out, len, "%s", word) < (int)len ? 0 : -1;
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		if (n && snprintf(out, len, "%.*s/%s", (int)n, p, word) < (int)len && access(out, X_OK) == 0)
			return 0;
		p += n;
		if (*p)
			p++;
	}
	return -1;
}

/* Runs it within the deadline; its stdout (a secret) into out, which holds
 * KC_AWS_PROCESS_OUTPUT_MAX + 1 bytes. */
static int run_process(const char *program, char **argv, char *const *envp, long long deadline_ms, char *out,
		       size_t *out_len, struct kc_err *err)
{
	char errtext[4096];
	long long left = (deadline_ms ? deadline_ms : kc_now_ms() + 60000) - kc_now_ms();
	const struct kc_subprocess p = {
		.path = program, .argv = argv, .envp = envp, .timeout_ms = left > 0x7fffffff ? 0x7fffffff : (int)left
	};
	struct kc_subprocess_output o = {
		.out = out, .out_cap = KC_AWS_PROCESS_OUTPUT_MAX + 1, .err = errtext, .err_cap = sizeof(errtext)
	};
	struct kc_subprocess_result r;

	if (kc_subprocess_run(&p, &o, &r) < 0)
		return kc_seterr(err, "credential_process: cannot start %s: %s", program, strerror(r.error)), -1;
	*out_len = o.out_len;
	if (o.out_overflow)
		return kc_seterr(err, "credential_process wrote more than %u bytes", KC_AWS_PROCESS_OUTPUT_MAX), -1;
	if (r.timed_out)
		return kc_seterr(err, "credential_process did not finish in time"), -1;
	if (r.exit_status != 0)
		return kc_seterr(err, "credential_process %s %s%s%.200s", program,
				 r.exit_status < 0 ? "was killed or did not finish in time" : "failed",
				 o.err_len ? ": " : "", o.err_len ? errtext : ""),
		       -1;
	return 0;
}

int kc_aws_credentials_from_process(const char *command, char *const *envp, long long deadline_ms,
				    struct kc_aws_credentials *out, struct kc_err *err)
{
	char program[4096], **argv = NULL, *output = NULL;
	size_t argc = 0, len = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (deadline_ms && kc_now_ms() >= deadline_ms)
		return kc_seterr(err, "credential_process: no time left to run it"), -1;
	if (kc_aws_split_words(command, &argv, &argc, err) < 0)
		return -1;
	if (find_program(argv[0], envp, program, sizeof(program)) < 0) {
		kc_seterr(err, "credential_process: cannot find the program '%s'", argv[0]);
		goto out;
	}
	output = malloc(KC_AWS_PROCESS_OUTPUT_MAX + 1);
	if (!output) {
		kc_seterr(err, "out of memory");
		goto out;
	}
	if (run_process(program, argv, envp, deadline_ms, output, &len, err) == 0)
		rc = kc_aws_process_output_parse(output, len, time(NULL), out, err);
out:
	if (output) {
		explicit_bzero(output, KC_AWS_PROCESS_OUTPUT_MAX + 1);
		free(output);
	}
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

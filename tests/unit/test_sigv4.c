/* The AWS SigV4 test suite (tests/data/aws-sigv4-suite, from aws-c-auth): every
 * intermediate file of every case, header and query signing, byte for byte. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "aws/aws_sigv4.h"

#define SUITE "tests/data/aws-sigv4-suite"

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *data;
	long n;

	snprintf(path, sizeof(path), "%s/%s/%s", SUITE, dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return data;
}

struct parsed {
	char *text;
	char method[16];
	char *path;
	char *query;
	struct kc_sigv4_header headers[32];
	char *header_lines; /* the raw header block, as it appears */
	size_t n_headers;
	const char *body;
	size_t body_len;
};

/* request.txt: "METHOD PATH[?QUERY] HTTP/1.1", header lines (a line starting
 * with whitespace continues the previous one), a blank line, the body. */
static void parse_request(const char *dir, struct parsed *p)
{
	char *line, *end, *rest, *sp;
	size_t len;

	memset(p, 0, sizeof(*p));
	p->text = slurp(dir, "request.txt", &len);
	end = strchr(p->text, '\n');
	*end = '\0';
	rest = end + 1;
	sp = strchr(p->text, ' ');
	*sp = '\0';
	snprintf(p->method, sizeof(p->method), "%s", p->text);
	line = sp + 1;
	sp = strstr(line, " HTTP/1.1");
	*sp = '\0';
	p->path = line;
	if ((sp = strchr(line, '?'))) {
		*sp = '\0';
		p->query = sp + 1;
	}
	p->header_lines = strdup(rest);
	{
		char *hb = strstr(p->header_lines, "\n\n");

		if (hb)
			hb[1] = '\0';
	}
	while (*rest && *rest != '\n') {
		char *colon, *next = rest;

		/* the header ends at a newline not followed by whitespace */
		for (;;) {
			next = strchr(next, '\n');
			if (!next) {
				next = rest + strlen(rest);
				break;
			}
			if (next[1] != ' ' && next[1] != '\t')
				break;
			next++;
		}
		colon = strchr(rest, ':');
		*colon = '\0';
		p->headers[p->n_headers].name = rest;
		p->headers[p->n_headers].value = colon + 1;
		p->n_headers++;
		if (!*next) {
			rest = next;
			break;
		}
		*next = '\0';
		rest = next + 1;
	}
	if (*rest == '\n') {
		p->body = rest + 1;
		p->body_len = strlen(p->body);
	}
}

static void check_file(const char *dir, const char *name, const char *got, size_t got_len)
{
	size_t len;
	char *want = slurp(dir, name, &len);

	if (len != got_len || memcmp(want, got, len) != 0)
		fail_msg("%s/%s differs:\n--- want\n%s\n--- got\n%.*s", dir, name, want, (int)got_len, got);
	free(want);
}

static void run_case(void **state)
{
	const char *dir = *state;
	char *ctx_text = slurp(dir, "context.json", NULL);
	json_t *ctx = json_loads(ctx_text, 0, NULL);
	const char *akid, *secret, *token = NULL, *region, *service, *ts;
	int normalize, sign_body, omit = 0;
	json_int_t expires;
	struct tm tm = { 0 };
	struct kc_aws_credentials cred = { 0 };
	struct parsed req;
	struct kc_err err;

	assert_non_null(ctx);
	assert_int_equal(json_unpack(ctx, "{s:{s:s, s:s, s?s}, s:I, s:b, s:s, s:s, s:b, s:s, s?b}", "credentials",
				     "access_key_id", &akid, "secret_access_key", &secret, "token", &token,
				     "expiration_in_seconds", &expires, "normalize", &normalize, "region", &region,
				     "service", &service, "sign_body", &sign_body, "timestamp", &ts,
				     "omit_session_token", &omit),
			 0);
	cred.access_key_id = strdup(akid);
	cred.secret_access_key = strdup(secret);
	cred.session_token = token ? strdup(token) : NULL;
	strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	parse_request(dir, &req);

	for (int presign = 0; presign <= 1; presign++) {
		struct kc_sigv4_request r = { req.method,    req.path, req.query,   req.headers,
					      req.n_headers, req.body, req.body_len };
		struct kc_sigv4_options o = { region,	     service,	timegm(&tm), presign,
					      (long)expires, normalize, sign_body,   omit };
		struct kc_sigv4_result res;
		struct kc_buf signed_req = { 0 };
		const char *mode = presign ? "query" : "header";
		char name[64];

		assert_int_equal(kc_sigv4_sign(&r, &cred, &o, &res, &err), 0);
		snprintf(name, sizeof(name), "%s-canonical-request.txt", mode);
		check_file(dir, name, res.canonical_request.data, res.canonical_request.len);
		snprintf(name, sizeof(name), "%s-string-to-sign.txt", mode);
		check_file(dir, name, res.string_to_sign.data, res.string_to_sign.len);
		snprintf(name, sizeof(name), "%s-signature.txt", mode);
		check_file(dir, name, res.signature, strlen(res.signature));

		/* The signed request, in the suite's layout. */
		if (presign) {
			const struct kc_sigv4_param *order[] = { &res.algorithm,      &res.credential,
								 &res.date,	      &res.signed_headers_param,
								 &res.expires,	      &res.security_token,
								 &res.signature_param };

			kc_buf_printf(&signed_req, "%s %s?", req.method, req.path);
			if (req.query)
				kc_buf_printf(&signed_req, "%s&", req.query);
			for (size_t i = 0, first = 1; i < sizeof(order) / sizeof(order[0]); i++) {
				if (!order[i]->value)
					continue;
				kc_buf_printf(&signed_req, "%s%s=%s", first ? "" : "&", order[i]->key, order[i]->value);
				first = 0;
			}
			kc_buf_printf(&signed_req, " HTTP/1.1\n%s", req.header_lines);
		} else {
			kc_buf_printf(&signed_req, "%s %s%s%s HTTP/1.1\n%s", req.method, req.path, req.query ? "?" : "",
				      req.query ? req.query : "", req.header_lines);
			if (token)
				kc_buf_printf(&signed_req, "X-Amz-Security-Token:%s\n", token);
			kc_buf_printf(&signed_req, "X-Amz-Date:%s\n", res.amz_date);
			if (sign_body)
				kc_buf_printf(&signed_req, "x-amz-content-sha256:%s\n", res.content_sha256);
			kc_buf_printf(&signed_req, "Authorization:%s\n", res.authorization.data);
		}
		kc_buf_puts(&signed_req, "\n");
		if (req.body)
			kc_buf_append(&signed_req, req.body, req.body_len);
		snprintf(name, sizeof(name), "%s-signed-request.txt", mode);
		check_file(dir, name, signed_req.data, signed_req.len);
		kc_buf_free(&signed_req);
		kc_sigv4_result_free(&res);
	}
	kc_aws_credentials_clear(&cred);
	free(req.text);
	free(req.header_lines);
	json_decref(ctx);
	free(ctx_text);
}

int main(void)
{
	struct CMUnitTest *tests = NULL;
	size_t n = 0;
	DIR *d = opendir(SUITE);
	struct dirent *de;

	if (!d) {
		fprintf(stderr, "cannot open %s (run from the repository's top)\n", SUITE);
		return 1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		tests = realloc(tests, (n + 1) * sizeof(*tests));
		tests[n] = (struct CMUnitTest){ strdup(de->d_name), run_case, NULL, NULL, NULL };
		tests[n].initial_state = (void *)tests[n].name;
		n++;
	}
	closedir(d);
	return _cmocka_run_group_tests("aws-sigv4-suite", tests, n, NULL, NULL);
}

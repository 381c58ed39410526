/* STS: AssumeRole (SigV4 header-signed) and AssumeRoleWithWebIdentity
 * (unsigned), on the partition's STS host; the answer's credentials. */
#include "aws/aws_sts.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"

#include <stdio.h>
#include <string.h>

#include "aws/http.h"

#define STS_VERSION "2011-06-15"
#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

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

static void form_param(struct kc_buf *body, const char *key, const char *value)
{
	kc_buf_printf(body, "&%s=", key);
	kc_aws_uri_encode(body, value, strlen(value), false);
}

static int form(struct kc_buf *body, const char *action, const struct kc_aws_assume_role *a)
{
	kc_buf_printf(body, "Action=%s&Version=" STS_VERSION, action);
	if (a->duration_seconds > 0)
		kc_buf_printf(body, "&DurationSeconds=%ld", a->duration_seconds);
	if (a->external_id)
		form_param(body, "ExternalId", a->external_id);
	form_param(body, "RoleArn", a->role_arn);
	form_param(body, "RoleSessionName", a->session_name);
	return body->data ? 0 : -1;
}

/* Posts the form to STS and reads the credentials out of the answer. */
static int sts_post(const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b, const char *action,
		    const char *role_arn, const struct kc_buf *body, const char *const *headers,
		    struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf resp = { .secret = true }, url = { 0 };
	struct kc_http_call c = { .method = "POST",
				  .headers = headers,
				  .body = body->data,
				  .body_len = body->len,
				  .ca_file = b->ca_file,
				  .connect_timeout_ms = b->connect_timeout_ms,
				  .timeout_ms = b->timeout_ms,
				  .deadline_ms = b->deadline_ms };
	char *expiration;
	long status;

	kc_buf_printf(&url, "%s/", kc_aws_endpoint_target(sts));
	c.url = url.data;
	status = kc_http(&c, &resp, err);
	if (status < 0)
		return kc_seterr(err, "sts %s: %s", action, err->msg), -1;
	if (status != 200) {
		char *code = resp.data ? xml_value(resp.data, "Code") : NULL;
		char *message = resp.data ? xml_value(resp.data, "Message") : NULL;

		kc_seterr(err, "sts %s %s at %s failed (HTTP %ld%s%s%s%.200s)", action, role_arn, sts->host, status,
			  code ? " " : "", code ? code : "", message ? ": " : "", message ? message : "");
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
		return kc_seterr(err, "sts %s %s: the answer holds no credentials", action, role_arn), -1;
	}
	free(expiration);
	return 0;
}

int kc_aws_assume_role(const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b,
		       const struct kc_aws_assume_role *a, const struct kc_aws_credentials *cred, time_t now,
		       struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf body = { 0 }, auth = { .secret = true }, date = { 0 }, token = { .secret = true },
				 host = { 0 };
	const struct kc_sigv4_header h[2] = { { "Content-Type", FORM_TYPE }, { "Host", sts->host } };
	struct kc_sigv4_result sig;
	const char *headers[6];
	size_t nh = 0;

	memset(out, 0, sizeof(*out));
	if (form(&body, "AssumeRole", a) < 0)
		return kc_seterr(err, "out of memory"), -1;
	{
		struct kc_sigv4_request r = { "POST", "/", NULL, h, 2, body.data, body.len };
		struct kc_sigv4_options o = { sts->signing_region, "sts", now, false, 0, false, false, false };

		if (kc_sigv4_sign(&r, cred, &o, &sig, err) < 0)
			return -1;
	}
	kc_buf_printf(&auth, "Authorization: %s", sig.authorization.data);
	kc_buf_printf(&date, "X-Amz-Date: %s", sig.amz_date);
	kc_buf_printf(&host, "Host: %s", sts->host);
	kc_sigv4_result_free(&sig);
	headers[nh++] = "Content-Type: " FORM_TYPE;
	headers[nh++] = host.data;
	headers[nh++] = date.data;
	headers[nh++] = auth.data;
	if (cred->session_token && *cred->session_token) {
		kc_buf_printf(&token, "X-Amz-Security-Token: %s", cred->session_token);
		headers[nh++] = token.data;
	}
	headers[nh] = NULL;
	if (!auth.data || !date.data || !host.data)
		return kc_seterr(err, "out of memory"), -1;
	return sts_post(sts, b, "AssumeRole", a->role_arn, &body, headers, out, err);
}

int kc_aws_assume_role_with_web_identity(const struct kc_aws_service_endpoint *sts, const struct kc_aws_budget *b,
					 const struct kc_aws_assume_role *a, const char *web_identity_token,
					 struct kc_aws_credentials *out, struct kc_err *err)
{
	kc_autobuf struct kc_buf body = { .secret = true }, host = { 0 };
	const char *headers[3] = { "Content-Type: " FORM_TYPE, NULL, NULL };

	memset(out, 0, sizeof(*out));
	if (form(&body, "AssumeRoleWithWebIdentity", a) < 0)
		return kc_seterr(err, "out of memory"), -1;
	form_param(&body, "WebIdentityToken", web_identity_token);
	kc_buf_printf(&host, "Host: %s", sts->host);
	headers[1] = host.data;
	if (!body.data || !host.data)
		return kc_seterr(err, "out of memory"), -1;
	return sts_post(sts, b, "AssumeRoleWithWebIdentity", a->role_arn, &body, headers, out, err);
}

int kc_aws_check_arn_partition(const char *arn, const char *region, struct kc_err *err)
{
	const char *want = kc_aws_partition_of(region)->id;
	size_t n;

	if (strncmp(arn, "arn:", 4) != 0 || !strchr(arn + 4, ':'))
		return kc_seterr(err, "'%s' is not an ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)", arn), -1;
	n = strcspn(arn + 4, ":");
	if (strlen(want) != n || strncmp(arn + 4, want, n) != 0)
		return kc_seterr(err, "role ARN '%s' is in partition '%.*s', but region %s is in '%s': use arn:%s:...",
				 arn, (int)n, arn + 4, region, want, want),
		       -1;
	return 0;
}

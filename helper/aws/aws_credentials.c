/* The login helper's AWS credentials: only what its auth.eks block names (a
 * root-only credentials file, a web identity token file, a credential_process,
 * a container endpoint, else the instance role), then role_arn; never the
 * environment. Cached in the cache store until shortly before they expire. */
#include "aws/aws_credentials.h"
#include "aws/aws_sources.h"
#include "aws/aws_sts.h"
#include "aws/aws_profile.h"
#include "aws/http.h"
#include "aws/aws_endpoints.h"
#include "aws/aws_sigv4.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/cache.h"
#include "common/json_alloc.h"
#include "common/log.h"

#define CACHE_KIND "aws-credentials"
#define CACHE_MAX_AGE (12 * 3600) /* the longest a role session lasts */
#define PROBE_KIND "imds-probe"

/* ---- config checks ------------------------------------------------------------ */

static int url_key(const char *url, bool https_only, struct kc_err *err)
{
	struct kc_aws_service_endpoint ep;

	if (https_only && strncmp(url, "https://", 8) != 0)
		return kc_seterr(err, "'%s' must be an https:// URL", url), -1;
	return kc_aws_endpoint_set_url(&ep, url, err);
}

static int check_sources(const struct kc_eks_ref *e, const char **key, struct kc_err *err)
{
	const char *given[4] = { 0 };
	int n = 0;

	if (e->credentials_file)
		given[n++] = "credentials_file";
	if (e->web_identity_token_file)
		given[n++] = "web_identity_token_file";
	if (e->credential_process)
		given[n++] = "credential_process";
	if (e->container_uri)
		given[n++] = "container_credentials_uri";
	if (n > 1)
		return *key = given[1],
		       kc_seterr(err,
				 "give one of credentials_file, web_identity_token_file, credential_process and "
				 "container_credentials_uri (none: the instance role through IMDSv2), not %s and %s",
				 given[0], given[1]),
		       -1;
	if (e->profile && !e->credentials_file)
		return *key = "profile", kc_seterr(err, "'profile' names a section of credentials_file; give that too"),
		       -1;
	if (e->web_identity_token_file && !e->role_arn)
		return *key = "web_identity_token_file",
		       kc_seterr(err, "web_identity_token_file needs role_arn: the role the token may assume"), -1;
	if (e->container_token_file && !e->container_uri)
		return *key = "container_authorization_token_file",
		       kc_seterr(err, "container_authorization_token_file goes with container_credentials_uri"), -1;
	if (e->container_uri && kc_aws_container_url_allowed(e->container_uri, err) < 0)
		return *key = "container_credentials_uri", -1;
	if (e->credential_process) {
		char **words = NULL;
		size_t nw = 0;
		int rc = kc_aws_split_words(e->credential_process, &words, &nw, err);

		if (rc == 0 && words[0][0] != '/') {
			kc_seterr(err, "credential_process must start with the program's absolute path");
			rc = -1;
		}
		for (size_t i = 0; i < nw; i++)
			free(words[i]);
		free(words);
		if (rc < 0)
			return *key = "credential_process", -1;
	}
	return 0;
}

int kc_aws_check_eks_ref(const struct kc_eks_ref *e, bool for_auth, const char **key, struct kc_err *err)
{
	struct kc_aws_variant v = { e->use_fips_endpoint, e->use_dualstack_endpoint, false };
	struct kc_aws_service_endpoint ep;

	*key = "region";
	if (check_sources(e, key, err) < 0)
		return -1;
	if (e->role_arn && kc_aws_check_arn_partition(e->role_arn, e->region, err) < 0)
		return *key = "role_arn", -1;
	if (kc_aws_resolve(for_auth ? "sts" : "eks", e->region, &v, &ep, err) < 0)
		return *key = e->use_fips_endpoint ? "use_fips_endpoint" : "use_dualstack_endpoint", -1;
	if (e->cluster_id && (!*e->cluster_id || strlen(e->cluster_id) > 100))
		return *key = "cluster_id", kc_seterr(err, "cluster_id must be 1 to 100 characters"), -1;
	if (e->sts_endpoint && url_key(e->sts_endpoint, false, err) < 0)
		return *key = "sts_endpoint", -1;
	if (e->endpoint && url_key(e->endpoint, false, err) < 0)
		return *key = "endpoint", -1;
	if (e->imds_endpoint && url_key(e->imds_endpoint, false, err) < 0)
		return *key = "imds_endpoint", -1;
	return 0;
}

int kc_aws_check_process_program(const char *command, struct kc_err *err)
{
	char **words = NULL, real[PATH_MAX];
	size_t n = 0;
	struct stat st;
	int rc;

	if (kc_aws_split_words(command, &words, &n, err) < 0)
		return -1;
	rc = -1;
	if (!realpath(words[0], real) || stat(real, &st) < 0)
		kc_seterr(err, "cannot find %s", words[0]);
	else if (!S_ISREG(st.st_mode) || !(st.st_mode & 0100))
		kc_seterr(err, "%s is not an executable file", real);
	else if (st.st_uid != 0 || (st.st_mode & 022))
		kc_seterr(err, "%s must be owned by root and writable by root alone (chown root %s; chmod go-w %s)",
			  real, real, real);
	else
		rc = 0;
	for (size_t i = 0; i < n; i++)
		free(words[i]);
	free(words);
	return rc;
}

/* ---- the IMDS probe, in the cache store ------------------------------------------ */

int kc_imds_probe_result(void)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_err e;

	if (kc_cache_get(PROBE_KIND, "nobody", 0, 0, &b, NULL, &e) != 0 || !b.data)
		return -1;
	return strncmp(b.data, "reachable", 9) == 0 ? 1 : 0;
}

void kc_imds_probe_record(bool reachable)
{
	const char *text = reachable ? "reachable\n" : "blocked\n";
	struct kc_err e;

	if (kc_cache_put(PROBE_KIND, "nobody", text, strlen(text), &e) < 0)
		kc_warn("cannot record the instance metadata probe: %s", e.msg);
}

/* ---- the cache ------------------------------------------------------------------- */

static void cache_key(const struct kc_eks_ref *a, struct kc_buf *k)
{
	const char *parts[] = { a->credentials_file,   a->profile,	 a->web_identity_token_file,
				a->credential_process, a->container_uri, a->container_token_file,
				a->role_arn,	       a->region,	 a->sts_endpoint,
				a->imds_endpoint,      a->endpoint_ca };

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		kc_buf_printf(k, "%s\037", parts[i] ? parts[i] : "");
	kc_buf_printf(k, "%d%d", a->use_fips_endpoint, a->use_dualstack_endpoint);
}

static int cache_load(const char *key, struct kc_aws_credentials *out)
{
	kc_autobuf struct kc_buf b = { .secret = true };
	struct kc_err e;
	const char *akid, *secret, *token = NULL;
	json_int_t exp;
	json_t *j;

	if (kc_cache_get(CACHE_KIND, key, CACHE_MAX_AGE, KC_CACHE_SECRET, &b, NULL, &e) != 0 || !b.data)
		return -1;
	j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	if (!j ||
	    json_unpack(j, "{s:s, s:s, s?s, s:I}", "AccessKeyId", &akid, "SecretAccessKey", &secret, "Token", &token,
			"Expiration", &exp) < 0 ||
	    exp - KC_AWS_REFRESH_MARGIN <= time(NULL)) {
		json_decref(j);
		return -1;
	}
	out->access_key_id = strdup(akid);
	out->secret_access_key = strdup(secret);
	out->session_token = token ? strdup(token) : NULL;
	out->expiration = (time_t)exp;
	json_decref(j);
	if (!out->access_key_id || !out->secret_access_key || (token && !out->session_token)) {
		kc_aws_credentials_clear(out);
		return -1;
	}
	return 0;
}

static void cache_store(const char *key, const struct kc_aws_credentials *c)
{
	struct kc_err e;
	json_t *j;
	char *text;

	if (!c->expiration)
		return; /* long-lived keys from a file: nothing to gain */
	j = json_pack("{s:s, s:s, s:s?, s:I}", "AccessKeyId", c->access_key_id, "SecretAccessKey", c->secret_access_key,
		      "Token", c->session_token, "Expiration", (json_int_t)c->expiration);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return;
	if (kc_cache_put(CACHE_KIND, key, text, strlen(text), &e) < 0)
		kc_warn("cannot cache AWS credentials: %s", e.msg);
	explicit_bzero(text, strlen(text));
	kc_json_free(text);
}

/* ---- the sources the config names -------------------------------------------------- */

static void session_name(char out[80])
{
	char host[64] = "";

	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
		    !strchr("+=,.@-", *p))
			*p = '-';
	snprintf(out, 80, "pam-kubeconfig-%.40s", host);
}

static int from_credentials_file(const struct kc_eks_ref *a, struct kc_aws_credentials *out, struct kc_err *err)
{
	struct kc_aws_profiles files;
	const char *profile = a->profile ? a->profile : "default";
	char alt[300];
	int rc;

	if (kc_aws_profiles_load(&files, NULL, a->credentials_file, KC_AWS_FILES_ROOT_ONLY, err) < 0)
		return kc_seterr(err, "credentials_file: %s", err->msg), -1;
	rc = kc_aws_profile_keys(&files, profile, 2, out, err);
	if (rc == 1) { /* a config-file style [profile NAME] */
		snprintf(alt, sizeof(alt), "profile %s", profile);
		rc = kc_aws_profile_keys(&files, alt, 2, out, err);
	}
	kc_aws_profiles_free(&files);
	if (rc == 1)
		kc_seterr(err, "%s: no aws_access_key_id and aws_secret_access_key in profile [%s]",
			  a->credentials_file, profile);
	return rc == 0 ? 0 : -1;
}

static int read_token(const char *path, struct kc_buf *out, struct kc_err *err)
{
	if (kc_read_root_file(path, KC_CREDENTIAL_MAX, 077, true, out, err) < 0)
		return -1;
	while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
		out->data[--out->len] = '\0';
	return out->len ? 0 : (kc_seterr(err, "%s is empty", path), -1);
}

/* The base credentials; *assumed set when they already are role_arn's. */
static int base_credentials(const struct kc_eks_ref *a, const struct kc_aws_service_endpoint *sts,
			    const struct kc_aws_budget *b, struct kc_aws_credentials *out, bool *assumed,
			    struct kc_err *err)
{
	kc_autobuf struct kc_buf token = { .secret = true };
	char session[80];
	long long imds_deadline;

	*assumed = false;
	if (a->credentials_file)
		return from_credentials_file(a, out, err);
	if (a->web_identity_token_file) {
		struct kc_aws_assume_role r = { a->role_arn, session, NULL, 0 };

		session_name(session);
		if (read_token(a->web_identity_token_file, &token, err) < 0)
			return kc_seterr(err, "web_identity_token_file: %s", err->msg), -1;
		*assumed = true;
		return kc_aws_assume_role_with_web_identity(sts, b, &r, token.data, out, err);
	}
	if (a->credential_process)
		return kc_aws_credentials_from_process(a->credential_process, NULL, b->deadline_ms, out, err);
	if (a->container_uri) {
		if (a->container_token_file && read_token(a->container_token_file, &token, err) < 0)
			return kc_seterr(err, "container_authorization_token_file: %s", err->msg), -1;
		return kc_aws_credentials_from_container(a->container_uri, token.data, b, out, err);
	}
	/* Link-local and answering at once: a slow one is a dead one. */
	imds_deadline = kc_now_ms() + b->connect_timeout_ms;
	if (b->deadline_ms && b->deadline_ms < imds_deadline)
		imds_deadline = b->deadline_ms;
	return kc_aws_credentials_from_imds(a->imds_endpoint, imds_deadline, out, err);
}

int kc_aws_helper_credentials(const struct kc_eks_ref *a, const struct kc_aws_budget *limits,
			      struct kc_aws_credentials *out, struct kc_err *err)
{
	struct kc_aws_variant v = { a->use_fips_endpoint, a->use_dualstack_endpoint, false };
	struct kc_aws_budget b = { a->endpoint_ca, limits->connect_timeout_ms, limits->timeout_ms,
				   limits->deadline_ms };
	struct kc_aws_service_endpoint sts;
	struct kc_aws_credentials base = { 0 };
	kc_autobuf struct kc_buf key = { 0 };
	bool assumed;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!a->credentials_file && !a->web_identity_token_file && !a->credential_process && !a->container_uri &&
	    kc_imds_probe_result() == 1)
		kc_warn("the instance metadata service was reachable by an unprivileged user when "
			"`pam-kubeconfig check --online` last ran: any local user can take the instance role; "
			"apply the firewall rule shipped as imds.nft");
	cache_key(a, &key);
	if (key.data && cache_load(key.data, out) == 0)
		return 0;
	if (kc_aws_resolve("sts", a->region, &v, &sts, err) < 0 ||
	    (a->sts_endpoint && kc_aws_endpoint_connect_to(&sts, a->sts_endpoint, err) < 0))
		return -1;
	if (base_credentials(a, &sts, &b, &base, &assumed, err) < 0)
		return -1;
	if (a->role_arn && *a->role_arn && !assumed) {
		char session[80];
		struct kc_aws_assume_role r = { a->role_arn, session, NULL, 0 };

		session_name(session);
		rc = kc_aws_assume_role(&sts, &b, &r, &base, time(NULL), out, err);
		kc_aws_credentials_clear(&base);
		if (rc < 0)
			return -1;
	} else {
		*out = base;
	}
	if (key.data)
		cache_store(key.data, out);
	return 0;
}

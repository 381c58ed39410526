/* TokenRequest: the token a login gets, bound to the user's revocation Secret. */
#include "kube/tokens.h"
#include "kube/kubeapi.h"

#include <stdio.h>
#include <string.h>

#include "common/json_alloc.h"

void kc_kube_minted_clear(struct kc_minted *m)
{
	kc_free_secret(m->token);
	memset(m, 0, sizeof(*m));
}

/* jti and the bound Secret's uid from the JWT payload. The token is the API
 * server's; nothing here is trusted for more than reporting and the uid the
 * server itself bound it to. */
static void read_jwt_claims(const char *token, struct kc_minted *out)
{
	const char *p1 = strchr(token, '.'), *p2;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_t *claims;
	const char *jti = NULL, *uid = NULL;

	if (!p1 || !(p2 = strchr(p1 + 1, '.')) || (size_t)(p2 - p1) > 16384)
		return;
	if (kc_base64_decode(p1 + 1, (size_t)(p2 - p1 - 1), &raw, &rawlen) < 0)
		return;
	claims = json_loadb((char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	explicit_bzero(raw, rawlen);
	free(raw);
	if (!claims)
		return;
	if (json_unpack(claims, "{s?s}", "jti", &jti) == 0 && jti)
		snprintf(out->jti, sizeof(out->jti), "%s", jti);
	if (json_unpack(claims, "{s:{s:{s:s}}}", "kubernetes.io", "secret", "uid", &uid) == 0 && uid)
		snprintf(out->secret_uid, sizeof(out->secret_uid), "%s", uid);
	json_decref(claims);
}

int kc_kube_token_response_parse(const char *cluster, const char *ns, const char *name, json_t *resp, long ttl,
				 time_t asked, struct kc_minted *out, struct kc_err *err)
{
	const char *token = NULL, *expiry = NULL;
	json_error_t jerr;

	memset(out, 0, sizeof(*out));
	if (!resp ||
	    json_unpack_ex(resp, &jerr, 0, "{s:{s:s, s:s}}", "status", "token", &token, "expirationTimestamp",
			   &expiry) < 0 ||
	    !*token) {
		kc_seterr(err, "cluster %s: the TokenRequest answer for %s/%s holds no token (%s)", cluster, ns, name,
			  resp ? jerr.text : "no body");
		return -1;
	}
	if (kc_parse_time(expiry, &out->expiry) < 0 || out->expiry <= time(NULL)) {
		kc_seterr(err,
			  "cluster %s: the TokenRequest answer for %s/%s has an expiry in the past or unreadable "
			  "('%.40s')",
			  cluster, ns, name, expiry);
		return -1;
	}
	out->token = strdup(token);
	if (!out->token) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	/* What the server granted: spec.expirationSeconds of its answer. Expiry on
	 * our clock is then the time we asked plus that, whatever its clock says. */
	{
		json_int_t granted = 0;

		if (json_unpack(resp, "{s:{s:I}}", "spec", "expirationSeconds", &granted) == 0 && granted > 0)
			out->lifetime = (long)granted;
		else
			out->lifetime = (long)(out->expiry - asked);
	}
	out->expiry = asked + out->lifetime;
	/* The server may cap the lifetime (EKS and --service-account-max-token-expiration). */
	out->shortened = out->lifetime < ttl - 60;
	read_jwt_claims(out->token, out);
	return 0;
}

/* A 404's details.kind: which object was missing. */
static bool missing_kind(json_t *resp, const char *kind)
{
	const char *k = NULL;

	return json_unpack(resp, "{s:{s:s}}", "details", "kind", &k) == 0 && k && strcmp(k, kind) == 0;
}

int kc_kube_token_request(struct kc_kube *k, const struct kc_token_spec *t, struct kc_minted *out, struct kc_err *err)
{
	struct kc_action what = { "create", "serviceaccounts/token", t->sa_namespace, t->sa_name };
	char path[512];
	json_t *req, *spec, *auds, *resp = NULL;
	time_t asked = time(NULL);
	long status;
	int rc = KC_MINT_FAILED;

	memset(out, 0, sizeof(*out));
	auds = json_array();
	for (size_t i = 0; i < t->n_audiences; i++)
		json_array_append_new(auds, json_string(t->audiences[i]));
	spec = json_pack("{s:I, s:o}", "expirationSeconds", (json_int_t)t->ttl, "audiences", auds);
	if (spec && t->secret && *t->secret) {
		json_t *ref = json_pack("{s:s, s:s, s:s}", "kind", "Secret", "apiVersion", "v1", "name", t->secret);

		/* Bound to this incarnation: a Secret made anew underneath fails loudly (409). */
		if (ref && t->secret_uid && *t->secret_uid)
			json_object_set_new(ref, "uid", json_string(t->secret_uid));
		json_object_set_new(spec, "boundObjectRef", ref);
	}
	req = json_pack("{s:s, s:s, s:o}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenRequest", "spec",
			spec);
	if (!req) {
		kc_seterr(err, "out of memory");
		return KC_MINT_FAILED;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", t->sa_namespace, t->sa_name);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		goto out;
	if (status == 200 || status == 201) {
		if (kc_kube_token_response_parse(kc_kube_name(k), t->sa_namespace, t->sa_name, resp, t->ttl, asked, out,
						 err) == 0)
			rc = KC_MINT_OK;
		goto out;
	}
	kc_kube_status_error(k, status, resp, &what, err);
	if (status == 404 && missing_kind(resp, "serviceaccounts"))
		rc = KC_MINT_SA_MISSING;
	else if ((status == 404 && missing_kind(resp, "secrets")) || status == 409)
		rc = KC_MINT_SECRET_MISSING;
out:
	json_decref(resp);
	if (rc != KC_MINT_OK)
		kc_kube_minted_clear(out);
	return rc;
}

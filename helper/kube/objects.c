/* The objects the helper keeps on a cluster: the per-user revocation Secret,
 * the ServiceAccounts and bindings `create: true` reconciles, and access reviews. */
#include "kube/objects.h"
#include "kube/kubeapi.h"

#include <stdio.h>
#include <string.h>

#include "common/json_alloc.h"

void kc_kube_secret_name(const char *host_id, const char *user, const char *cluster, char *out, size_t len)
{
	kc_autobuf struct kc_buf in = { 0 };
	char hex[65];

	/* NULs between the parts: no two tuples collide. The cluster is in it so
	 * that two config entries reaching one API server never share a Secret. */
	kc_buf_puts(&in, host_id);
	kc_buf_append(&in, "", 1);
	kc_buf_puts(&in, user);
	kc_buf_append(&in, "", 1);
	kc_buf_puts(&in, cluster);
	kc_sha256_hex(in.data, in.len, hex);
	snprintf(out, len, "pam-kubeconfig-%.20s", hex);
}

static void secret_path(const char *ns, const char *name, const char *query, char *out, size_t len)
{
	snprintf(out, len, "/api/v1/namespaces/%s/secrets%s%s%s", ns, name ? "/" : "", name ? name : "", query);
}

static void copy_uid(json_t *resp, char uid[64])
{
	const char *u = NULL;

	uid[0] = '\0';
	/* The object itself, or (a DELETE's answer) a Status naming it in details. */
	if ((json_unpack(resp, "{s:{s:s}}", "metadata", "uid", &u) == 0 ||
	     json_unpack(resp, "{s:{s:s}}", "details", "uid", &u) == 0) &&
	    u)
		snprintf(uid, 64, "%s", u);
}

/* The origin's annotations; an unknown value is left out. */
static json_t *origin_annotations(const struct kc_secret_origin *o)
{
	char uid[16], now[32];
	json_t *a;

	snprintf(uid, sizeof(uid), "%u", (unsigned)o->uid);
	kc_format_time(time(NULL), now, sizeof(now));
	a = json_pack("{s:s, s:s, s:s, s:s}", "pam-kubeconfig/user", o->user, "pam-kubeconfig/host", o->host,
		      "pam-kubeconfig/uid", uid, "pam-kubeconfig/created", now);
	if (a && o->sessions && *o->sessions)
		json_object_set_new(a, "pam-kubeconfig/session", json_string(o->sessions));
	if (a && o->rhosts && *o->rhosts)
		json_object_set_new(a, "pam-kubeconfig/rhost", json_string(o->rhosts));
	if (a && o->reason)
		json_object_set_new(a, "pam-kubeconfig/reason", json_string(o->reason));
	return a;
}

int kc_kube_create_secret(struct kc_kube *k, const char *ns, const char *name, const struct kc_secret_origin *o,
			  char uid[64], struct kc_err *err)
{
	struct kc_action what = { "create", "secrets", ns, name };
	char path[300];
	json_t *req, *resp = NULL;
	long status;
	int rc = -1;

	uid[0] = '\0';
	req = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s}, s:o}}", "apiVersion", "v1", "kind", "Secret", "type",
			"Opaque", "metadata", "name", name, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig",
			"annotations", origin_annotations(o));
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	secret_path(ns, NULL, "", path, sizeof(path));
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status == 201 || status == 200) {
		copy_uid(resp, uid);
		rc = uid[0] ? 0
			    : (kc_seterr(err, "cluster %s: the Secret %s/%s was made without a uid", kc_kube_name(k),
					 ns, name),
			       -1);
	} else if (status == 409) {
		rc = 1;
	} else if (status > 0) {
		kc_kube_status_error(k, status, resp, &what, err);
	}
	json_decref(resp);
	return rc;
}

int kc_kube_secret_uid(struct kc_kube *k, const char *ns, const char *name, char uid[64], struct kc_err *err)
{
	struct kc_action what = { "delete", "secrets", ns, name };
	char path[300];
	json_t *resp = NULL;
	long status;
	int rc = -1;

	uid[0] = '\0';
	/* A dry run answers with the object it would delete, and deletes nothing. */
	secret_path(ns, name, "?dryRun=All", path, sizeof(path));
	status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
	if (status == 200 || status == 202) {
		copy_uid(resp, uid);
		rc = uid[0] ? 0
			    : (kc_seterr(err, "cluster %s: no uid in the dry run for %s/%s", kc_kube_name(k), ns, name),
			       -1);
	} else if (status == 404) {
		rc = 1;
	} else if (status > 0) {
		kc_kube_status_error(k, status, resp, &what, err);
	}
	json_decref(resp);
	return rc;
}

int kc_kube_delete_secret(struct kc_kube *k, const char *ns, const char *name, const char *uid, struct kc_err *err)
{
	struct kc_action what = { "delete", "secrets", ns, name };
	char path[300];
	json_t *body, *resp = NULL;
	long status;
	int rc = -1;

	/* Only this incarnation: a Secret made anew since is not ours to delete. */
	body = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions", "preconditions", "uid",
			 uid);
	if (!body)
		return kc_seterr(err, "out of memory"), -1;
	secret_path(ns, name, "", path, sizeof(path));
	status = kc_kube_call(k, "DELETE", path, body, &resp, err);
	json_decref(body);
	if (status == 200 || status == 202)
		rc = 0;
	else if (status == 404 || status == 409)
		rc = 1; /* gone, or another incarnation: the one we meant is revoked */
	else if (status > 0)
		kc_kube_status_error(k, status, resp, &what, err);
	json_decref(resp);
	return rc;
}

void kc_kube_binding_name(const char *ns, const char *name, bool cluster_wide, char *out, size_t len)
{
	if (cluster_wide)
		snprintf(out, len, "pam-kubeconfig:%s:%s", ns, name);
	else
		snprintf(out, len, "pam-kubeconfig:%s", name);
}

static int ensure_service_account(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err)
{
	struct kc_action get = { "get", "serviceaccounts", ns, name },
			 create = { "create", "serviceaccounts", ns, name };
	char path[400];
	json_t *resp = NULL, *req;
	long status;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, name);
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	json_decref(resp);
	if (status < 0)
		return -1;
	if (status == 200)
		return 0;
	if (status != 404) {
		kc_kube_status_error(k, status, NULL, &get, err);
		return -1;
	}
	req = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata",
			"name", name, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", ns);
	status = kc_kube_call(k, "POST", path, req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 409) {
		kc_kube_status_error(k, status, resp, &create, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

static int ensure_binding(struct kc_kube *k, const char *ns, const char *name, const char *role, bool cluster_wide,
			  struct kc_err *err)
{
	const char *resource = cluster_wide ? "clusterrolebindings" : "rolebindings";
	struct kc_action get = { "get", resource, cluster_wide ? NULL : ns, NULL };
	char bname[KC_ERR_MAX / 4], base[400], path[700];
	json_t *resp = NULL, *req;
	const char *have_kind = NULL, *have_role = NULL;
	long status;

	kc_kube_binding_name(ns, name, cluster_wide, bname, sizeof(bname));
	get.name = bname;
	if (cluster_wide)
		snprintf(base, sizeof(base), "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
	else
		snprintf(base, sizeof(base), "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings", ns);
	snprintf(path, sizeof(path), "%s/%s", base, bname);
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	if (status < 0)
		return -1;
	if (status == 200) {
		/* roleRef is immutable: a binding to another role is deleted and made anew. */
		json_unpack(resp, "{s:{s?s, s?s}}", "roleRef", "kind", &have_kind, "name", &have_role);
		if (have_kind && have_role && strcmp(have_kind, "ClusterRole") == 0 && strcmp(have_role, role) == 0) {
			json_decref(resp);
			return 0;
		}
		json_decref(resp);
		resp = NULL;
		get.verb = "delete";
		status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
		if (status < 0)
			return -1;
		if (status != 200 && status != 202 && status != 404) {
			kc_kube_status_error(k, status, resp, &get, err);
			json_decref(resp);
			return -1;
		}
	} else if (status != 404) {
		kc_kube_status_error(k, status, resp, &get, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	resp = NULL;
	req = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
			"rbac.authorization.k8s.io/v1", "kind", cluster_wide ? "ClusterRoleBinding" : "RoleBinding",
			"metadata", "name", bname, "labels", "app.kubernetes.io/managed-by", "pam-kubeconfig",
			"roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", role,
			"subjects", "kind", "ServiceAccount", "name", name, "namespace", ns);
	if (!req) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	if (!cluster_wide)
		json_object_set_new(json_object_get(req, "metadata"), "namespace", json_string(ns));
	status = kc_kube_call(k, "POST", base, req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 409) {
		get.verb = "create";
		if (status == 403)
			kc_seterr(
				err,
				"cluster %s: the helper's identity may not create %s %s binding ClusterRole %s (403); "
				"run pam-kubeconfig rbac (it must be allowed to bind that role)",
				kc_kube_name(k), resource, bname, role);
		else
			kc_kube_status_error(k, status, resp, &get, err);
		json_decref(resp);
		return -1;
	}
	json_decref(resp);
	return 0;
}

int kc_kube_reconcile(struct kc_kube *k, const char *ns, const char *name, const char *clusterrole, bool cluster_wide,
		      struct kc_err *err)
{
	if (ensure_service_account(k, ns, name, err) < 0)
		return -1;
	if (clusterrole && ensure_binding(k, ns, name, clusterrole, cluster_wide, err) < 0)
		return -1;
	return 0;
}

int kc_kube_can_i(struct kc_kube *k, const char *verb, const char *group, const char *resource, const char *subresource,
		  const char *ns, const char *name, bool *allowed, struct kc_err *err)
{
	struct kc_action what = { "create", "selfsubjectaccessreviews", NULL, NULL };
	json_t *req, *attrs, *resp = NULL;
	int ok = 0;
	long status;

	attrs = json_pack("{s:s, s:s, s:s}", "verb", verb, "group", group ? group : "", "resource", resource);
	if (!attrs) {
		kc_seterr(err, "out of memory");
		return -1;
	}
	if (subresource)
		json_object_set_new(attrs, "subresource", json_string(subresource));
	if (ns)
		json_object_set_new(attrs, "namespace", json_string(ns));
	if (name)
		json_object_set_new(attrs, "name", json_string(name));
	req = json_pack("{s:s, s:s, s:{s:o}}", "apiVersion", "authorization.k8s.io/v1", "kind",
			"SelfSubjectAccessReview", "spec", "resourceAttributes", attrs);
	status = kc_kube_call(k, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", req, &resp, err);
	json_decref(req);
	if (status < 0)
		return -1;
	if (status != 201 && status != 200) {
		kc_kube_status_error(k, status, resp, &what, err);
		json_decref(resp);
		return -1;
	}
	if (json_unpack(resp, "{s:{s?b}}", "status", "allowed", &ok) < 0) {
		kc_seterr(err, "cluster %s: an access review answer without status", kc_kube_name(k));
		json_decref(resp);
		return -1;
	}
	*allowed = ok;
	json_decref(resp);
	return 0;
}

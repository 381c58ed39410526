/* ConfigMaps of the fleet (see configmaps.h). */
#include "kube/configmaps.h"

#include <stdio.h>
#include <string.h>

#define MANAGED "app.kubernetes.io/managed-by"
#define KIND "pam-kubeconfig/kind"

static void cm_path(const char *ns, const char *name, char *out, size_t len)
{
	snprintf(out, len, "/api/v1/namespaces/%s/configmaps%s%s", ns, name ? "/" : "", name ? name : "");
}

int kc_kube_cm_get(struct kc_kube *k, const char *ns, const char *name, json_t **data, struct kc_err *err)
{
	struct kc_action what = { "get", "configmaps", ns, name };
	char path[400];
	json_t *resp = NULL, *d;
	long status;
	int rc = -1;

	*data = NULL;
	cm_path(ns, name, path, sizeof(path));
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	if (status == 200 && (d = json_object_get(resp, "data")) && json_is_object(d)) {
		*data = json_incref(d);
		rc = 0;
	} else if (status == 200) {
		*data = json_object();
		rc = *data ? 0 : -1;
	} else if (status == 404) {
		rc = 1;
	} else if (status > 0) {
		kc_kube_status_error(k, status, resp, &what, err);
	}
	json_decref(resp);
	return rc;
}

int kc_kube_cm_list(struct kc_kube *k, const char *ns, const char *kind, json_t **items, struct kc_err *err)
{
	struct kc_action what = { "list", "configmaps", ns, NULL };
	char path[600];
	json_t *resp = NULL, *list, *item;
	long status;
	size_t i;

	*items = NULL;
	snprintf(path, sizeof(path),
		 "/api/v1/namespaces/%s/configmaps?labelSelector=" MANAGED "%%3Dpam-kubeconfig%%2C" KIND "%%3D%s", ns,
		 kind);
	status = kc_kube_call(k, "GET", path, NULL, &resp, err);
	if (status != 200 || !json_is_array(list = json_object_get(resp, "items"))) {
		if (status > 0)
			kc_kube_status_error(k, status, resp, &what, err);
		json_decref(resp);
		return -1;
	}
	*items = json_array();
	json_array_foreach(list, i, item)
	{
		json_t *name = json_object_get(json_object_get(item, "metadata"), "name");
		json_t *data = json_object_get(item, "data");

		if (*items && json_is_string(name))
			json_array_append_new(*items,
					      json_pack("{s:O, s:o}", "name", name, "data",
							json_is_object(data) ? json_incref(data) : json_object()));
	}
	json_decref(resp);
	return *items ? 0 : -1;
}

int kc_kube_cm_put(struct kc_kube *k, const char *ns, const char *name, const char *kind, json_t *data,
		   struct kc_err *err)
{
	struct kc_action what = { "create", "configmaps", ns, name };
	char path[400];
	json_t *body, *resp = NULL;
	long status;

	body = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:O}", "apiVersion", "v1", "kind", "ConfigMap",
			 "metadata", "name", name, "namespace", ns, "labels", MANAGED, "pam-kubeconfig", KIND, kind,
			 "data", data);
	if (!body)
		return kc_seterr(err, "out of memory"), -1;
	cm_path(ns, NULL, path, sizeof(path));
	status = kc_kube_call(k, "POST", path, body, &resp, err);
	if (status == 409) { /* there already: replaced as a whole */
		json_decref(resp);
		resp = NULL;
		what.verb = "update";
		cm_path(ns, name, path, sizeof(path));
		status = kc_kube_call(k, "PUT", path, body, &resp, err);
	}
	json_decref(body);
	if (status == 200 || status == 201) {
		json_decref(resp);
		return 0;
	}
	if (status > 0)
		kc_kube_status_error(k, status, resp, &what, err);
	json_decref(resp);
	return -1;
}

int kc_kube_cm_delete(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err)
{
	struct kc_action what = { "delete", "configmaps", ns, name };
	char path[400];
	json_t *resp = NULL;
	long status;
	int rc = -1;

	cm_path(ns, name, path, sizeof(path));
	status = kc_kube_call(k, "DELETE", path, NULL, &resp, err);
	if (status == 200 || status == 202)
		rc = 0;
	else if (status == 404)
		rc = 1;
	else if (status > 0)
		kc_kube_status_error(k, status, resp, &what, err);
	json_decref(resp);
	return rc;
}

int kc_kube_cm_may_write(struct kc_kube *k, const char *ns, bool *yes, struct kc_err *err)
{
	struct kc_action what = { "create", "configmaps", ns, NULL };
	char path[400];
	json_t *body, *resp = NULL;
	long status;

	*yes = false;
	body = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "generateName",
			 "pam-kubeconfig-probe-");
	if (!body)
		return kc_seterr(err, "out of memory"), -1;
	cm_path(ns, NULL, path, sizeof(path));
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "?dryRun=All");
	status = kc_kube_call(k, "POST", path, body, &resp, err);
	json_decref(body);
	/* RBAC answers 403; a policy 403 or 422 (its reason). */
	if (status == 200 || status == 201)
		*yes = true;
	else if (status != 403 && status != 422 && status > 0)
		kc_kube_status_error(k, status, resp, &what, err);
	json_decref(resp);
	return status == 200 || status == 201 || status == 403 || status == 422 ? 0 : -1;
}

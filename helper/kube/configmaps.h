/* ConfigMaps in the fleet's namespace (fleet: { namespace }): the only kind
 * the helper reads and lists on a cluster. Values are strings; a ConfigMap
 * is labelled app.kubernetes.io/managed-by=pam-kubeconfig and
 * pam-kubeconfig/kind=KIND. */
#ifndef KC_KUBE_CONFIGMAPS_H
#define KC_KUBE_CONFIGMAPS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/util.h"
#include "kube/kubeapi.h"

/* GET: 0 and *data (its "data" object, the caller's to json_decref), 1 not
 * there, -1 error (err set). */
int kc_kube_cm_get(struct kc_kube *k, const char *ns, const char *name, json_t **data, struct kc_err *err);
/* LIST those of a kind: 0 and *items (an array of {"name", "data"}), -1. */
int kc_kube_cm_list(struct kc_kube *k, const char *ns, const char *kind, json_t **items, struct kc_err *err);
/* Create, or replace what is there: 0, -1. data is borrowed. */
int kc_kube_cm_put(struct kc_kube *k, const char *ns, const char *name, const char *kind, json_t *data,
		   struct kc_err *err);
/* DELETE: 0 deleted, 1 not there, -1. */
int kc_kube_cm_delete(struct kc_kube *k, const char *ns, const char *name, struct kc_err *err);
/* Would k's identity be let create a ConfigMap in ns, admission included (a
 * dry run: nothing is stored)? 0 and *yes, -1 could not tell. */
int kc_kube_cm_may_write(struct kc_kube *k, const char *ns, bool *yes, struct kc_err *err);

#endif

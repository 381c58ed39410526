/* The least-privilege RBAC manifest for the helper's identity under a config. */
#include "admin/rbac.h"

#include <stdio.h>
#include <string.h>

#include "kube/objects.h"
#include "common/ytree.h"

/* The most one document of the manifest may take. */
#define DOC_MAX (64u << 20)

int kc_strset_add(struct kc_strset *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i], v) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **p = realloc(s->items, cap * sizeof(*p));

		if (!p)
			return -1;
		s->items = p;
		s->cap = cap;
	}
	if (!(s->items[s->n] = strdup(v)))
		return -1;
	s->n++;
	return 0;
}

void kc_strset_free(struct kc_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i]);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static struct kc_rbac_ns *ns_entry(struct kc_rbac *r, const char *ns)
{
	struct kc_rbac_ns *p;

	for (size_t i = 0; i < r->n_ns; i++)
		if (strcmp(r->ns[i].ns, ns) == 0)
			return &r->ns[i];
	p = realloc(r->ns, (r->n_ns + 1) * sizeof(*p));
	if (!p)
		return NULL;
	r->ns = p;
	p = &r->ns[r->n_ns];
	memset(p, 0, sizeof(*p));
	if (!(p->ns = strdup(ns)))
		return NULL;
	r->n_ns++;
	return p;
}

static const char *const v_create[] = { "create" }, *const v_create_delete[] = { "create", "delete" },
			 *const v_get[] = { "get" }, *const v_get_create[] = { "get", "create" },
			 *const v_get_delete[] = { "get", "delete" },
			 *const v_get_create_delete[] = { "get", "create", "delete" }, *const v_bind[] = { "bind" },
			 *const v_fleet[] = { "get", "list", "create", "update", "delete" };
#define VERBS(v) (v), sizeof(v) / sizeof((v)[0])
#define RBAC_GROUP "rbac.authorization.k8s.io"

static int add_rule(struct kc_rbac *r, const char *ns, const char *group, const char *resource,
		    const struct kc_strset *names, const char *const *verbs, size_t n_verbs)
{
	struct kc_rbac_rule *p = realloc(r->rules, (r->n_rules + 1) * sizeof(*p));

	if (!p)
		return -1;
	r->rules = p;
	r->rules[r->n_rules++] = (struct kc_rbac_rule){ ns, group, resource, names, verbs, n_verbs };
	return 0;
}

/* Every rule, in the order the manifest prints them. Where a set of names
 * limits what a rule reaches, the verb Kubernetes cannot limit by name
 * (create) goes into a rule of its own. */
static int list_rules(struct kc_rbac *r)
{
	int rc = 0;

	for (size_t i = 0; i < r->n_ns; i++) {
		const struct kc_rbac_ns *n = &r->ns[i];

		/* An empty resourceNames would mean every name: the fleet's
		 * namespace alone (no rule maps there) gets no token rule. */
		if (n->token_any || n->token_names.n)
			rc |= add_rule(r, n->ns, "", "serviceaccounts/token", n->token_any ? NULL : &n->token_names,
				       VERBS(v_create));
		if (n->secrets)
			rc |= add_rule(r, n->ns, "", "secrets", NULL, VERBS(v_create_delete));
		if (n->reconcile && n->sa_any)
			rc |= add_rule(r, n->ns, "", "serviceaccounts", NULL, VERBS(v_get_create));
		if (n->reconcile && !n->sa_any) {
			rc |= add_rule(r, n->ns, "", "serviceaccounts", NULL, VERBS(v_create));
			rc |= add_rule(r, n->ns, "", "serviceaccounts", &n->sa_names, VERBS(v_get));
		}
		if (n->bind_roles.n && n->binding_any)
			rc |= add_rule(r, n->ns, RBAC_GROUP, "rolebindings", NULL, VERBS(v_get_create_delete));
		if (n->bind_roles.n && !n->binding_any) {
			rc |= add_rule(r, n->ns, RBAC_GROUP, "rolebindings", NULL, VERBS(v_create));
			rc |= add_rule(r, n->ns, RBAC_GROUP, "rolebindings", &n->binding_names, VERBS(v_get_delete));
		}
		if (n->bind_roles.n)
			rc |= add_rule(r, n->ns, RBAC_GROUP, "clusterroles", &n->bind_roles, VERBS(v_bind));
		if (n->fleet)
			rc |= add_rule(r, n->ns, "", "configmaps", NULL, VERBS(v_fleet));
	}
	if (r->cluster_bind_roles.n) {
		rc |= add_rule(r, NULL, RBAC_GROUP, "clusterrolebindings", NULL, VERBS(v_create));
		rc |= add_rule(r, NULL, RBAC_GROUP, "clusterrolebindings", &r->cluster_binding_names,
			       VERBS(v_get_delete));
		rc |= add_rule(r, NULL, RBAC_GROUP, "clusterroles", &r->cluster_bind_roles, VERBS(v_bind));
	}
	return rc ? -1 : 0;
}

/* What a create: true rule makes in its namespace, or cluster-wide. */
static int add_reconcile(struct kc_rbac *r, struct kc_rbac_ns *n, const struct kc_mapping *m)
{
	bool templated = strchr(m->sa_name, '{') != NULL;
	char binding[400];

	n->reconcile = true;
	if (templated)
		n->sa_any = true;
	else if (kc_strset_add(&n->sa_names, m->sa_name) < 0)
		return -1;
	if (!m->clusterrole)
		return 0;
	kc_kube_binding_name(m->sa_namespace, m->sa_name, m->cluster_wide, binding, sizeof(binding));
	if (m->cluster_wide)
		return kc_strset_add(&r->cluster_bind_roles, m->clusterrole) < 0 ||
				       kc_strset_add(&r->cluster_binding_names, binding) < 0
			       ? -1
			       : 0;
	if (templated)
		n->binding_any = true;
	else if (kc_strset_add(&n->binding_names, binding) < 0)
		return -1;
	return kc_strset_add(&n->bind_roles, m->clusterrole);
}

int kc_rbac_compute(const struct kc_config *cfg, const struct kc_cluster *cl, struct kc_rbac *out, struct kc_err *err)
{
	memset(out, 0, sizeof(*out));
	out->cluster = cl;
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];
		struct kc_rbac_ns *n;

		if (strcmp(m->cluster, cl->name) != 0)
			continue;
		if (strchr(m->sa_namespace, '{')) {
			kc_seterr(err,
				  "%s:%u:%u: a namespace made from the user name cannot be limited by a Role; map into "
				  "a fixed namespace such as bastion-users/u-{user_safe}",
				  cfg->path, m->sa_mark.line, m->sa_mark.col);
			goto fail;
		}
		if (m->cluster_wide && strchr(m->sa_name, '{')) {
			kc_seterr(
				err,
				"%s:%u:%u: cluster_wide needs a ServiceAccount name without a template: only then can "
				"the helper's right to delete ClusterRoleBindings be limited to the ones it makes",
				cfg->path, m->sa_mark.line, m->sa_mark.col);
			goto fail;
		}
		if (!(n = ns_entry(out, m->sa_namespace)))
			goto oom;
		if (strchr(m->sa_name, '{'))
			n->token_any = true;
		else if (kc_strset_add(&n->token_names, m->sa_name) < 0)
			goto oom;
		if (cfg->revoke_on_logout)
			n->secrets = true;
		if (m->create && add_reconcile(out, n, m) < 0)
			goto oom;
	}
	if (cfg->fleet_namespace) {
		struct kc_rbac_ns *n = ns_entry(out, cfg->fleet_namespace);

		if (!n)
			goto oom;
		n->fleet = true;
	}
	if (list_rules(out) < 0)
		goto oom;
	return 0;
oom:
	kc_seterr(err, "out of memory");
fail:
	kc_rbac_free(out);
	return -1;
}

void kc_rbac_free(struct kc_rbac *r)
{
	for (size_t i = 0; i < r->n_ns; i++) {
		free(r->ns[i].ns);
		kc_strset_free(&r->ns[i].token_names);
		kc_strset_free(&r->ns[i].sa_names);
		kc_strset_free(&r->ns[i].binding_names);
		kc_strset_free(&r->ns[i].bind_roles);
	}
	free(r->ns);
	kc_strset_free(&r->cluster_bind_roles);
	kc_strset_free(&r->cluster_binding_names);
	free(r->rules);
	memset(r, 0, sizeof(*r));
}

/* ---- emitting: each document a tree, written by the YAML emitter --------- */

static struct kc_ynode *flow_list(const char *const *items, size_t n)
{
	struct kc_ynode *seq = kc_ytree_flow_seq();

	for (size_t i = 0; seq && i < n; i++) {
		if (kc_ytree_push(seq, kc_ytree_str(items[i])) < 0) {
			kc_ytree_free(seq);
			seq = NULL;
		}
	}
	return seq;
}

/* A mapping of strings from { key, value, key, value, ..., NULL }. */
static struct kc_ynode *map_of(const char *const *kv)
{
	struct kc_ynode *map = kc_ytree_map();

	for (size_t i = 0; map && kv[i]; i += 2) {
		if (kc_ytree_set_str(map, kv[i], kv[i + 1]) < 0) {
			kc_ytree_free(map);
			map = NULL;
		}
	}
	return map;
}

/* A sequence of one item; takes item. */
static struct kc_ynode *seq_of(struct kc_ynode *item)
{
	struct kc_ynode *seq = kc_ytree_seq();

	if (!seq) {
		kc_ytree_free(item);
		return NULL;
	}
	if (kc_ytree_push(seq, item) < 0) {
		kc_ytree_free(seq);
		return NULL;
	}
	return seq;
}

static struct kc_ynode *rule(const struct kc_rbac_rule *r)
{
	const char *groups[] = { r->group }, *resources[] = { r->resource };
	struct kc_ynode *map = kc_ytree_map();

	if (!map || kc_ytree_set(map, "apiGroups", flow_list(groups, 1)) < 0 ||
	    kc_ytree_set(map, "resources", flow_list(resources, 1)) < 0 ||
	    (r->names &&
	     kc_ytree_set(map, "resourceNames", flow_list((const char *const *)r->names->items, r->names->n)) < 0) ||
	    kc_ytree_set(map, "verbs", flow_list(r->verbs, r->n_verbs)) < 0) {
		kc_ytree_free(map);
		return NULL;
	}
	return map;
}

/* The rules of one Role (ns) or of the ClusterRole (NULL). */
static struct kc_ynode *rules_of(const struct kc_rbac *r, const char *ns)
{
	struct kc_ynode *seq = kc_ytree_seq();

	for (size_t i = 0; seq && i < r->n_rules; i++) {
		if ((ns ? r->rules[i].ns && strcmp(r->rules[i].ns, ns) == 0 : !r->rules[i].ns) &&
		    kc_ytree_push(seq, rule(&r->rules[i])) < 0) {
			kc_ytree_free(seq);
			seq = NULL;
		}
	}
	return seq;
}

static struct kc_ynode *metadata(const char *name, const char *ns)
{
	const char *labels[] = { "app.kubernetes.io/managed-by", "pam-kubeconfig", NULL };
	struct kc_ynode *map = kc_ytree_map();

	if (!map || kc_ytree_set_str(map, "name", name) < 0 || (ns && kc_ytree_set_str(map, "namespace", ns) < 0) ||
	    kc_ytree_set(map, "labels", map_of(labels)) < 0) {
		kc_ytree_free(map);
		return NULL;
	}
	return map;
}

/* An object: apiVersion, kind, our metadata (unless name is NULL), then key:
 * value; takes value. */
static struct kc_ynode *object(const char *api, const char *kind, const char *name, const char *ns, const char *key,
			       struct kc_ynode *value)
{
	const char *head[] = { "apiVersion", api, "kind", kind, NULL };
	struct kc_ynode *obj = map_of(head);

	if (!obj || (name && kc_ytree_set(obj, "metadata", metadata(name, ns)) < 0)) {
		kc_ytree_free(value);
		kc_ytree_free(obj);
		return NULL;
	}
	if (kc_ytree_set(obj, key, value) < 0) {
		kc_ytree_free(obj);
		return NULL;
	}
	return obj;
}

/* "---", the comment's lines, the document; takes doc. */
static int document(struct kc_buf *out, const char *comment, struct kc_ynode *doc)
{
	struct kc_err err;
	int rc = doc && kc_buf_puts(out, "---\n") == 0 ? 0 : -1;

	for (const char *line = comment; rc == 0 && line && *line;) {
		size_t n = strcspn(line, "\n");

		kc_buf_printf(out, "# %.*s\n", (int)n, line);
		line += n;
		if (*line)
			line++;
	}
	if (rc == 0)
		rc = kc_ytree_emit(doc, DOC_MAX, out, &err);
	kc_ytree_free(doc);
	return rc;
}

static int binding(struct kc_buf *out, const char *kind, const char *role_kind, const char *name, const char *ns,
		   const char *identity)
{
	const char *ref[] = { "apiGroup", "rbac.authorization.k8s.io", "kind", role_kind, "name", name, NULL };
	const char *subject[] = { "apiGroup", "rbac.authorization.k8s.io", "kind", "User", "name", identity, NULL };
	struct kc_ynode *doc = object("rbac.authorization.k8s.io/v1", kind, name, ns, "roleRef", map_of(ref));

	if (doc && kc_ytree_set(doc, "subjects", seq_of(map_of(subject))) < 0) {
		kc_ytree_free(doc);
		doc = NULL;
	}
	return document(out, NULL, doc);
}

static int emit_namespace(struct kc_buf *out, const struct kc_rbac *r, const struct kc_rbac_ns *n, const char *identity)
{
	const char *name[] = { "name", n->ns, NULL };
	char comment[1024];

	if (document(out, NULL, object("v1", "Namespace", NULL, NULL, "metadata", map_of(name))) < 0)
		return -1;
	snprintf(comment, sizeof(comment), "%s: %s%s%s%s%s", n->ns,
		 n->token_any	    ? "mint tokens for any ServiceAccount here (a \"*\" rule names them after users)"
		 : n->token_names.n ? "mint tokens for the ServiceAccounts mapped here, by name"
				    : "no ServiceAccount is mapped here: no token is minted",
		 n->secrets ? ";\ncreate and delete the per-user revocation Secrets (never get, list or watch)" : "",
		 n->reconcile ? ";\ncreate the ServiceAccounts of create: true rules and their RoleBindings\n"
				"(delete too: roleRef is immutable, so a changed role means a new binding;\n"
				"get and delete by name where no \"*\" rule names them after users)"
			      : "",
		 n->bind_roles.n ? ";\nbind only the ClusterRoles the config names" : "",
		 n->fleet ? ";\nthe fleet's ConfigMaps: this host's, and the locks on users (the only\n"
			    "objects the helper lists; a ValidatingAdmissionPolicy below keeps everyone\n"
			    "else from writing them)"
			  : "");
	if (document(out, comment,
		     object("rbac.authorization.k8s.io/v1", "Role", KC_RBAC_OBJECT, n->ns, "rules",
			    rules_of(r, n->ns))) < 0)
		return -1;
	return binding(out, "RoleBinding", "Role", KC_RBAC_OBJECT, n->ns, identity);
}

/* Only the helper's identity writes the fleet's namespace: the locks and the
 * hosts' ConfigMaps are what every bastion believes (GA since Kubernetes 1.30). */
static void emit_fleet_policy(struct kc_buf *out, const char *ns, const char *identity)
{
	kc_autobuf struct kc_buf who = { 0 };

	for (const char *p = identity; *p; p++) /* a CEL string literal */
		kc_buf_printf(&who, "%s%c", *p == '\'' || *p == '\\' ? "\\" : "", *p);
	kc_buf_printf(out,
		      "---\n"
		      "# The fleet's namespace %s: ConfigMaps are written by the helper's identity alone.\n"
		      "# pam-kubeconfig check --online names who could still remove this policy.\n"
		      "apiVersion: admissionregistration.k8s.io/v1\n"
		      "kind: ValidatingAdmissionPolicy\n"
		      "metadata:\n  name: %s-%s\n"
		      "spec:\n"
		      "  failurePolicy: Fail\n"
		      "  matchConstraints:\n"
		      "    resourceRules:\n"
		      "    - apiGroups: [\"\"]\n"
		      "      apiVersions: [\"v1\"]\n"
		      "      operations: [\"CREATE\", \"UPDATE\", \"DELETE\"]\n"
		      "      resources: [\"configmaps\"]\n"
		      "  validations:\n"
		      "  - expression: \"request.userInfo.username == '%s'\"\n"
		      "    message: only pam-kubeconfig writes the fleet's ConfigMaps\n"
		      "    reason: Forbidden\n"
		      "---\n"
		      "apiVersion: admissionregistration.k8s.io/v1\n"
		      "kind: ValidatingAdmissionPolicyBinding\n"
		      "metadata:\n  name: %s-%s\n"
		      "spec:\n"
		      "  policyName: %s-%s\n"
		      "  validationActions: [Deny]\n"
		      "  matchResources:\n"
		      "    namespaceSelector:\n"
		      "      matchLabels:\n"
		      "        kubernetes.io/metadata.name: %s\n",
		      ns, KC_RBAC_OBJECT, ns, who.data ? who.data : "", KC_RBAC_OBJECT, ns, KC_RBAC_OBJECT, ns, ns);
}

static int emit_cluster_wide(struct kc_buf *out, const struct kc_rbac *r, const char *identity)
{
	if (document(out,
		     "Rules with cluster_wide: true bind their ServiceAccounts with ClusterRoleBindings,\n"
		     "to the ClusterRoles named here only. Kubernetes cannot limit create by name;\n"
		     "get and delete reach only the bindings those rules make.",
		     object("rbac.authorization.k8s.io/v1", "ClusterRole", KC_RBAC_OBJECT, NULL, "rules",
			    rules_of(r, NULL))) < 0)
		return -1;
	return binding(out, "ClusterRoleBinding", "ClusterRole", KC_RBAC_OBJECT, NULL, identity);
}

int kc_rbac_manifest(const struct kc_config *cfg, const char *cluster, const char *identity, struct kc_buf *out,
		     struct kc_err *err)
{
	const struct kc_cluster *cl = cluster ? kc_config_cluster(cfg, cluster) : NULL;
	struct kc_rbac r;
	int rc = 0;

	if (cluster && !cl) {
		kc_seterr(err, "%s: no cluster named '%s' in the config", cfg->path, cluster);
		return -1;
	}
	if (!cl && cfg->n_clusters > 1) {
		kc_seterr(err,
			  "%s: the config has %zu clusters: give --cluster NAME, and apply each cluster's "
			  "manifest to that cluster alone",
			  cfg->path, cfg->n_clusters);
		return -1;
	}
	if (!cl)
		cl = &cfg->clusters[0];
	if (kc_rbac_compute(cfg, cl, &r, err) < 0)
		return -1;
	kc_buf_printf(out,
		      "# Least privilege for the helper's identity (Kubernetes user \"%s\") on cluster \"%s\",\n"
		      "# as the mappings of %s need it. Produced by `pam-kubeconfig rbac --cluster %s`;\n"
		      "# apply to that cluster alone with `kubectl apply -f`.\n",
		      identity, cl->name, cfg->path, cl->name);
	for (size_t i = 0; i < r.n_ns && rc == 0; i++)
		rc = emit_namespace(out, &r, &r.ns[i], identity);
	if (rc == 0 && r.cluster_bind_roles.n)
		rc = emit_cluster_wide(out, &r, identity);
	if (rc == 0 && cfg->fleet_namespace)
		emit_fleet_policy(out, cfg->fleet_namespace, identity);
	kc_rbac_free(&r);
	if (rc < 0) {
		kc_seterr(err, "cannot emit the RBAC manifest");
		return -1;
	}
	return 0;
}

/* Commands for the administrator: check [--online], explain USER, rbac. */

#include "admin/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifecycle/auditlog.h"
#include "aws/aws_sources.h"
#include "aws/aws_credentials.h"
#include "aws/aws_sigv4.h"
#include "config/config.h"
#include "kube/kubeapi.h"
#include "kube/tokens.h"
#include "kube/configmaps.h"
#include "kube/objects.h"
#include "lifecycle/login.h"
#include "config/mapping.h"
#include "admin/rbac.h"
#include "common/fileio.h"
#include "config/sshcert.h"
#include "lifecycle/access.h"
#include "asuser/drop.h"
#include "kube/cluster.h"
#include "admin/hostcheck.h"

/* One permission the helper needs (or must not have). */
struct probe {
	const char *verb, *group, *resource, *subresource, *ns, *name;
};

static void describe(const struct probe *p, char *what, size_t len)
{
	snprintf(what, len, "%s %s%s%s%s%s%s%s", p->verb, p->resource, p->subresource ? "/" : "",
		 p->subresource ? p->subresource : "", p->name ? " " : "", p->name ? p->name : "",
		 p->ns ? " in namespace " : " cluster-wide", p->ns ? p->ns : "");
}

/* Asks the API server whether k's identity may do p: 1 yes, 0 no, -1 could not ask. */
static int allowed(struct kc_kube *k, const struct probe *p)
{
	struct kc_err err = { "" };
	bool yes = false;

	if (kc_kube_can_i(k, p->verb, p->group, p->resource, p->subresource, p->ns, p->name, &yes, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	return yes;
}

static int ask(struct kc_kube *k, const struct kc_cluster *cl, const struct probe *p, bool want, int *problems)
{
	char what[600];
	int yes = allowed(k, p);

	describe(p, what, sizeof(what));
	if (yes < 0) {
		(*problems)++;
		return -1;
	}
	if (want && !yes) {
		fprintf(stderr, "cluster %s: missing: %s; apply the output of pam-kubeconfig rbac --cluster %s\n",
			cl->name, what, cl->name);
		(*problems)++;
	} else if (!want && yes) {
		fprintf(stderr, "cluster %s: warning: the helper's identity may also %s, which it never needs\n",
			cl->name, what);
	}
	return 0;
}

/* Every verb on every name of one rule of the manifest. */
static int ask_rule(struct kc_kube *k, const struct kc_cluster *cl, const struct kc_rbac_rule *r, int *problems)
{
	char resource[128];
	const char *slash = strchr(r->resource, '/');
	struct probe p = { NULL, r->group, resource, slash ? slash + 1 : NULL, r->ns, NULL };

	snprintf(resource, sizeof(resource), "%.*s", (int)(slash ? (size_t)(slash - r->resource) : strlen(r->resource)),
		 r->resource);
	for (size_t v = 0; v < r->n_verbs; v++) {
		p.verb = r->verbs[v];
		for (size_t i = 0; i < (r->names ? r->names->n : 1); i++) {
			p.name = r->names ? r->names->items[i] : NULL;
			if (ask(k, cl, &p, true, problems) < 0)
				return -1;
		}
	}
	return 0;
}

/* Powers the helper never needs: each one it holds is a warning. */
static void ask_beyond(struct kc_kube *k, const struct kc_cluster *cl, const struct kc_rbac *r, int *problems)
{
	static const char *const peek[] = { "get", "list", "watch" };
	const char *other = "pam-kubeconfig-check-unmapped", *rbac = "rbac.authorization.k8s.io";

	for (size_t i = 0; i < r->n_ns; i++) {
		const struct kc_rbac_ns *n = &r->ns[i];

		if (!n->token_any)
			ask(k, cl, &(struct probe){ "create", "", "serviceaccounts", "token", n->ns, other }, false,
			    problems);
		for (size_t v = 0; v < 3; v++)
			ask(k, cl, &(struct probe){ peek[v], "", "secrets", NULL, n->ns, NULL }, false, problems);
		if (n->reconcile && !n->sa_any)
			ask(k, cl, &(struct probe){ "get", "", "serviceaccounts", NULL, n->ns, other }, false,
			    problems);
		if (n->bind_roles.n && !n->binding_any)
			ask(k, cl, &(struct probe){ "delete", rbac, "rolebindings", NULL, n->ns, other }, false,
			    problems);
	}
	ask(k, cl, &(struct probe){ "delete", rbac, "clusterrolebindings", NULL, NULL, other }, false, problems);
	ask(k, cl, &(struct probe){ "create", "", "serviceaccounts", "token", "kube-system", NULL }, false, problems);
	ask(k, cl, &(struct probe){ "*", "*", "*", NULL, NULL, NULL }, false, problems);
	ask(k, cl, &(struct probe){ "escalate", rbac, "clusterroles", NULL, NULL, NULL }, false, problems);
}

/* ---- isolation: what a mapped ServiceAccount may do to the others ---------- */

struct mapped_sa {
	char ns[KC_NS_MAX];
	char name[KC_NAME_MAX];
	const struct kc_mapping *rule;
};

static int add_mapped(struct mapped_sa **list, size_t *n, const char *ns, const char *name,
		      const struct kc_mapping *rule)
{
	struct mapped_sa *p;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i].ns, ns) == 0 && strcmp((*list)[i].name, name) == 0)
			return 0;
	p = realloc(*list, (*n + 1) * sizeof(*p));
	if (!p)
		return -1;
	*list = p;
	snprintf(p[*n].ns, sizeof(p[*n].ns), "%s", ns);
	snprintf(p[*n].name, sizeof(p[*n].name), "%s", name);
	p[*n].rule = rule;
	(*n)++;
	return 0;
}

/* The ServiceAccounts of this cluster's rules: fixed names as written, names
 * made from user names for every user of this host in scope. */
static size_t mapped_service_accounts(const struct kc_config *cfg, const struct kc_cluster *cl, struct mapped_sa **list)
{
	struct kc_target *t = calloc(cfg->n_clusters, sizeof(*t));
	size_t n = 0, c = (size_t)(cl - cfg->clusters);
	struct passwd pw, *pwp;
	char buf[16384];

	*list = NULL;
	if (!t)
		return 0;
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];

		if (strcmp(m->cluster, cl->name) == 0 && !strchr(m->sa_namespace, '{') && !strchr(m->sa_name, '{'))
			add_mapped(list, &n, m->sa_namespace, m->sa_name, m);
	}
	setpwent();
	while (getpwent_r(&pw, buf, sizeof(buf), &pwp) == 0 && pwp) {
		struct kc_identity id;
		struct kc_err err;

		if (pw.pw_uid == 0 || pw.pw_uid < cfg->min_uid || kc_identity_load(pw.pw_name, &id, &err) < 0)
			continue;
		kc_map_user(cfg, &id, t);
		if (t[c].rule && !t[c].error[0] && strchr(t[c].rule->sa_name, '{'))
			add_mapped(list, &n, t[c].sa_namespace, t[c].sa_name, t[c].rule);
		kc_identity_free(&id);
	}
	endpwent();
	free(t);
	return n;
}

static void role_of(const struct kc_mapping *m, char *out, size_t len)
{
	if (m->clusterrole)
		snprintf(out, len, "ClusterRole %s%s", m->clusterrole, m->cluster_wide ? " bound cluster-wide" : "");
	else
		snprintf(out, len, "a role bound outside this config");
}

/* As the ServiceAccount (token), may it delete Secrets or mint tokens in a
 * namespace where other users' Secrets or ServiceAccounts are? */
static void ask_as(const struct kc_config *cfg, struct kc_kube *as, const struct kc_rbac *r, const struct mapped_sa *sa)
{
	const struct kc_cluster *cl = r->cluster;
	char role[300];

	role_of(sa->rule, role, sizeof(role));
	for (size_t i = 0; i < r->n_ns; i++) {
		const char *ns = r->ns[i].ns;
		bool others = strcmp(ns, sa->ns) != 0 || kc_namespace_shared(cfg, cl->name, ns);

		if (!others)
			continue;
		if (allowed(as, &(struct probe){ "delete", "", "secrets", NULL, ns, NULL }) == 1)
			fprintf(stderr,
				"cluster %s: warning: ServiceAccount %s/%s (rule at %s:%u:%u, %s) can delete Secrets "
				"in "
				"namespace %s: every user mapped to it can delete other users' revocation Secrets "
				"there; bind a role that cannot, e.g. view\n",
				cl->name, sa->ns, sa->name, cfg->path, sa->rule->mark.line, sa->rule->mark.col, role,
				ns);
		if (allowed(as, &(struct probe){ "create", "", "serviceaccounts", "token", ns, NULL }) == 1)
			fprintf(stderr,
				"cluster %s: warning: ServiceAccount %s/%s (rule at %s:%u:%u, %s) can create tokens in "
				"namespace %s: every user mapped to it can act as the other ServiceAccounts there; "
				"bind a role that cannot, e.g. view\n",
				cl->name, sa->ns, sa->name, cfg->path, sa->rule->mark.line, sa->rule->mark.col, role,
				ns);
	}
}

/* The fleet's namespace is written by the helper's identity alone: the
 * ValidatingAdmissionPolicy of `rbac` refuses everyone else, as long as
 * nobody mapped can remove it. A dry-run create asks with admission. */
static void ask_fleet_as(const struct kc_config *cfg, struct kc_kube *as, const struct kc_cluster *cl,
			 const struct mapped_sa *sa)
{
	static const char *const kinds[] = { "validatingadmissionpolicies", "validatingadmissionpolicybindings" };
	const char *ns = cfg->fleet_namespace;
	struct kc_err err = { "" };
	bool yes = false;
	char role[300];

	role_of(sa->rule, role, sizeof(role));
	if (kc_kube_cm_may_write(as, ns, &yes, &err) < 0)
		fprintf(stderr, "cluster %s: %s; whether %s/%s can write the fleet's namespace was not checked\n",
			cl->name, err.msg, sa->ns, sa->name);
	else if (yes)
		fprintf(stderr,
			"cluster %s: warning: ServiceAccount %s/%s (rule at %s:%u:%u, %s) can write ConfigMaps in the "
			"fleet's namespace %s: every user mapped to it can lift a lock; apply the "
			"ValidatingAdmissionPolicy of pam-kubeconfig rbac --cluster %s\n",
			cl->name, sa->ns, sa->name, cfg->path, sa->rule->mark.line, sa->rule->mark.col, role, ns,
			cl->name);
	for (size_t i = 0; i < 2; i++)
		if (allowed(as, &(struct probe){ "delete", "admissionregistration.k8s.io", kinds[i], NULL, NULL,
						 NULL }) == 1)
			fprintf(stderr,
				"cluster %s: warning: ServiceAccount %s/%s (rule at %s:%u:%u, %s) can delete %s: "
				"every user mapped to it can remove the policy that keeps the fleet's locks; bind a "
				"role that cannot\n",
				cl->name, sa->ns, sa->name, cfg->path, sa->rule->mark.line, sa->rule->mark.col, role,
				kinds[i]);
}

static void check_isolation(const struct kc_config *cfg, struct kc_kube *k, const struct kc_cluster_endpoint *ep,
			    const struct kc_rbac *r)
{
	struct mapped_sa *list;
	size_t n = mapped_service_accounts(cfg, r->cluster, &list);

	for (size_t i = 0; i < n; i++) {
		/* The shortest token the API allows, bound to nothing, wiped after. */
		struct kc_token_spec spec = { list[i].ns, list[i].name, KC_MIN_TTL, NULL, 0, NULL, "" };
		struct kc_cluster_credential as_sa = { .bearer = { .secret = true } };
		struct kc_minted minted;
		struct kc_err err = { "" };
		struct kc_kube *as = NULL;
		int rc = kc_kube_token_request(k, &spec, &minted, &err);

		if (rc == KC_MINT_SA_MISSING) /* a ServiceAccount not made yet holds no rights */
			continue;
		if (rc != KC_MINT_OK) {
			fprintf(stderr, "%s; what %s/%s may do was not checked\n", err.msg, list[i].ns, list[i].name);
			continue;
		}
		/* On the ledger before it is used, as every mint. */
		if (kc_audit_ledger_mint(NULL, 0, r->cluster->name, list[i].ns, list[i].name, NULL, &minted, KC_MIN_TTL,
					 "check", NULL, 0, kc_now_ms() + 2000, &err) < 0) {
			kc_kube_minted_clear(&minted);
			fprintf(stderr, "%s; what %s/%s may do was not checked\n", err.msg, list[i].ns, list[i].name);
			continue;
		}
		kc_audit_mint(NULL, 0, r->cluster->name, list[i].ns, list[i].name, &minted, KC_MIN_TTL, "check", NULL,
			      0);
		if (kc_buf_puts(&as_sa.bearer, minted.token) == 0)
			as = kc_kube_open(ep, &as_sa, cfg->connect_timeout_ms, cfg->request_timeout_ms, &err);
		kc_cluster_credential_free(&as_sa);
		kc_kube_minted_clear(&minted);
		if (!as) {
			fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "out of memory");
			continue;
		}
		ask_as(cfg, as, r, &list[i]);
		if (cfg->fleet_namespace)
			ask_fleet_as(cfg, as, r->cluster, &list[i]);
		kc_kube_close(as);
	}
	free(list);
}

/* Probes exactly the rules `rbac` prints for this config, with no cap. */
static int check_online(const struct kc_config *cfg, const struct kc_cluster *cl)
{
	struct kc_rbac r;
	struct kc_cluster_endpoint ep = { 0 };
	struct kc_err err = { "" };
	struct kc_kube *k;
	int problems = 0;

	if (kc_rbac_compute(cfg, cl, &r, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	k = kc_kube_connect(cfg, cl, 0, &ep, &err);
	if (!k) {
		fprintf(stderr, "%s\n", err.msg);
		kc_cluster_endpoint_free(&ep);
		kc_rbac_free(&r);
		return 1;
	}
	for (size_t i = 0; i < r.n_rules; i++)
		if (ask_rule(k, cl, &r.rules[i], &problems) < 0)
			break;
	ask_beyond(k, cl, &r, &problems);
	check_isolation(cfg, k, &ep, &r);
	kc_kube_close(k);
	kc_cluster_endpoint_free(&ep);
	kc_rbac_free(&r);
	if (!problems)
		printf("cluster %s: the helper's identity holds every permission it needs\n", cl->name);
	return problems ? 1 : 0;
}

/* Can an unprivileged user fetch the instance role's credentials? Asked from a
 * child that has dropped to nobody for good. 1 yes, 0 no, -1 could not ask. */
static int imds_reachable_unprivileged(const struct kc_eks_ref *a, long timeout_ms)
{
	struct kc_identity nobody;
	struct kc_err err;
	pid_t pid;
	int status;

	if (kc_identity_load("nobody", &nobody, &err) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct kc_aws_credentials cred;

		struct kc_user u = { .name = nobody.name, .uid = nobody.uid, .gid = nobody.gid, .home = nobody.home };

		if (kc_asuser_drop(&u) < 0)
			_exit(3);
		_exit(kc_aws_credentials_from_imds(a->imds_endpoint, kc_now_ms() + timeout_ms, &cred, &err) == 0 ? 1
														 : 0);
	}
	kc_identity_free(&nobody);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return -1;
	return WEXITSTATUS(status);
}

static int check_imds(const struct kc_config *cfg)
{
	int problems = 0;

	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct kc_cluster *cl = &cfg->clusters[i];
		int r;

		if (cl->auth != KC_AUTH_EKS || cl->auth_eks.credentials_file || cl->auth_eks.web_identity_token_file ||
		    cl->auth_eks.credential_process || cl->auth_eks.container_uri)
			continue; /* IMDS is not asked */
		r = imds_reachable_unprivileged(&cl->auth_eks, cfg->connect_timeout_ms);
		if (r < 0) {
			fprintf(stderr, "cluster %s: could not probe the instance metadata service as nobody\n",
				cl->name);
			problems++;
			continue;
		}
		kc_imds_probe_record(r == 1);
		if (r == 1) {
			fprintf(stderr,
				"cluster %s: an unprivileged user (nobody) can fetch the instance role's credentials "
				"from the instance metadata service%s%s: any local user could mint tokens as the "
				"helper; "
				"apply the firewall rule shipped as imds.nft (or imds.iptables)\n",
				cl->name, cl->auth_eks.imds_endpoint ? " at " : "",
				cl->auth_eks.imds_endpoint ? cl->auth_eks.imds_endpoint : "");
			problems++;
		} else {
			printf("cluster %s: the instance metadata service is closed to unprivileged users\n", cl->name);
		}
	}
	return problems;
}

int kc_cmd_check(const char *config, bool online, bool allow_insecure)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, 0, &err);
	kc_autobuf struct kc_buf warnings = { 0 };
	int rc = KC_EXIT_OK;
	bool insecure = false;

	if (!cfg) {
		fprintf(stderr, "%s\n", err.msg);
		return KC_EXIT_USAGE;
	}
	if (kc_config_warnings(cfg, &warnings) > 0)
		fputs(warnings.data, stderr);
	kc_check_host(cfg, stderr);
	for (size_t i = 0; i < cfg->n_clusters; i++)
		insecure |= cfg->clusters[i].insecure_skip_tls_verify;
	if (insecure && !allow_insecure) {
		fprintf(stderr, "%s: insecure_skip_tls_verify is set; check refuses it unless given --allow-insecure\n",
			cfg->path);
		rc = KC_EXIT_USAGE;
	}
	if (rc == KC_EXIT_OK && online) {
		if (check_imds(cfg))
			rc = KC_EXIT_ERROR;
		for (size_t i = 0; i < cfg->n_clusters; i++)
			if (check_online(cfg, &cfg->clusters[i]))
				rc = KC_EXIT_ERROR;
	}
	if (rc == KC_EXIT_OK)
		printf("%s: OK (%zu cluster%s, %zu mapping rule%s)\n", cfg->path, cfg->n_clusters,
		       cfg->n_clusters == 1 ? "" : "s", cfg->n_mappings, cfg->n_mappings == 1 ? "" : "s");
	kc_config_free(cfg);
	return rc;
}

/* explain --ssh-cert FILE: the certificate a login would come with (an
 * OpenSSH -cert.pub file), judged as a login's would be. NULL: none, or it
 * does not pass (why printed). */
static struct kc_sshcert *explain_cert(const struct kc_access *a, const char *path, const char *user)
{
	kc_autobuf struct kc_buf text = { 0 };
	struct kc_sshcert *cert = NULL;
	struct kc_sshcert_verdict v;
	unsigned char *blob = NULL;
	size_t len = 0, at;
	struct kc_err e = { "" };

	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || kc_read_fd(fd, KC_SSHCERT_MAX * 2, &text, &e) < 0 || !text.data) {
		printf("certificate %s: %s\n", path, fd < 0 ? strerror(errno) : e.msg[0] ? e.msg : "empty");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	at = strcspn(text.data, " \t");
	if (!text.data[at] ||
	    kc_ssh_base64_decode(text.data + at + 1, strcspn(text.data + at + 1, " \t\n"), &blob, &len) < 0 ||
	    kc_sshcert_parse(blob, len, &cert, &e) != 0) {
		printf("certificate %s: not an OpenSSH certificate (%s)\n", path, e.msg[0] ? e.msg : "bad base64");
		free(blob);
		return NULL;
	}
	free(blob);
	if (kc_access_check_cert(a, cert, user, &v, &e) != 0) {
		printf("certificate %s: does not count for %s: %s\n", path, user, e.msg);
		kc_sshcert_free(cert);
		return NULL;
	}
	printf("certificate %s: \"%s\" (serial %llu) counts for %s; principals %s may act as:", path, cert->key_id,
	       (unsigned long long)cert->serial, user, user);
	for (size_t i = 0; i < v.n_principals; i++)
		printf(" %s", v.principals[i]);
	printf("\n");
	kc_sshcert_verdict_free(&v);
	return cert;
}

static void explain_target(const struct kc_config *cfg, const struct kc_target *t, const struct kc_access *a,
			   const char *user, int *rc)
{
	const struct kc_mapping *m = t->rule;

	if (t->locked) {
		const struct kc_lock *k = kc_locks_holding(&a->locks, user, t->cluster->name);
		char until[96] = "";

		if (k)
			kc_lock_until_text(k, until, sizeof(until));
		printf("cluster %s: locked by %s %s (pam-kubeconfig unlock %s)\n", t->cluster->name, k ? k->by : "?",
		       until, user);
		return;
	}
	if (!m) {
		printf("cluster %s: no rule matches\n", t->cluster->name);
		return;
	}
	printf("cluster %s: rule %zu at %s:%u:%u (%s %s", t->cluster->name, t->rule_index + 1, cfg->path, m->mark.line,
	       m->mark.col, m->user ? "user" : "group", m->user ? m->user : m->group);
	if (m->cert_principal || m->cert_key_id)
		printf(", with a certificate%s%s%s%s", m->cert_principal ? " principal " : "",
		       m->cert_principal ? m->cert_principal : "", m->cert_key_id ? " key id " : "",
		       m->cert_key_id ? m->cert_key_id : "");
	printf(") ");
	if (t->error[0]) {
		printf("matches but cannot be used:\n  %s\n", t->error);
		*rc = KC_EXIT_ERROR;
		return;
	}
	printf("-> ServiceAccount %s/%s", t->sa_namespace, t->sa_name);
	if (m->create)
		printf(", created if missing");
	if (m->clusterrole)
		printf(", bound to ClusterRole %s%s", m->clusterrole, m->cluster_wide ? " cluster-wide" : "");
	if (t->cert_until)
		printf(", until the certificate ends (%lld)", (long long)t->cert_until);
	printf("\n");
	if (*rc != KC_EXIT_ERROR)
		*rc = KC_EXIT_OK;
}

int kc_cmd_explain(const char *config, const char *user, const char *cert_path)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, 0, &err);
	struct kc_access access = { 0 };
	struct kc_user_access ua = { 0 };
	struct kc_sshcert *cert = NULL;
	struct kc_identity id;
	struct kc_target *t;
	int rc = KC_EXIT_IGNORE;

	if (!cfg) {
		fprintf(stderr, "%s\n", err.msg);
		return KC_EXIT_USAGE;
	}
	if (kc_identity_load(user, &id, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		kc_config_free(cfg);
		return KC_EXIT_ERROR;
	}
	printf("user %s (uid %u), groups:", id.name, (unsigned)id.uid);
	for (size_t i = 0; i < id.n_groups; i++)
		printf(" %s", id.groups[i]);
	printf("\n");
	if (id.uid == 0 || id.uid < cfg->min_uid) {
		printf("out of scope: %s\n", id.uid == 0 ? "root is never served" : "uid below min_uid");
		goto out;
	}
	if (kc_access_load(&access, cfg, KC_FLEET_NONE, 0, &err) < 0)
		printf("%s: every cluster counts as locked\n", err.msg);
	if (cert_path && !cfg->ssh_ca_keys)
		printf("certificate %s: not looked at: the config has no ssh_certificates.trusted_ca_keys\n",
		       cert_path);
	else if (cert_path)
		cert = explain_cert(&access, cert_path, user);
	kc_access_apply(&access, &id, -1, cert, &ua);
	t = calloc(cfg->n_clusters, sizeof(*t));
	if (!t)
		goto out;
	kc_map_user(cfg, &id, t);
	for (size_t c = 0; c < cfg->n_clusters; c++)
		explain_target(cfg, &t[c], &access, user, &rc);
	free(t);
out:
	kc_sshcert_free(cert);
	kc_user_access_free(&id, &ua);
	kc_access_free(&access);
	kc_identity_free(&id);
	kc_config_free(cfg);
	return rc;
}

int kc_cmd_rbac(const char *config, const char *cluster, const char *identity)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, KC_LOAD_NO_FILES, &err);
	kc_autobuf struct kc_buf out = { 0 };
	int rc = KC_EXIT_OK;

	if (!cfg) {
		fprintf(stderr, "%s\n", err.msg);
		return KC_EXIT_USAGE;
	}
	if (kc_rbac_manifest(cfg, cluster, identity, &out, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		rc = KC_EXIT_USAGE;
	} else {
		fputs(out.data ? out.data : "", stdout);
	}
	kc_config_free(cfg);
	return rc;
}

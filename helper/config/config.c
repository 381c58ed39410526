/* config.yaml -> struct kc_config, strictly: unknown keys, duplicate keys, wrong
 * types, aliases and oversize input are errors with PATH:LINE:COL. The field
 * lists (schema.c) say which key fills which member; this file says what the
 * values mean together. */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config/checks.h"
#include "config/sections.h"
#include "config/fields.h"
#include "aws/aws_credentials.h"
#include "config/config_cache.h"
#include "config/mapping.h"
#include "common/fileio.h"

#define fail_at cfg_fail_at

static bool valid_cluster_name(const char *s)
{
	if (!*s || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int parse_eks_ref(struct cfg_ctx *c, const struct kc_ynode *v, const char *what, bool for_auth,
			 struct kc_eks_ref *e)
{
	const char *bad_key = NULL;
	struct kc_err e2;

	e->discovery_ttl = 3600;
	if (cfg_fields_parse(c, &cfg_eks_desc, NULL, what, v, e, for_auth ? CF_AUTH : CF_DISCOVERY) < 0)
		return -1;
	for (const char *r = e->region; *r; r++)
		if (!islower((unsigned char)*r) && !isdigit((unsigned char)*r) && *r != '-')
			return fail_at(c, cfg_mark_of(v, "region"), "'region' must look like us-west-2 (got '%s')",
				       e->region);
	if (kc_aws_check_eks_ref(e, for_auth, &bad_key, &e2) < 0)
		return fail_at(c, cfg_mark_of(v, bad_key), "%s", e2.msg);
	return 0;
}

/* certificate_authority_data is decoded here; a certificate_authority file is
 * read by check_files at every load. */
static int load_ca(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_cluster *cl)
{
	const struct kc_ynode *data = kc_ytree_get(v, "certificate_authority_data");

	if (cl->ca_file && data)
		return fail_at(c, data->mark, "give certificate_authority or certificate_authority_data, not both");
	if (cl->ca_file)
		return 0; /* read by check_files, at every load */
	if (!data)
		return 0;
	cl->ca_mark = data->mark;
	if (data->kind != KC_YSCALAR)
		return fail_at(c, data->mark, "'certificate_authority_data' must be a single value, not %s",
			       cfg_kind_name(data->kind));
	if (kc_base64_decode(data->value, strlen(data->value), &cl->ca_pem, &cl->ca_pem_len) < 0 || cl->ca_pem_len == 0)
		return fail_at(
			c, cl->ca_mark,
			"'certificate_authority_data' is not valid base64; paste the output of base64 -w0 ca.pem");
	if (!cfg_holds_pem(cl->ca_pem, cl->ca_pem_len))
		return fail_at(c, cl->ca_mark,
			       "the certificate authority holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
	return 0;
}

/* Where the cluster is: eks discovery, or server and a CA (or, named, no TLS check). */
static int parse_endpoint(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_cluster *cl)
{
	const struct kc_ynode *eks = kc_ytree_get(v, "eks");

	if (eks) {
		cl->has_eks = true;
		if (parse_eks_ref(c, eks, "cluster eks", false, &cl->eks) < 0)
			return -1;
		if (cl->server || cl->ca_file || kc_ytree_get(v, "certificate_authority_data"))
			return fail_at(c, eks->mark,
				       "cluster '%s' has both eks (discovery) and server/certificate_authority; "
				       "keep one",
				       cl->name);
		return 0;
	}
	if (!cl->server)
		return fail_at(c, v->mark, "cluster '%s' needs 'server: https://...' (or 'eks:' for discovery)",
			       cl->name);
	if (strncmp(cl->server, "https://", 8) != 0 || !cl->server[8])
		return fail_at(c, cfg_mark_of(v, "server"), "'server' must be an https:// URL (got '%s')", cl->server);
	if (load_ca(c, v, cl) < 0)
		return -1;
	if (!cl->ca_file && !cl->ca_pem && !cl->insecure_skip_tls_verify)
		return fail_at(c, v->mark,
			       "cluster '%s' has no certificate authority; add certificate_authority: "
			       "/etc/pam_kubeconfig/%s-ca.pem (or certificate_authority_data)",
			       cl->name, cl->name);
	return 0;
}

/* The helper's own identity on the cluster: exactly one kind. */
static int parse_auth(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_cluster *cl)
{
	const struct kc_ynode *auth = kc_ytree_get(v, "auth");
	int kinds;

	if (!auth)
		return fail_at(c, v->mark,
			       "cluster '%s' needs 'auth:' (token_file, client_certificate + client_key, or eks)",
			       cl->name);
	cl->auth_mark = auth->mark;
	if (cfg_fields_parse(c, &cfg_cluster_desc, "auth", "auth", auth, cl, 0) < 0)
		return -1;
	kinds = !!cl->token_file + !!(cl->client_certificate || cl->client_key) + !!kc_ytree_get(auth, "eks");
	if (kinds != 1)
		return fail_at(c, auth->mark,
			       "auth needs exactly one of: token_file, client_certificate + client_key, eks");
	if (cl->token_file) {
		cl->auth = KC_AUTH_TOKEN;
	} else if (cl->client_certificate || cl->client_key) {
		cl->auth = KC_AUTH_CERT;
		if (!cl->client_certificate || !cl->client_key)
			return fail_at(c, auth->mark, "client_certificate and client_key go together; give both");
	} else {
		cl->auth = KC_AUTH_EKS;
		if (parse_eks_ref(c, kc_ytree_get(auth, "eks"), "auth eks", true, &cl->auth_eks) < 0)
			return -1;
	}
	return 0;
}

/* "10.0.3.7", "10.0.3.7:6443", "fd00::7" or "[fd00::7]:6443" -> "ip port"
 * (port 0: the server's). Addresses only: a cut never waits on DNS. */
static int front_door(const char *s, char *out, size_t len)
{
	char ip[64];
	unsigned char a[16];
	const char *colon = strrchr(s, ':');
	unsigned long port = 0;
	char *end;

	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return snprintf(out, len, "%s 0", s) < (int)len ? 0 : -1;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(ip) + 2)
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port == 0 || port > 65535)
		return -1;
	if (s[0] == '[' && colon[-1] == ']')
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s - 2), s + 1);
	else
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s), s);
	if (inet_pton(AF_INET, ip, a) != 1 && !(s[0] == '[' && inet_pton(AF_INET6, ip, a) == 1))
		return -1;
	return snprintf(out, len, "%s %lu", ip, port) < (int)len ? 0 : -1;
}

static int parse_front_doors(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_cluster *cl)
{
	const struct kc_ynode *a = kc_ytree_get(v, "also_reachable_at");

	if (!a)
		return 0;
	if (a->kind != KC_YSEQ)
		return fail_at(c, a->mark,
			       "'also_reachable_at' must be a list of addresses, e.g. [10.0.3.7, 10.0.4.7]");
	cl->also_reachable_at = calloc(a->n + 1, sizeof(char *));
	if (!cl->also_reachable_at)
		return fail_at(c, a->mark, "out of memory");
	for (size_t i = 0; i < a->n; i++) {
		char door[96];

		if (a->items[i]->kind != KC_YSCALAR || front_door(a->items[i]->value, door, sizeof(door)) < 0)
			return fail_at(c, a->items[i]->mark,
				       "each of 'also_reachable_at' must be an IP address, optionally with a port "
				       "(10.0.3.7, 10.0.3.7:443, [fd00::7]:443); names are not resolved at a logout");
		if (!(cl->also_reachable_at[i] = strdup(door)))
			return fail_at(c, a->mark, "out of memory");
		cl->n_also++;
	}
	return 0;
}

static int parse_cluster(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_cluster *cl)
{
	cl->mark = v->mark;
	if (cfg_fields_parse(c, &cfg_cluster_desc, NULL, "a cluster", v, cl, 0) < 0)
		return -1;
	if (!valid_cluster_name(cl->name))
		return fail_at(c, cfg_mark_of(v, "name"),
			       "cluster name '%s' may hold only letters, digits, '-', '_' and '.'", cl->name);
	if (parse_endpoint(c, v, cl) < 0)
		return -1;
	if (cl->proxy && strncmp(cl->proxy, "http://", 7) != 0 && strncmp(cl->proxy, "https://", 8) != 0)
		return fail_at(c, cfg_mark_of(v, "proxy"), "'proxy' must be an http:// or https:// URL");
	if (parse_auth(c, v, cl) < 0 || parse_front_doors(c, v, cl) < 0)
		return -1;
	cl->context_given = cl->context != NULL;
	if (!cl->context && !(cl->context = strdup(cl->name)))
		return fail_at(c, v->mark, "out of memory");
	return 0;
}

/* NAMESPACE/NAME, each a template that can form a valid name. */
static int parse_serviceaccount(struct cfg_ctx *c, const struct kc_ynode *v, struct kc_mapping *m)
{
	const struct kc_ynode *sa = kc_ytree_get(v, "serviceaccount");
	const char *slash;
	char why[256];

	if (sa->kind != KC_YSCALAR)
		return fail_at(c, sa->mark, "'serviceaccount' must be a single value, not %s", cfg_kind_name(sa->kind));
	slash = strchr(sa->value, '/');
	if (!slash || strchr(slash + 1, '/'))
		return fail_at(c, m->sa_mark,
			       "'serviceaccount' must be NAMESPACE/NAME, e.g. bastion-users/u-{user_safe} (got '%s')",
			       sa->value);
	m->sa_namespace = strndup(sa->value, (size_t)(slash - sa->value));
	m->sa_name = strdup(slash + 1);
	if (!m->sa_namespace || !m->sa_name)
		return fail_at(c, m->sa_mark, "out of memory");
	if (kc_template_check(m->sa_namespace, true, why, sizeof(why)) < 0 ||
	    kc_template_check(m->sa_name, false, why, sizeof(why)) < 0)
		return fail_at(c, m->sa_mark, "%s", why);
	return 0;
}

static int check_binding(struct cfg_ctx *c, const struct kc_ynode *v, const struct kc_mapping *m)
{
	if (m->clusterrole && !m->create)
		return fail_at(
			c, cfg_mark_of(v, "clusterrole"),
			"'clusterrole' binds a ServiceAccount the helper creates; add 'create: true' or remove it");
	if (m->cluster_wide && !m->clusterrole)
		return fail_at(c, cfg_mark_of(v, "cluster_wide"), "'cluster_wide' needs a 'clusterrole' to bind");
	if (m->cluster_wide && strchr(m->sa_name, '{'))
		return fail_at(c, cfg_mark_of(v, "cluster_wide"),
			       "'cluster_wide' needs a ServiceAccount name without {user} or {user_safe}: Kubernetes "
			       "cannot limit creating ClusterRoleBindings by name, only deleting them, so the helper "
			       "may delete only the bindings of rules whose names it knows; bind per namespace "
			       "instead (drop cluster_wide), or map to a fixed ServiceAccount");
	if (m->clusterrole && !*m->clusterrole)
		return fail_at(c, cfg_mark_of(v, "clusterrole"),
			       "'clusterrole' is empty; name a ClusterRole such as view");
	return 0;
}

static int parse_mapping(struct cfg_ctx *c, const struct kc_config *cfg, const struct kc_ynode *v, struct kc_mapping *m)
{
	m->mark = v->mark;
	if (cfg_fields_parse(c, &cfg_mapping_desc, NULL, "a mapping rule", v, m, 0) < 0)
		return -1;
	if (!!m->user == !!m->group)
		return fail_at(c, v->mark, "a mapping rule needs exactly one of 'user:' or 'group:'");
	if (!kc_config_cluster(cfg, m->cluster))
		return fail_at(c, cfg_mark_of(v, "cluster"),
			       "unknown cluster '%s'; it must be the name of an entry under clusters:", m->cluster);
	if (parse_serviceaccount(c, v, m) < 0 || cfg_parse_rule_certificate(c, cfg, v, m) < 0)
		return -1;
	return check_binding(c, v, m);
}

static char *default_host_id(void)
{
	char buf[128] = "";
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = -1;

	if (fd >= 0) {
		n = kc_read_all(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (!buf[0] && gethostname(buf, sizeof(buf) - 1) < 0)
		return NULL;
	return strdup(buf);
}

static bool valid_host_id(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int parse_kubeconfig_path(struct cfg_ctx *c, const struct kc_ynode *v, const char *p, struct kc_config *cfg)
{
	const char *rel;

	if (strncmp(p, "~/", 2) != 0)
		return fail_at(c, v->mark, "'path' must start with ~/ (the user's home), e.g. ~/.kube/config-eks");
	rel = p + 2;
	if (!*rel || rel[strlen(rel) - 1] == '/' || strstr(rel, "//"))
		return fail_at(c, v->mark, "'path' must name a file under the home, e.g. ~/.kube/config-eks");
	for (const char *s = rel; *s;) {
		size_t n = strcspn(s, "/");

		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return fail_at(c, v->mark, "'path' may not contain . or .. components");
		s += n;
		if (*s == '/')
			s++;
	}
	cfg->kubeconfig_path = strdup(rel);
	return cfg->kubeconfig_path ? 0 : -1;
}

static int parse_identity(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v = kc_ytree_get(root, "min_uid");

	cfg->min_uid = 1000;
	if (v) {
		char *end;

		errno = 0;
		if (!cfg_plain(v) || !isdigit((unsigned char)v->value[0]) ||
		    (cfg->min_uid = strtoul(v->value, &end, 10), errno || *end) || cfg->min_uid < 1 ||
		    cfg->min_uid > 4294967294UL)
			return fail_at(c, v->mark, "'min_uid' must be a number from 1 up, e.g. 1000");
	}
	if (cfg->host_id && *cfg->host_id && !valid_host_id(cfg->host_id))
		return fail_at(c, cfg_mark_of(root, "host_id"),
			       "'host_id' may hold only letters, digits, '-', '_' and '.' (at most 64)");
	if (!cfg->host_id || !*cfg->host_id) {
		free(cfg->host_id);
		cfg->host_id = (c->flags & KC_LOAD_NO_FILES) ? strdup("test-host") : default_host_id();
		if (!cfg->host_id)
			return fail_at(c, root->mark,
				       "no host_id given and /etc/machine-id is unreadable; set host_id");
	}
	return 0;
}

/* A section's plain keys, checked and read by the field list; absent: {}. */
static int section(struct cfg_ctx *c, const struct kc_ynode *root, const char *name, struct kc_config *cfg,
		   const struct kc_ynode **v)
{
	*v = kc_ytree_get(root, name);
	return *v ? cfg_fields_parse(c, &cfg_config_desc, name, name, *v, cfg, 0) : 0;
}

static int parse_kubeconfig(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v, *p;

	cfg->set_env = true;
	cfg->remove_on_logout = false; /* the file holds no secret; other bastions may share the home */
	if (section(c, root, "kubeconfig", cfg, &v) < 0)
		return -1;
	if (v && (p = kc_ytree_get(v, "path"))) {
		if (p->kind != KC_YSCALAR)
			return fail_at(c, p->mark, "'path' must be a single value, not %s", cfg_kind_name(p->kind));
		if (parse_kubeconfig_path(c, p, p->value, cfg) < 0)
			return -1;
	}
	if (!cfg->kubeconfig_path && !(cfg->kubeconfig_path = strdup(".kube/config-eks")))
		return fail_at(c, root->mark, "out of memory");
	return 0;
}

static int parse_audiences(struct cfg_ctx *c, const struct kc_ynode *a, struct kc_config *cfg)
{
	if (a->kind != KC_YSEQ)
		return fail_at(c, a->mark, "'audiences' must be a list, e.g. [\"https://kubernetes.default.svc\"]");
	cfg->audiences = calloc(a->n + 1, sizeof(char *));
	if (!cfg->audiences)
		return fail_at(c, a->mark, "out of memory");
	for (size_t i = 0; i < a->n; i++) {
		if (a->items[i]->kind != KC_YSCALAR || !*a->items[i]->value)
			return fail_at(c, a->items[i]->mark, "each audience must be a non-empty string");
		if (!(cfg->audiences[i] = strdup(a->items[i]->value)))
			return fail_at(c, a->mark, "out of memory");
		cfg->n_audiences++;
	}
	return 0;
}

static int parse_token(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v, *rb, *a;

	cfg->ttl = 15 * 60;
	cfg->revoke_on_logout = true;
	cfg->refresh_before = 20;
	if (section(c, root, "token", cfg, &v) < 0 || !v)
		return v ? -1 : 0;
	if (cfg->ttl < KC_MIN_TTL)
		return fail_at(c, cfg_mark_of(v, "ttl"),
			       "'ttl' is below the 10m minimum the API server accepts; write 10m or more");
	if (cfg->ttl > 0xffffffffL)
		return fail_at(c, cfg_mark_of(v, "ttl"), "'ttl' is too long; tokens should be short-lived, e.g. 8h");
	if ((rb = kc_ytree_get(v, "refresh_before")) &&
	    (rb->kind != KC_YSCALAR || kc_parse_percent(rb->value, &cfg->refresh_before) < 0))
		return fail_at(c, rb->mark,
			       "'refresh_before' must be a share of the lifetime from 1%% to 99%%, e.g. 20%%");
	/* refresh runs every minute: under two minutes of warning, a rotation can be missed. */
	if (cfg->ttl * cfg->refresh_before / 100 < 120)
		return fail_at(c, rb ? rb->mark : cfg_mark_of(v, "ttl"),
			       "'ttl' x 'refresh_before' leaves %lds to rotate a token in; refresh runs once a minute, "
			       "so make it at least 2m (e.g. ttl: 15m with refresh_before: 20%%)",
			       cfg->ttl * cfg->refresh_before / 100);
	return (a = kc_ytree_get(v, "audiences")) ? parse_audiences(c, a, cfg) : 0;
}

static int timeout_ms(struct cfg_ctx *c, const struct kc_ynode *v, const char *key, long dflt, long *out)
{
	const struct kc_ynode *t = v ? kc_ytree_get(v, key) : NULL;
	long s = dflt;

	if (t && (t->kind != KC_YSCALAR || kc_parse_duration(t->value, &s) < 0))
		return fail_at(c, t->mark, "'%s' must be a duration such as 90s, 10m, 8h or 1h30m%s%s%s", key,
			       t->kind == KC_YSCALAR ? " (got '" : "", t->kind == KC_YSCALAR ? t->value : "",
			       t->kind == KC_YSCALAR ? "')" : "");
	if (s < 1 || s > 60)
		return fail_at(c, t->mark, "'%s' must be from 1s to 60s", key);
	*out = s * 1000;
	return 0;
}

static int parse_network(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v;

	cfg->after_failure = 30;
	cfg->cut_on_logout = true;
	if (section(c, root, "network", cfg, &v) < 0)
		return -1;
	if (timeout_ms(c, v, "connect_timeout", 2, &cfg->connect_timeout_ms) < 0 ||
	    timeout_ms(c, v, "request_timeout", 5, &cfg->request_timeout_ms) < 0)
		return -1;
	return 0;
}

static int parse_clusters(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v = kc_ytree_get(root, "clusters");

	if (!v || v->kind != KC_YSEQ || v->n == 0)
		return fail_at(c, v ? v->mark : root->mark, "'clusters' must be a list with at least one cluster");
	cfg->clusters = calloc(v->n, sizeof(*cfg->clusters));
	if (!cfg->clusters)
		return fail_at(c, v->mark, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		cfg->n_clusters++;
		if (parse_cluster(c, v->items[i], &cfg->clusters[i]) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->clusters[j].name, cfg->clusters[i].name) == 0)
				return fail_at(c, v->items[i]->mark,
					       "a second cluster named '%s'; names must be unique",
					       cfg->clusters[i].name);
	}
	return 0;
}

static int parse_mappings(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v = kc_ytree_get(root, "mappings");

	if (!v)
		return fail_at(c, root->mark, "'mappings' is missing: without rules nobody gets a kubeconfig");
	if (v->kind != KC_YSEQ)
		return fail_at(c, v->mark, "'mappings' must be a list of rules");
	cfg->mappings = calloc(v->n ? v->n : 1, sizeof(*cfg->mappings));
	if (!cfg->mappings)
		return fail_at(c, v->mark, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		cfg->n_mappings++;
		if (parse_mapping(c, cfg, v->items[i], &cfg->mappings[i]) < 0)
			return -1;
	}
	return 0;
}

static int parse_root(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	if (cfg_fields_parse(c, &cfg_config_desc, NULL, "the top level", root, cfg, 0) < 0 ||
	    parse_identity(c, root, cfg) < 0 || parse_kubeconfig(c, root, cfg) < 0 || parse_token(c, root, cfg) < 0 ||
	    parse_network(c, root, cfg) < 0 || cfg_parse_sections(c, root, cfg) < 0 ||
	    parse_clusters(c, root, cfg) < 0 || parse_mappings(c, root, cfg) < 0)
		return -1;
	return 0;
}

/* The YAML alone: what a cache can stand in for. */
static struct kc_config *parse_text(const char *name, const char *data, size_t len, unsigned flags, struct kc_err *err)
{
	struct cfg_ctx c = { name, err, flags };
	struct kc_ynode *root = cfg_tree_parse(&c, data, len);
	struct kc_config *cfg;

	if (!root)
		return NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		free(cfg);
		kc_ytree_free(root);
		kc_seterr(err, "%s: out of memory", name);
		return NULL;
	}
	if (parse_root(&c, root, cfg) < 0) {
		if (!err->msg[0])
			kc_seterr(err, "%s: out of memory", name);
		kc_config_free(cfg);
		cfg = NULL;
	}
	kc_ytree_free(root);
	return cfg;
}

static struct kc_config *with_files_checked(struct kc_config *cfg, unsigned flags, struct kc_err *err)
{
	struct cfg_ctx c = { cfg->path, err, flags };

	if (!(flags & KC_LOAD_NO_FILES) && cfg_check_files(&c, cfg) < 0) {
		kc_config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct kc_config *kc_config_parse(const char *name, const char *data, size_t len, unsigned flags, struct kc_err *err)
{
	struct kc_config *cfg = parse_text(name, data, len, flags, err);

	return cfg ? with_files_checked(cfg, flags, err) : NULL;
}

struct kc_config *kc_config_load(const char *path, unsigned flags, struct kc_err *err)
{
	kc_autobuf struct kc_buf data = { 0 };
	kc_autoclose int fd = -1;
	struct kc_config *cfg;
	struct stat st;
	struct kc_err e;

	err->msg[0] = '\0';
	if (flags & KC_LOAD_NO_FILES) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || kc_read_fd(fd, KC_CONFIG_MAX + 1, &data, &e) < 0) {
			kc_seterr(err, "cannot read %s: %s", path, fd < 0 ? strerror(errno) : e.msg);
			return NULL;
		}
		return kc_config_parse(path, data.data ? data.data : "", data.len, flags, err);
	}
	/* A problem with the file as a whole has no line: the message starts with the path. */
	fd = kc_open_root_file(path, KC_CONFIG_MAX, 022, &st, &e);
	if (fd < 0) {
		kc_seterr(err, "%s", e.msg);
		return NULL;
	}
	/* An unchanged file (same inode, size, mtime and ctime) was parsed before. */
	cfg = kc_config_cache_get(path, &st);
	if (cfg)
		return with_files_checked(cfg, flags, err);
	if (kc_read_fd(fd, KC_CONFIG_MAX, &data, &e) < 0) {
		kc_seterr(err, "%s", e.msg);
		return NULL;
	}
	cfg = parse_text(path, data.data ? data.data : "", data.len, flags, err);
	if (!cfg)
		return NULL;
	kc_config_cache_put(path, &st, cfg);
	return with_files_checked(cfg, flags, err);
}

void kc_config_free(struct kc_config *cfg)
{
	cfg_fields_free(&cfg_config_desc, cfg);
	free(cfg);
}

const struct kc_cluster *kc_config_cluster(const struct kc_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_clusters; i++)
		if (strcmp(cfg->clusters[i].name, name) == 0)
			return &cfg->clusters[i];
	return NULL;
}

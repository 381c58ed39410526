/* config.yaml -> struct kc_config, strictly: unknown keys, duplicate keys, wrong
 * types, aliases and oversize input are errors with PATH:LINE:COL. */
#include "kc_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "kc_aws.h"
#include "kc_config_cache.h"
#include "kc_mapping.h"

#define MAX_DEPTH 32
#define MAX_NODES 2000000u

/* ---- a small document tree built from libyaml events -------------------- */

enum node_kind { N_SCALAR, N_MAP, N_SEQ };

struct node {
	enum node_kind kind;
	struct kc_mark mark;
	char *value; /* scalars */
	bool plain; /* an unquoted scalar: may be a bool or a number */
	struct node **items; /* MAP: key, value, key, value...; SEQ: items */
	size_t n, cap;
};

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

struct ctx {
	const char *path;
	struct kc_err *err;
	unsigned flags;
	size_t nodes;
};

static int fail_at(struct ctx *c, struct kc_mark m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(struct ctx *c, struct kc_mark m, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kc_seterr(c->err, "%s:%u:%u: %s", c->path, m.line, m.col, msg);
	return -1;
}

static struct kc_mark mark_of(yaml_mark_t m)
{
	struct kc_mark k = { (unsigned)m.line + 1, (unsigned)m.column + 1 };
	return k;
}

static int node_push(struct node *parent, struct node *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		/* an array of pointers to nodes */
		struct node **p = realloc(parent->items, cap * sizeof(*p)); // NOLINT(bugprone-sizeof-expression)

		if (!p)
			return -1;
		parent->items = p;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

static void syntax_error(struct ctx *c, const yaml_parser_t *p)
{
	fail_at(c, mark_of(p->problem_mark), "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown",
		p->context ? " " : "", p->context ? p->context : "");
}

/* Reads one node (and its children) from the parser; the event that starts it
 * has been read into ev. */
static struct node *build(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev, int depth)
{
	struct node *n;

	if (ev->type == YAML_ALIAS_EVENT) {
		fail_at(c, mark_of(ev->start_mark), "YAML aliases (*name) are not supported; write the value out");
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		fail_at(c, mark_of(ev->start_mark), "nested more than %d levels deep", MAX_DEPTH);
		return NULL;
	}
	if (++c->nodes > MAX_NODES) {
		fail_at(c, mark_of(ev->start_mark), "more than %u values in one file", MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		fail_at(c, mark_of(ev->start_mark), "out of memory");
		return NULL;
	}
	n->mark = mark_of(ev->start_mark);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = N_SCALAR;
		if (strlen((char *)ev->data.scalar.value) != ev->data.scalar.length) {
			fail_at(c, n->mark, "a value contains a NUL byte");
			goto fail;
		}
		n->value = strdup((char *)ev->data.scalar.value);
		n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (!n->value)
			goto fail;
		return n;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		yaml_event_type_t end =
			ev->type == YAML_MAPPING_START_EVENT ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

		n->kind = ev->type == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ;
		for (;;) {
			yaml_event_t child_ev;
			struct node *child;

			if (!yaml_parser_parse(p, &child_ev)) {
				syntax_error(c, p);
				goto fail;
			}
			if (child_ev.type == end) {
				yaml_event_delete(&child_ev);
				return n;
			}
			child = build(c, p, &child_ev, depth + 1);
			yaml_event_delete(&child_ev);
			if (!child)
				goto fail;
			if (node_push(n, child) < 0) {
				node_free(child);
				goto fail;
			}
		}
	}
	default: fail_at(c, n->mark, "unexpected YAML event"); goto fail;
	}
fail:
	node_free(n);
	return NULL;
}

static struct node *parse_document(struct ctx *c, const char *data, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct node *root = NULL;
	int state = 0; /* 0 before the document, 1 after its root */

	if (!yaml_parser_initialize(&p)) {
		kc_seterr(c->err, "%s: out of memory", c->path);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(c, &p);
			goto fail;
		}
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT: break;
		case YAML_DOCUMENT_START_EVENT:
			if (root) {
				fail_at(c, mark_of(ev.start_mark),
					"a second YAML document; the config is one document");
				yaml_event_delete(&ev);
				goto fail;
			}
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			yaml_parser_delete(&p);
			if (!root) {
				struct kc_mark m = { 1, 1 };
				fail_at(c, m, "the file is empty; see pam_kubeconfig.yaml(5) for the format");
			}
			return root;
		default:
			if (state == 0) {
				root = build(c, &p, &ev, 0);
				state = 1;
				if (!root) {
					yaml_event_delete(&ev);
					goto fail;
				}
			}
			break;
		}
		yaml_event_delete(&ev);
	}
fail:
	yaml_parser_delete(&p);
	node_free(root);
	return NULL;
}

/* ---- typed access with strict checks ------------------------------------ */

static const char *kind_name(enum node_kind k)
{
	return k == N_MAP ? "a mapping" : k == N_SEQ ? "a list" : "a single value";
}

static int check_keys(struct ctx *c, const struct node *map, const char *what, const char *const allowed[])
{
	if (map->kind != N_MAP)
		return fail_at(c, map->mark, "%s must be a mapping of key: value, not %s", what, kind_name(map->kind));
	for (size_t i = 0; i < map->n; i += 2) {
		const struct node *k = map->items[i];
		bool known = false;

		if (k->kind != N_SCALAR)
			return fail_at(c, k->mark, "keys in %s must be plain words", what);
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(map->items[j]->value, k->value) == 0)
				return fail_at(c, k->mark, "duplicate key '%s' in %s (first at line %u); keep one",
					       k->value, what, map->items[j]->mark.line);
		for (size_t j = 0; allowed[j]; j++)
			if (strcmp(allowed[j], k->value) == 0)
				known = true;
		if (!known) {
			char list[512] = "";
			size_t off = 0;

			for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "",
							allowed[j]);
			return fail_at(c, k->mark, "unknown key '%s' in %s; expected one of: %s", k->value, what, list);
		}
	}
	return 0;
}

static const struct node *get(const struct node *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->items[i]->value, key) == 0)
			return map->items[i + 1];
	return NULL;
}

static int get_str(struct ctx *c, const struct node *map, const char *what, const char *key, char **out, bool required)
{
	const struct node *v = get(map, key);

	if (!v) {
		if (required)
			return fail_at(c, map->mark, "%s needs '%s'", what, key);
		return 0;
	}
	if (v->kind != N_SCALAR)
		return fail_at(c, v->mark, "'%s' must be a single value, not %s", key, kind_name(v->kind));
	free(*out);
	*out = strdup(v->value);
	if (!*out)
		return fail_at(c, v->mark, "out of memory");
	return 0;
}

static int get_bool(struct ctx *c, const struct node *map, const char *key, bool *out)
{
	const struct node *v = get(map, key);

	if (!v)
		return 0;
	if (v->kind == N_SCALAR && v->plain && strcmp(v->value, "true") == 0)
		*out = true;
	else if (v->kind == N_SCALAR && v->plain && strcmp(v->value, "false") == 0)
		*out = false;
	else
		return fail_at(c, v->mark, "'%s' must be true or false", key);
	return 0;
}

static int get_duration(struct ctx *c, const struct node *map, const char *key, long *out)
{
	const struct node *v = get(map, key);

	if (!v)
		return 0;
	if (v->kind != N_SCALAR || kc_parse_duration(v->value, out) < 0)
		return fail_at(c, v->mark, "'%s' must be a duration such as 90s, 10m, 8h or 1h30m%s%s%s", key,
			       v->kind == N_SCALAR ? " (got '" : "", v->kind == N_SCALAR ? v->value : "",
			       v->kind == N_SCALAR ? "')" : "");
	return 0;
}

static const struct kc_mark *mark_of_key(const struct node *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->items[i]->value, key) == 0)
			return &map->items[i + 1]->mark;
	return &map->mark;
}

/* ---- sections ------------------------------------------------------------ */

/* A file the config names: an absolute path, whose mark is kept for the file
 * checks that run at every load (check_files). */
static int file_key(struct ctx *c, const struct node *map, const char *key, const char *file, struct kc_mark *mark)
{
	*mark = *mark_of_key(map, key);
	if (file[0] != '/')
		return fail_at(c, *mark, "'%s' must be an absolute path (got '%s')", key, file);
	return 0;
}

static bool valid_cluster_name(const char *s)
{
	if (!*s || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int parse_eks_ref(struct ctx *c, const struct node *v, const char *what, bool for_auth, struct kc_eks_ref *e)
{
	static const char *const discovery_keys[] = {
		"cluster_name",		  "region",   "discovery_ttl", "use_fips_endpoint",
		"use_dualstack_endpoint", "endpoint", "endpoint_ca",   NULL
	};
	static const char *const auth_keys[] = { "cluster_name",
						 "cluster_id",
						 "region",
						 "role_arn",
						 "credentials_file",
						 "profile",
						 "web_identity_token_file",
						 "credential_process",
						 "container_credentials_uri",
						 "container_authorization_token_file",
						 "use_fips_endpoint",
						 "use_dualstack_endpoint",
						 "sts_endpoint",
						 "imds_endpoint",
						 "endpoint_ca",
						 NULL };
	const struct {
		const char *key;
		char **slot;
		struct kc_mark *file_mark; /* an absolute path checked at every load */
	} strs[] = {
		{ "cluster_id", &e->cluster_id, NULL },
		{ "role_arn", &e->role_arn, NULL },
		{ "credentials_file", &e->credentials_file, &e->credentials_mark },
		{ "profile", &e->profile, NULL },
		{ "web_identity_token_file", &e->web_identity_token_file, &e->web_identity_mark },
		{ "credential_process", &e->credential_process, NULL },
		{ "container_credentials_uri", &e->container_uri, NULL },
		{ "container_authorization_token_file", &e->container_token_file, &e->container_token_mark },
		{ "endpoint", &e->endpoint, NULL },
		{ "sts_endpoint", &e->sts_endpoint, NULL },
		{ "imds_endpoint", &e->imds_endpoint, NULL },
		{ "endpoint_ca", &e->endpoint_ca, &e->endpoint_ca_mark },
	};
	const char *bad_key = NULL;
	struct kc_err e2;

	e->discovery_ttl = 3600;
	if (check_keys(c, v, what, for_auth ? auth_keys : discovery_keys) < 0 ||
	    get_str(c, v, what, "cluster_name", &e->cluster_name, true) < 0 ||
	    get_str(c, v, what, "region", &e->region, true) < 0 ||
	    get_bool(c, v, "use_fips_endpoint", &e->use_fips_endpoint) < 0 ||
	    get_bool(c, v, "use_dualstack_endpoint", &e->use_dualstack_endpoint) < 0 ||
	    get_duration(c, v, "discovery_ttl", &e->discovery_ttl) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const struct node *s = get(v, strs[i].key);

		if (!s)
			continue;
		if (s->kind != N_SCALAR)
			return fail_at(c, s->mark, "'%s' must be a single value, not %s", strs[i].key,
				       kind_name(s->kind));
		if (!(*strs[i].slot = strdup(s->value)))
			return fail_at(c, s->mark, "out of memory");
		if (strs[i].file_mark && file_key(c, v, strs[i].key, s->value, strs[i].file_mark) < 0)
			return -1;
	}
	for (const char *r = e->region; *r; r++)
		if (!islower((unsigned char)*r) && !isdigit((unsigned char)*r) && *r != '-')
			return fail_at(c, *mark_of_key(v, "region"), "'region' must look like us-west-2 (got '%s')",
				       e->region);
	e->process_mark = *mark_of_key(v, "credential_process");
	if (kc_aws_check_eks_ref(e, for_auth, &bad_key, &e2) < 0)
		return fail_at(c, *mark_of_key(v, bad_key), "%s", e2.msg);
	return 0;
}

static bool holds_pem(const unsigned char *data, size_t len)
{
	return memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) != NULL;
}

/* certificate_authority_data is decoded here; a certificate_authority file is
 * read by check_files at every load. */
static int load_ca(struct ctx *c, const struct node *v, struct kc_cluster *cl, const char *data_b64)
{
	if (!data_b64)
		return file_key(c, v, "certificate_authority", cl->ca_file, &cl->ca_mark);
	cl->ca_mark = *mark_of_key(v, "certificate_authority_data");
	if (kc_base64_decode(data_b64, strlen(data_b64), &cl->ca_pem, &cl->ca_pem_len) < 0 || cl->ca_pem_len == 0)
		return fail_at(
			c, cl->ca_mark,
			"'certificate_authority_data' is not valid base64; paste the output of base64 -w0 ca.pem");
	if (!holds_pem(cl->ca_pem, cl->ca_pem_len))
		return fail_at(c, cl->ca_mark,
			       "the certificate authority holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
	return 0;
}

static int parse_cluster(struct ctx *c, const struct node *v, struct kc_cluster *cl)
{
	static const char *const keys[] = { "name",
					    "context",
					    "server",
					    "certificate_authority",
					    "certificate_authority_data",
					    "insecure_skip_tls_verify",
					    "proxy",
					    "eks",
					    "auth",
					    NULL };
	static const char *const auth_keys[] = { "token_file", "client_certificate", "client_key", "eks", NULL };
	const struct node *auth, *eks;
	char *ca_data = NULL;
	int rc = -1;
	int kinds = 0;

	cl->mark = v->mark;
	if (check_keys(c, v, "a cluster", keys) < 0 || get_str(c, v, "a cluster", "name", &cl->name, true) < 0 ||
	    get_str(c, v, "a cluster", "context", &cl->context, false) < 0 ||
	    get_str(c, v, "a cluster", "server", &cl->server, false) < 0 ||
	    get_str(c, v, "a cluster", "certificate_authority", &cl->ca_file, false) < 0 ||
	    get_str(c, v, "a cluster", "certificate_authority_data", &ca_data, false) < 0 ||
	    get_bool(c, v, "insecure_skip_tls_verify", &cl->insecure_skip_tls_verify) < 0 ||
	    get_str(c, v, "a cluster", "proxy", &cl->proxy, false) < 0)
		goto out;
	if (!valid_cluster_name(cl->name)) {
		fail_at(c, *mark_of_key(v, "name"), "cluster name '%s' may hold only letters, digits, '-', '_' and '.'",
			cl->name);
		goto out;
	}
	cl->insecure_mark = *mark_of_key(v, "insecure_skip_tls_verify");
	eks = get(v, "eks");
	if (eks) {
		cl->has_eks = true;
		if (parse_eks_ref(c, eks, "cluster eks", false, &cl->eks) < 0)
			goto out;
		if (cl->server || cl->ca_file || ca_data) {
			fail_at(c, eks->mark,
				"cluster '%s' has both eks (discovery) and server/certificate_authority; "
				"keep one",
				cl->name);
			goto out;
		}
	} else {
		if (!cl->server) {
			fail_at(c, v->mark, "cluster '%s' needs 'server: https://...' (or 'eks:' for discovery)",
				cl->name);
			goto out;
		}
		if (strncmp(cl->server, "https://", 8) != 0 || !cl->server[8]) {
			fail_at(c, *mark_of_key(v, "server"), "'server' must be an https:// URL (got '%s')",
				cl->server);
			goto out;
		}
		if (cl->ca_file && ca_data) {
			fail_at(c, *mark_of_key(v, "certificate_authority_data"),
				"give certificate_authority or certificate_authority_data, not both");
			goto out;
		}
		if (!cl->ca_file && !ca_data) {
			if (!cl->insecure_skip_tls_verify) {
				fail_at(c, v->mark,
					"cluster '%s' has no certificate authority; add certificate_authority: "
					"/etc/pam_kubeconfig/%s-ca.pem (or certificate_authority_data)",
					cl->name, cl->name);
				goto out;
			}
		} else if (load_ca(c, v, cl, ca_data) < 0) {
			goto out;
		}
	}
	if (cl->proxy && strncmp(cl->proxy, "http://", 7) != 0 && strncmp(cl->proxy, "https://", 8) != 0) {
		fail_at(c, *mark_of_key(v, "proxy"), "'proxy' must be an http:// or https:// URL");
		goto out;
	}

	auth = get(v, "auth");
	if (!auth) {
		fail_at(c, v->mark, "cluster '%s' needs 'auth:' (token_file, client_certificate + client_key, or eks)",
			cl->name);
		goto out;
	}
	cl->auth_mark = auth->mark;
	if (check_keys(c, auth, "auth", auth_keys) < 0 ||
	    get_str(c, auth, "auth", "token_file", &cl->token_file, false) < 0 ||
	    get_str(c, auth, "auth", "client_certificate", &cl->client_certificate, false) < 0 ||
	    get_str(c, auth, "auth", "client_key", &cl->client_key, false) < 0)
		goto out;
	kinds = !!cl->token_file + !!(cl->client_certificate || cl->client_key) + !!get(auth, "eks");
	if (kinds != 1) {
		fail_at(c, auth->mark, "auth needs exactly one of: token_file, client_certificate + client_key, eks");
		goto out;
	}
	if (cl->token_file) {
		cl->auth = KC_AUTH_TOKEN;
		if (file_key(c, auth, "token_file", cl->token_file, &cl->token_mark) < 0)
			goto out;
	} else if (cl->client_certificate || cl->client_key) {
		cl->auth = KC_AUTH_CERT;
		if (!cl->client_certificate || !cl->client_key) {
			fail_at(c, auth->mark, "client_certificate and client_key go together; give both");
			goto out;
		}
		if (file_key(c, auth, "client_certificate", cl->client_certificate, &cl->cert_mark) < 0 ||
		    file_key(c, auth, "client_key", cl->client_key, &cl->key_mark) < 0)
			goto out;
	} else {
		cl->auth = KC_AUTH_EKS;
		if (parse_eks_ref(c, get(auth, "eks"), "auth eks", true, &cl->auth_eks) < 0)
			goto out;
	}
	cl->context_given = cl->context != NULL;
	if (!cl->context)
		cl->context = strdup(cl->name);
	rc = cl->context ? 0 : -1;
out:
	free(ca_data);
	return rc;
}

static int parse_mapping(struct ctx *c, const struct kc_config *cfg, const struct node *v, struct kc_mapping *m)
{
	static const char *const keys[] = { "user",   "group",	     "cluster",	     "serviceaccount",
					    "create", "clusterrole", "cluster_wide", NULL };
	char *sa = NULL;
	char *slash;
	char why[256];
	int rc = -1;

	m->mark = v->mark;
	if (check_keys(c, v, "a mapping rule", keys) < 0 ||
	    get_str(c, v, "a mapping rule", "user", &m->user, false) < 0 ||
	    get_str(c, v, "a mapping rule", "group", &m->group, false) < 0 ||
	    get_str(c, v, "a mapping rule", "cluster", &m->cluster, true) < 0 ||
	    get_str(c, v, "a mapping rule", "serviceaccount", &sa, true) < 0 ||
	    get_bool(c, v, "create", &m->create) < 0 ||
	    get_str(c, v, "a mapping rule", "clusterrole", &m->clusterrole, false) < 0 ||
	    get_bool(c, v, "cluster_wide", &m->cluster_wide) < 0)
		goto out;
	m->sa_mark = *mark_of_key(v, "serviceaccount");
	if (!!m->user == !!m->group) {
		fail_at(c, v->mark, "a mapping rule needs exactly one of 'user:' or 'group:'");
		goto out;
	}
	if (!kc_config_cluster(cfg, m->cluster)) {
		fail_at(c, *mark_of_key(v, "cluster"),
			"unknown cluster '%s'; it must be the name of an entry under clusters:", m->cluster);
		goto out;
	}
	slash = sa ? strchr(sa, '/') : NULL; /* get_str guarantees sa; the analyzer loses track */
	if (!slash || strchr(slash + 1, '/')) {
		fail_at(c, m->sa_mark,
			"'serviceaccount' must be NAMESPACE/NAME, e.g. bastion-users/u-{user_safe} (got '%s')", sa);
		goto out;
	}
	*slash = '\0';
	m->sa_namespace = strdup(sa);
	m->sa_name = strdup(slash + 1);
	if (!m->sa_namespace || !m->sa_name)
		goto out;
	if (kc_template_check(m->sa_namespace, true, why, sizeof(why)) < 0 ||
	    kc_template_check(m->sa_name, false, why, sizeof(why)) < 0) {
		fail_at(c, m->sa_mark, "%s", why);
		goto out;
	}
	if (m->clusterrole && !m->create) {
		fail_at(c, *mark_of_key(v, "clusterrole"),
			"'clusterrole' binds a ServiceAccount the helper creates; add 'create: true' or remove it");
		goto out;
	}
	if (m->cluster_wide && !m->clusterrole) {
		fail_at(c, *mark_of_key(v, "cluster_wide"), "'cluster_wide' needs a 'clusterrole' to bind");
		goto out;
	}
	if (m->cluster_wide && strchr(m->sa_name, '{')) {
		fail_at(c, *mark_of_key(v, "cluster_wide"),
			"'cluster_wide' needs a ServiceAccount name without {user} or {user_safe}: Kubernetes cannot "
			"limit creating ClusterRoleBindings by name, only deleting them, so the helper may delete "
			"only the bindings of rules whose names it knows; bind per namespace instead (drop "
			"cluster_wide), or map to a fixed ServiceAccount");
		goto out;
	}
	if (m->clusterrole && !*m->clusterrole) {
		fail_at(c, *mark_of_key(v, "clusterrole"), "'clusterrole' is empty; name a ClusterRole such as view");
		goto out;
	}
	rc = 0;
out:
	free(sa);
	return rc;
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

static int parse_kubeconfig_path(struct ctx *c, const struct node *v, const char *p, struct kc_config *cfg)
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

static int parse_root(struct ctx *c, const struct node *root, struct kc_config *cfg)
{
	static const char *const keys[] = { "min_uid", "host_id",  "kubeconfig", "token",
					    "network", "clusters", "mappings",	 NULL };
	static const char *const kc_keys[] = { "path", "set_env", "remove_on_logout", "inline_token", NULL };
	static const char *const token_keys[] = { "ttl", "audiences", "revoke_on_logout", "refresh_before", NULL };
	static const char *const net_keys[] = { "connect_timeout", "request_timeout", "after_failure", "cut_on_logout",
						NULL };
	const struct node *v;
	long connect = 2, request = 5;

	if (check_keys(c, root, "the top level", keys) < 0)
		return -1;

	cfg->min_uid = 1000;
	if ((v = get(root, "min_uid"))) {
		char *end;

		errno = 0;
		if (v->kind != N_SCALAR || !v->plain || !isdigit((unsigned char)v->value[0]) ||
		    (cfg->min_uid = strtoul(v->value, &end, 10), errno || *end) || cfg->min_uid < 1 ||
		    cfg->min_uid > 4294967294UL)
			return fail_at(c, v->mark, "'min_uid' must be a number from 1 up, e.g. 1000");
	}
	if (get_str(c, root, "the top level", "host_id", &cfg->host_id, false) < 0)
		return -1;
	if (cfg->host_id && *cfg->host_id && !valid_host_id(cfg->host_id))
		return fail_at(c, *mark_of_key(root, "host_id"),
			       "'host_id' may hold only letters, digits, '-', '_' and '.' (at most 64)");
	if (!cfg->host_id || !*cfg->host_id) {
		free(cfg->host_id);
		cfg->host_id = (c->flags & KC_LOAD_NO_FILES) ? strdup("test-host") : default_host_id();
		if (!cfg->host_id)
			return fail_at(c, root->mark,
				       "no host_id given and /etc/machine-id is unreadable; set host_id");
	}

	cfg->set_env = true;
	cfg->remove_on_logout = false; /* the file holds no secret; other bastions may share the home */
	if ((v = get(root, "kubeconfig"))) {
		char *p = NULL;
		int rc;

		if (check_keys(c, v, "kubeconfig", kc_keys) < 0 || get_str(c, v, "kubeconfig", "path", &p, false) < 0 ||
		    get_bool(c, v, "set_env", &cfg->set_env) < 0 ||
		    get_bool(c, v, "remove_on_logout", &cfg->remove_on_logout) < 0 ||
		    get_bool(c, v, "inline_token", &cfg->inline_token) < 0) {
			free(p);
			return -1;
		}
		rc = p ? parse_kubeconfig_path(c, get(v, "path"), p, cfg) : 0;
		free(p);
		if (rc < 0)
			return -1;
	}
	if (!cfg->kubeconfig_path && !(cfg->kubeconfig_path = strdup(".kube/config-eks")))
		return -1;

	cfg->ttl = 15 * 60;
	cfg->revoke_on_logout = true;
	cfg->refresh_before = 20;
	if ((v = get(root, "token"))) {
		const struct node *a, *rb;

		if (check_keys(c, v, "token", token_keys) < 0 || get_duration(c, v, "ttl", &cfg->ttl) < 0 ||
		    get_bool(c, v, "revoke_on_logout", &cfg->revoke_on_logout) < 0)
			return -1;
		if (cfg->ttl < KC_MIN_TTL)
			return fail_at(c, *mark_of_key(v, "ttl"),
				       "'ttl' is below the 10m minimum the API server accepts; write 10m or more");
		if (cfg->ttl > 0xffffffffL)
			return fail_at(c, *mark_of_key(v, "ttl"),
				       "'ttl' is too long; tokens should be short-lived, e.g. 8h");
		if ((rb = get(v, "refresh_before")) &&
		    (rb->kind != N_SCALAR || kc_parse_percent(rb->value, &cfg->refresh_before) < 0))
			return fail_at(c, rb->mark,
				       "'refresh_before' must be a share of the lifetime from 1%% to 99%%, e.g. 20%%");
		/* refresh runs every minute: under two minutes of warning, a rotation can be missed. */
		if (cfg->ttl * cfg->refresh_before / 100 < 120)
			return fail_at(c, rb ? rb->mark : *mark_of_key(v, "ttl"),
				       "'ttl' x 'refresh_before' leaves %lds to rotate a token in; refresh runs once a "
				       "minute, so make it at least 2m (e.g. ttl: 15m with refresh_before: 20%%)",
				       cfg->ttl * cfg->refresh_before / 100);
		if ((a = get(v, "audiences"))) {
			if (a->kind != N_SEQ)
				return fail_at(c, a->mark,
					       "'audiences' must be a list, e.g. [\"https://kubernetes.default.svc\"]");
			cfg->audiences = calloc(a->n + 1, sizeof(char *));
			if (!cfg->audiences)
				return -1;
			for (size_t i = 0; i < a->n; i++) {
				if (a->items[i]->kind != N_SCALAR || !*a->items[i]->value)
					return fail_at(c, a->items[i]->mark,
						       "each audience must be a non-empty string");
				if (!(cfg->audiences[i] = strdup(a->items[i]->value)))
					return -1;
				cfg->n_audiences++;
			}
		}
	}

	cfg->after_failure = 30;
	cfg->cut_on_logout = true;
	if ((v = get(root, "network"))) {
		if (check_keys(c, v, "network", net_keys) < 0 || get_duration(c, v, "connect_timeout", &connect) < 0 ||
		    get_duration(c, v, "request_timeout", &request) < 0 ||
		    get_duration(c, v, "after_failure", &cfg->after_failure) < 0 ||
		    get_bool(c, v, "cut_on_logout", &cfg->cut_on_logout) < 0)
			return -1;
		if (connect < 1 || connect > 60)
			return fail_at(c, *mark_of_key(v, "connect_timeout"),
				       "'connect_timeout' must be from 1s to 60s");
		if (request < 1 || request > 60)
			return fail_at(c, *mark_of_key(v, "request_timeout"),
				       "'request_timeout' must be from 1s to 60s");
	}
	cfg->connect_timeout_ms = connect * 1000;
	cfg->request_timeout_ms = request * 1000;

	v = get(root, "clusters");
	if (!v || v->kind != N_SEQ || v->n == 0)
		return fail_at(c, v ? v->mark : root->mark, "'clusters' must be a list with at least one cluster");
	cfg->clusters = calloc(v->n, sizeof(*cfg->clusters));
	if (!cfg->clusters)
		return -1;
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

	v = get(root, "mappings");
	if (!v)
		return fail_at(c, root->mark, "'mappings' is missing: without rules nobody gets a kubeconfig");
	if (v->kind != N_SEQ)
		return fail_at(c, v->mark, "'mappings' must be a list of rules");
	cfg->mappings = calloc(v->n ? v->n : 1, sizeof(*cfg->mappings));
	if (!cfg->mappings)
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		cfg->n_mappings++;
		if (parse_mapping(c, cfg, v->items[i], &cfg->mappings[i]) < 0)
			return -1;
	}
	return 0;
}

/* What depends on files other than the config (credential files' owner and
 * mode, the CA file's bytes) is checked at every load, cached config or not. */
static int check_file(struct ctx *c, struct kc_mark mark, const char *key, const char *file, mode_t forbid)
{
	struct kc_err e;

	if (kc_check_root_file(file, KC_CREDENTIAL_MAX, forbid, false, &e) < 0)
		return fail_at(c, mark, "%s: %s", key, e.msg);
	return 0;
}

static int check_eks_files(struct ctx *c, const struct kc_eks_ref *e)
{
	struct kc_err e2;

	if (e->credentials_file && check_file(c, e->credentials_mark, "credentials_file", e->credentials_file, 077) < 0)
		return -1;
	if (e->endpoint_ca && check_file(c, e->endpoint_ca_mark, "endpoint_ca", e->endpoint_ca, 022) < 0)
		return -1;
	if (e->web_identity_token_file &&
	    check_file(c, e->web_identity_mark, "web_identity_token_file", e->web_identity_token_file, 077) < 0)
		return -1;
	if (e->container_token_file && check_file(c, e->container_token_mark, "container_authorization_token_file",
						  e->container_token_file, 077) < 0)
		return -1;
	if (e->credential_process && kc_aws_check_process_program(e->credential_process, &e2) < 0)
		return fail_at(c, e->process_mark, "credential_process: %s", e2.msg);
	return 0;
}

static int check_files(struct ctx *c, struct kc_config *cfg)
{
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct kc_cluster *cl = &cfg->clusters[i];

		if (cl->ca_file) {
			kc_autobuf struct kc_buf pem = { 0 };
			struct kc_err e;

			if (kc_read_root_file(cl->ca_file, 1u << 20, 022, false, &pem, &e) < 0)
				return fail_at(c, cl->ca_mark, "certificate_authority: %s", e.msg);
			if (!holds_pem((unsigned char *)pem.data, pem.len))
				return fail_at(c, cl->ca_mark,
					       "the certificate authority holds no PEM certificate "
					       "(-----BEGIN CERTIFICATE-----)");
			free(cl->ca_pem);
			cl->ca_pem = (unsigned char *)pem.data;
			cl->ca_pem_len = pem.len;
			pem.data = NULL;
		}
		if ((cl->has_eks && check_eks_files(c, &cl->eks) < 0) ||
		    (cl->auth == KC_AUTH_EKS && check_eks_files(c, &cl->auth_eks) < 0) ||
		    (cl->token_file && check_file(c, cl->token_mark, "token_file", cl->token_file, 077) < 0) ||
		    (cl->client_certificate &&
		     check_file(c, cl->cert_mark, "client_certificate", cl->client_certificate, 022) < 0) ||
		    (cl->client_key && check_file(c, cl->key_mark, "client_key", cl->client_key, 077) < 0))
			return -1;
	}
	return 0;
}

/* The YAML alone: what a cache can stand in for. */
static struct kc_config *parse_text(const char *name, const char *data, size_t len, unsigned flags, struct kc_err *err)
{
	struct ctx c = { name, err, flags, 0 };
	struct kc_config *cfg;
	struct node *root;

	if (len > KC_CONFIG_MAX) {
		kc_seterr(err, "%s: %zu bytes, more than the %u allowed", name, len, KC_CONFIG_MAX);
		return NULL;
	}
	root = parse_document(&c, data, len);
	if (!root)
		return NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		free(cfg);
		node_free(root);
		kc_seterr(err, "%s: out of memory", name);
		return NULL;
	}
	if (parse_root(&c, root, cfg) < 0) {
		if (!err->msg[0])
			kc_seterr(err, "%s: out of memory", name);
		kc_config_free(cfg);
		cfg = NULL;
	}
	node_free(root);
	return cfg;
}

static struct kc_config *with_files_checked(struct kc_config *cfg, unsigned flags, struct kc_err *err)
{
	struct ctx c = { cfg->path, err, flags, 0 };

	if (!(flags & KC_LOAD_NO_FILES) && check_files(&c, cfg) < 0) {
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

static void eks_ref_free(struct kc_eks_ref *e)
{
	free(e->cluster_name);
	free(e->cluster_id);
	free(e->region);
	free(e->role_arn);
	free(e->credentials_file);
	free(e->profile);
	free(e->web_identity_token_file);
	free(e->credential_process);
	free(e->container_uri);
	free(e->container_token_file);
	free(e->endpoint);
	free(e->sts_endpoint);
	free(e->imds_endpoint);
	free(e->endpoint_ca);
}

void kc_config_free(struct kc_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct kc_cluster *cl = &cfg->clusters[i];

		free(cl->name);
		free(cl->context);
		free(cl->server);
		free(cl->ca_file);
		free(cl->ca_pem);
		free(cl->proxy);
		free(cl->token_file);
		free(cl->client_certificate);
		free(cl->client_key);
		eks_ref_free(&cl->eks);
		eks_ref_free(&cl->auth_eks);
	}
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		struct kc_mapping *m = &cfg->mappings[i];

		free(m->user);
		free(m->group);
		free(m->cluster);
		free(m->sa_namespace);
		free(m->sa_name);
		free(m->clusterrole);
	}
	for (size_t i = 0; i < cfg->n_audiences; i++)
		free(cfg->audiences[i]);
	free(cfg->audiences);
	free(cfg->clusters);
	free(cfg->mappings);
	free(cfg->kubeconfig_path);
	free(cfg->host_id);
	free(cfg->path);
	free(cfg);
}

const struct kc_cluster *kc_config_cluster(const struct kc_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_clusters; i++)
		if (strcmp(cfg->clusters[i].name, name) == 0)
			return &cfg->clusters[i];
	return NULL;
}

/* Roles every cluster has that may delete Secrets and create ServiceAccount
 * tokens (check --online asks the API server about the others). */
static bool powerful_role(const char *role)
{
	return strcmp(role, "edit") == 0 || strcmp(role, "admin") == 0 || strcmp(role, "cluster-admin") == 0;
}

int kc_config_warnings(const struct kc_config *cfg, struct kc_buf *out)
{
	int n = 0;

	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct kc_cluster *cl = &cfg->clusters[i];

		if (cl->insecure_skip_tls_verify) {
			kc_buf_printf(out,
				      "%s:%u:%u: warning: cluster '%s' skips TLS verification: anyone on the path can "
				      "read the helper's credentials; give certificate_authority instead\n",
				      cfg->path, cl->insecure_mark.line, cl->insecure_mark.col, cl->name);
			n++;
		}
	}
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct kc_mapping *m = &cfg->mappings[i];

		if (strncmp(m->sa_namespace, "{user_safe}", 11) == 0 || strncmp(m->sa_name, "{user_safe}", 11) == 0) {
			kc_buf_printf(out,
				      "%s:%u:%u: warning: a name that {user_safe} changes begins with '--', which "
				      "Kubernetes refuses at the start of a name: such users cannot log in; put a "
				      "fixed prefix before it, e.g. u-{user_safe}\n",
				      cfg->path, m->sa_mark.line, m->sa_mark.col);
			n++;
		}
		if (m->clusterrole && powerful_role(m->clusterrole) &&
		    (m->cluster_wide || kc_namespace_shared(cfg, m->cluster, m->sa_namespace))) {
			kc_buf_printf(out,
				      "%s:%u:%u: warning: ClusterRole %s bound %s%s%s can delete Secrets and create "
				      "ServiceAccount tokens: every user this rule maps can delete other users' "
				      "revocation Secrets and act as the other ServiceAccounts %s; bind a narrower "
				      "role such as view, or give each user a namespace of their own\n",
				      cfg->path, m->mark.line, m->mark.col, m->clusterrole,
				      m->cluster_wide ? "cluster-wide" : "in namespace ",
				      m->cluster_wide ? "" : m->sa_namespace,
				      m->cluster_wide ? "" : ", which several users share,",
				      m->cluster_wide ? "in every namespace" : "there");
			n++;
		}
		if (strcmp(m->sa_namespace, "kube-system") == 0) {
			kc_buf_printf(
				out,
				"%s:%u:%u: warning: a rule maps to kube-system: the right to mint tokens there is "
				"the right to act as every controller; use a namespace made for it, e.g. "
				"bastion-access\n",
				cfg->path, m->sa_mark.line, m->sa_mark.col);
			n++;
		}
	}
	return n;
}

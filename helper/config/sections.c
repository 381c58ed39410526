/* The optional sections of the config (ssh_certificates, fleet, metrics) and
 * a mapping rule's ssh_certificate: read by the field lists, checked here. */
#include "config/sections.h"

#include <ctype.h>
#include <string.h>

#include "config/fields.h"
#include "config/sshcert_check.h"

#define fail_at cfg_fail_at

/* A Kubernetes namespace name: a DNS-1123 label. */
static bool valid_namespace(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

static int section(struct cfg_ctx *c, const struct kc_ynode *root, const char *name, struct kc_config *cfg,
		   const struct kc_ynode **v)
{
	*v = kc_ytree_get(root, name);
	if (*v && (*v)->kind != KC_YMAP)
		return fail_at(c, (*v)->mark, "'%s' must be a mapping, e.g. %s", name,
			       strcmp(name, "fleet") == 0     ? "{ namespace: pam-kubeconfig-system }"
			       : strcmp(name, "metrics") == 0 ? "{ textfile_dir: /var/lib/prometheus/node-exporter }"
							      : "{ trusted_ca_keys: /etc/pam_kubeconfig/ssh_ca.pub }");
	return *v ? cfg_fields_parse(c, &cfg_config_desc, name, name, *v, cfg, 0) : 0;
}

int cfg_parse_sections(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg)
{
	const struct kc_ynode *v;

	if (section(c, root, "ssh_certificates", cfg, &v) < 0)
		return -1;
	if (v && !cfg->ssh_ca_keys)
		return fail_at(c, v->mark,
			       "'ssh_certificates' needs 'trusted_ca_keys': the file of the SSH CA public keys whose "
			       "certificates count, e.g. /etc/pam_kubeconfig/ssh_ca.pub");
	if (cfg->ssh_principals_file) {
		struct kc_err e;

		if (kc_sshcert_principals_template_check(cfg->ssh_principals_file, &e) < 0)
			return fail_at(c, cfg->ssh_principals_mark, "'authorized_principals_file': %s", e.msg);
		if (strstr(cfg->ssh_principals_file, "%u") == NULL)
			return fail_at(c, cfg->ssh_principals_mark,
				       "'authorized_principals_file' must name the user with %%u, as sshd's "
				       "AuthorizedPrincipalsFile does, e.g. /etc/ssh/auth_principals/%%u");
	}
	if (section(c, root, "fleet", cfg, &v) < 0)
		return -1;
	if (v && !cfg->fleet_namespace)
		return fail_at(c, v->mark,
			       "'fleet' needs 'namespace': the namespace every cluster keeps the fleet's "
			       "ConfigMaps in, e.g. pam-kubeconfig-system");
	if (v && !valid_namespace(cfg->fleet_namespace))
		return fail_at(c, cfg->fleet_mark,
			       "'namespace' must be a namespace name (lowercase letters, digits and '-', at most 63), "
			       "e.g. pam-kubeconfig-system");
	if (section(c, root, "metrics", cfg, &v) < 0)
		return -1;
	if (v && !cfg->metrics_dir)
		return fail_at(c, v->mark,
			       "'metrics' needs 'textfile_dir': node_exporter's textfile directory, e.g. "
			       "/var/lib/prometheus/node-exporter");
	return 0;
}

int cfg_parse_rule_certificate(struct cfg_ctx *c, const struct kc_config *cfg, const struct kc_ynode *rule,
			       struct kc_mapping *m)
{
	const struct kc_ynode *v = kc_ytree_get(rule, "ssh_certificate");

	if (!v)
		return 0;
	if (v->kind != KC_YMAP)
		return fail_at(c, v->mark, "'ssh_certificate' must be a mapping, e.g. { principal: k8s-admin }");
	if (cfg_fields_parse(c, &cfg_mapping_desc, "ssh_certificate", "ssh_certificate", v, m, 0) < 0)
		return -1;
	if ((!m->cert_principal || !*m->cert_principal) && (!m->cert_key_id || !*m->cert_key_id))
		return fail_at(c, v->mark, "'ssh_certificate' needs 'principal:' or 'key_id:' (or both)");
	if (!cfg->ssh_ca_keys)
		return fail_at(c, v->mark,
			       "a rule with 'ssh_certificate' needs 'ssh_certificates: { trusted_ca_keys: FILE }' at "
			       "the top level: without trusted CAs no certificate counts");
	return 0;
}

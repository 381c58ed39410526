/* What the config says about other files, checked at every load whether the
 * config came from the cache or not (credential files' owner and mode, the CA
 * file's bytes), and the warnings `check` prints. */
#include "config/checks.h"

#include <string.h>

#include "aws/aws_credentials.h"
#include "config/mapping.h"
#include "common/fileio.h"

#define fail_at cfg_fail_at

bool cfg_holds_pem(const unsigned char *data, size_t len)
{
	return memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) != NULL;
}

static int check_file(struct cfg_ctx *c, struct kc_mark mark, const char *key, const char *file, mode_t forbid)
{
	struct kc_err e;

	if (kc_check_root_file(file, KC_CREDENTIAL_MAX, forbid, false, &e) < 0)
		return fail_at(c, mark, "%s: %s", key, e.msg);
	return 0;
}

static int check_eks_files(struct cfg_ctx *c, const struct kc_eks_ref *e)
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

int cfg_check_files(struct cfg_ctx *c, struct kc_config *cfg)
{
	if (cfg->ssh_ca_keys && check_file(c, cfg->ssh_ca_mark, "trusted_ca_keys", cfg->ssh_ca_keys, 022) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct kc_cluster *cl = &cfg->clusters[i];

		if (cl->ca_file) {
			kc_autobuf struct kc_buf pem = { 0 };
			struct kc_err e;

			if (kc_read_root_file(cl->ca_file, 1u << 20, 022, false, &pem, &e) < 0)
				return fail_at(c, cl->ca_mark, "certificate_authority: %s", e.msg);
			if (!cfg_holds_pem((unsigned char *)pem.data, pem.len))
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

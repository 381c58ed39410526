/* INTERIM, until the merge library lands: writes our entries alone. */
#include <stdio.h>
#include <string.h>

#include "kc_merge.h"
#include "kc_yaml.h"

int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err)
{
	(void)data, (void)len, (void)err;
	memset(out, 0, sizeof(*out));
	return 0;
}

void kc_kubeconfig_names_free(struct kc_kubeconfig_names *n)
{
	(void)n;
}

int kc_kubeconfig_merge(const char *data, size_t len, const struct kc_merge_entry *e, size_t n,
			const struct kc_kubeconfig_names *others, struct kc_buf *out, bool *changed, bool *empty,
			struct kc_buf *notes, struct kc_err *err)
{
	struct kc_yaml y;

	(void)others, (void)notes, (void)err;
	*empty = n == 0;
	if (kc_yaml_begin(&y, out) < 0)
		return -1;
	kc_yaml_map_start(&y);
	kc_yaml_kv(&y, "apiVersion", "v1");
	kc_yaml_kv(&y, "kind", "Config");
	kc_yaml_plain(&y, "clusters");
	kc_yaml_seq_start(&y);
	for (size_t i = 0; i < n; i++) {
		char *ca = e[i].ca_pem ? kc_base64_encode(e[i].ca_pem, e[i].ca_pem_len, false) : NULL;

		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "name", e[i].name);
		kc_yaml_plain(&y, "cluster");
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "server", e[i].server);
		if (ca)
			kc_yaml_kv(&y, "certificate-authority-data", ca);
		else
			(kc_yaml_plain(&y, "insecure-skip-tls-verify"), kc_yaml_plain(&y, "true"));
		kc_yaml_map_end(&y);
		kc_yaml_map_end(&y);
		free(ca);
	}
	kc_yaml_seq_end(&y);
	kc_yaml_plain(&y, "contexts");
	kc_yaml_seq_start(&y);
	for (size_t i = 0; i < n; i++) {
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "name", e[i].name);
		kc_yaml_plain(&y, "context");
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "cluster", e[i].name);
		kc_yaml_kv(&y, "user", e[i].name);
		kc_yaml_kv(&y, "namespace", e[i].sa_namespace);
		kc_yaml_map_end(&y);
		kc_yaml_map_end(&y);
	}
	kc_yaml_seq_end(&y);
	kc_yaml_kv(&y, "current-context", n ? e[0].name : "");
	kc_yaml_plain(&y, "users");
	kc_yaml_seq_start(&y);
	for (size_t i = 0; i < n; i++) {
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "name", e[i].name);
		kc_yaml_plain(&y, "user");
		kc_yaml_map_start(&y);
		if (e[i].token)
			kc_yaml_kv(&y, "token", e[i].token);
		else
			kc_yaml_kv(&y, "tokenFile", e[i].token_file);
		kc_yaml_map_end(&y);
		kc_yaml_map_end(&y);
	}
	kc_yaml_seq_end(&y);
	kc_yaml_map_end(&y);
	if (kc_yaml_end(&y) < 0)
		return -1;
	*changed = !data || len != out->len || memcmp(data, out->data, len) != 0;
	return 0;
}

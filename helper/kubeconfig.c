/* Emits the user's kubeconfig (clusters, contexts, users) with libyaml. */
#include "kc_kubeconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "kc_yaml.h"

/* Host names go into a comment: keep them to characters that cannot break it. */
static void sanitize(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (isalnum((unsigned char)in[i]) || strchr(".-_", in[i])) ? in[i] : '_';
	out[i] = '\0';
}

int kc_kubeconfig_emit(const char *hostname, const char *host_id, const char *user, const struct kc_kubeconfig_entry *e,
		       size_t n, struct kc_buf *out)
{
	char host[256], id[128], who[256], when[32];
	time_t first = 0;
	struct kc_yaml y;

	out->secret = true;
	sanitize(hostname, host, sizeof(host));
	sanitize(host_id, id, sizeof(id));
	sanitize(user, who, sizeof(who));
	for (size_t i = 0; i < n; i++)
		if (!first || e[i].expiry < first)
			first = e[i].expiry;
	kc_format_time(first, when, sizeof(when));
	kc_buf_printf(out,
		      "# Written by pam-kubeconfig on %s for %s at login; tokens expire %s.\n"
		      "# Replaced at each login and removed at the last logout: do not edit.\n" KC_HOST_ID_TAG "%s\n",
		      host, who, when, id);

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
		kc_yaml_kv(&y, "name", e[i].context);
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
		kc_yaml_kv(&y, "name", e[i].context);
		kc_yaml_plain(&y, "context");
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "cluster", e[i].context);
		kc_yaml_kv(&y, "user", e[i].context);
		kc_yaml_kv(&y, "namespace", e[i].sa_namespace);
		kc_yaml_map_end(&y);
		kc_yaml_map_end(&y);
	}
	kc_yaml_seq_end(&y);

	kc_yaml_kv(&y, "current-context", n ? e[0].context : "");

	kc_yaml_plain(&y, "users");
	kc_yaml_seq_start(&y);
	for (size_t i = 0; i < n; i++) {
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "name", e[i].context);
		kc_yaml_plain(&y, "user");
		kc_yaml_map_start(&y);
		kc_yaml_kv(&y, "token", e[i].token);
		kc_yaml_map_end(&y);
		kc_yaml_map_end(&y);
	}
	kc_yaml_seq_end(&y);
	kc_yaml_map_end(&y);
	return kc_yaml_end(&y);
}

int kc_kubeconfig_host_id(const char *data, size_t len, char *host_id, size_t size)
{
	const char *p = memmem(data, len, "\n" KC_HOST_ID_TAG, strlen(KC_HOST_ID_TAG) + 1);
	const char *end;
	size_t n;

	if (!p)
		return -1;
	p += strlen(KC_HOST_ID_TAG) + 1;
	end = memchr(p, '\n', len - (size_t)(p - data));
	if (!end)
		return -1;
	n = (size_t)(end - p);
	if (n + 1 > size)
		return -1;
	memcpy(host_id, p, n);
	host_id[n] = '\0';
	return 0;
}

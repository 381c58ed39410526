/* INTERIM (replaced by the merge library's own header when it lands): the
 * kubeconfig merge's interface as the writer calls it. */
#ifndef KC_MERGE_H
#define KC_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "kc_util.h"

struct kc_merge_entry {
	const char *name;
	const char *server;
	const unsigned char *ca_pem;
	size_t ca_pem_len;
	bool insecure_skip_tls_verify;
	const char *sa_namespace;
	const char *token_file;
	const char *token;
};

struct kc_kubeconfig_names {
	char **names;
	size_t n;
	char *current_context;
};

int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err);
void kc_kubeconfig_names_free(struct kc_kubeconfig_names *n);
int kc_kubeconfig_merge(const char *data, size_t len, const struct kc_merge_entry *ours, size_t n,
			const struct kc_kubeconfig_names *others, struct kc_buf *out, bool *changed, bool *empty,
			struct kc_buf *notes, struct kc_err *err);

#endif

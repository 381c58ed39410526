/* The user's kubeconfig: emitted with libyaml, with a comment header naming the
 * host that wrote it (so only that host removes it) and when its tokens expire. */
#ifndef KC_KUBECONFIG_H
#define KC_KUBECONFIG_H

#include <stddef.h>
#include <time.h>

#include "kc_util.h"

#define KC_HOST_ID_TAG "# pam-kubeconfig-host-id: "

struct kc_kubeconfig_entry {
	const char *context; /* cluster, context and user entries take this name */
	const char *server;
	const unsigned char *ca_pem; /* NULL only for an insecure_skip_tls_verify cluster */
	size_t ca_pem_len;
	const char *sa_namespace; /* the context's namespace */
	const char *sa_name;
	const char *token; /* secret */
	time_t expiry;
};

/* Emits the file into out (made a secret buffer). The first entry is the
 * current context. hostname is for people, host_id for the removal check. */
int kc_kubeconfig_emit(const char *hostname, const char *host_id, const char *user,
		       const struct kc_kubeconfig_entry *entries, size_t n, struct kc_buf *out);

/* The host id in a file's header, or -1 when it has none. */
int kc_kubeconfig_host_id(const char *data, size_t len, char *host_id, size_t size);

#endif

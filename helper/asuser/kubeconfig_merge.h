/* The merge of our entries into the user's kubeconfig (~/.kube/config-eks),
 * run as the user by the writer. Our cluster, context and user entries carry a
 * marker in kubeconfig `extensions`; everything else in the file (other tools'
 * entries, unknown keys, preferences, a namespace the user set, current-context
 * while it names a context) is kept. Pure: bytes in, bytes out; no file access. */
#ifndef KC_ASUSER_KUBECONFIG_MERGE_H
#define KC_ASUSER_KUBECONFIG_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "asuser/kubeconfig_names.h"
#include "common/util.h"

/* The NamedExtension name that marks an entry as ours. */
#define KC_MERGE_MARKER "pam-kubeconfig"

/* One entry of ours: a cluster, a context and a user entry, all named `name`. */
struct kc_merge_entry {
	const char *name; /* the context (also cluster and user entry) name */
	const char *server;
	const unsigned char *ca_pem; /* written as certificate-authority-data (base64 of it) */
	size_t ca_pem_len;
	bool insecure_skip_tls_verify; /* then ca_pem is NULL */
	const char *sa_namespace; /* the context's namespace when we create the context (NULL: none) */
	const char *token_file; /* user entry: tokenFile: (the normal case) */
	const char *token; /* or the token itself (kubeconfig.inline_token: true); a secret */
};

/* Merges ours[0..n) into data (NULL or len 0: no file yet); n = 0 removes our
 * entries (kubeconfig.remove_on_logout). Returns 0 with:
 *  - out: the new file (a secret buffer; empty when there is nothing to write);
 *  - *changed: out differs from data (write only then);
 *  - *empty: nothing but our entries was there and none are left: the caller
 *    may remove the file;
 *  - notes: one line per fact for the user ("\n"-terminated, names made
 *    printable): an entry of our name without the marker, left alone; a name of
 *    ours that `others` (may be NULL) also defines; a current-context reset.
 * Returns -1 when data cannot be used (not YAML, not a kubeconfig mapping, over
 * 1 MiB, aliases, duplicate keys, too deep) or an entry is invalid, with err a
 * sentence saying what and where; the caller leaves the file as it is. Same
 * inputs, same bytes, on every host. A file pam-kubeconfig wrote before markers
 * existed is converted: its entries become marked ones and its tokens go. It is
 * known by its "# pam-kubeconfig-host-id:" header or, once another tool dropped
 * that comment, in a file with no marker, by an entry of our name that holds a
 * token and nothing else, with a context pointing at it. */
int kc_kubeconfig_merge(const char *data, size_t len, const struct kc_merge_entry *ours, size_t n,
			const struct kc_kubeconfig_names *others, struct kc_buf *out, bool *changed, bool *empty,
			struct kc_buf *notes, struct kc_err *err);

#endif

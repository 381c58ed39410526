/* The names another kubeconfig file defines (~/.kube/config), read leniently:
 * for clash notes and for current-context. Pure: bytes in, names out. */
#ifndef KC_ASUSER_KUBECONFIG_NAMES_H
#define KC_ASUSER_KUBECONFIG_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

/* Names another kubeconfig file defines (~/.kube/config): for clash notes and
 * for current-context, which may name a context of that file. */
struct kc_kubeconfig_names {
	char **contexts;
	size_t n_contexts;
	char **clusters;
	size_t n_clusters;
	char **users;
	size_t n_users;
	char *current_context; /* NULL when unset; for the caller's information */
	bool unreadable; /* the file is there but could not be read whole: any name may be in it */
	const char *label; /* how notes name that file ("~/.kube/config"); the caller sets it, not freed */
};

/* Reads the names a kubeconfig defines (data NULL or empty: none). Returns 0,
 * or -1 with err saying why (the caller may go on with no names). Free with
 * kc_kubeconfig_names_free() in both cases. */
int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err);
void kc_kubeconfig_names_free(struct kc_kubeconfig_names *names);

#endif

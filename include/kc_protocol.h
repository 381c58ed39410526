/* The contract between pam_kubeconfig.so and `pam-kubeconfig open|close`: exit
 * statuses and the keys of the helper's stdout lines. Both programs include this
 * header; nothing else of the helper's reaches the module. */
#ifndef KC_PROTOCOL_H
#define KC_PROTOCOL_H

enum {
	KC_EXIT_OK = 0, /* open: at least one cluster written */
	KC_EXIT_ERROR = 1,
	KC_EXIT_USAGE = 2, /* usage or configuration error */
	KC_EXIT_IGNORE = 10, /* out of scope or not mapped: the module returns PAM_IGNORE */
};

/* stdout of open, one per line: the session's KUBECONFIG (only on success) and
 * messages for the user (pam_info, unless PAM_SILENT or quiet). */
#define KC_OUT_KUBECONFIG "KUBECONFIG="
#define KC_OUT_MESSAGE "MESSAGE="

/* The module's default for the whole helper run, and what it passes as
 * --deadline MS: the milliseconds left of it when the helper starts. */
#define KC_DEFAULT_TIMEOUT_MS 10000

#endif

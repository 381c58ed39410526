/* The user's token files, as the kubelet keeps a pod's projected token:
 * /run/pam_kubeconfig/<uid>/<cluster>.token, written by root atomically in
 * root-owned directories (/run/pam_kubeconfig 0755, <uid> 0711), each file
 * owned by the user with mode 0400. The user can read their own and create
 * nothing there; nothing here follows a link. */
#ifndef KC_TOKENFILE_H
#define KC_TOKENFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

#define KC_RUN_DIR "/run/pam_kubeconfig"

/* The path a kubeconfig names in tokenFile: (out holds at least 160 bytes). */
void kc_tokenfile_path(uid_t uid, const char *cluster, char *out, size_t len);

int kc_tokenfile_write(uid_t uid, gid_t gid, const char *cluster, const char *token, size_t len, struct kc_err *err);
bool kc_tokenfile_exists(uid_t uid, const char *cluster);
/* Another file of the user's beside the tokens (status.json), written the same
 * way: root's directory, the user's file with mode 0400, renamed in whole. */
int kc_tokenfile_put(uid_t uid, gid_t gid, const char *name, const void *data, size_t len, struct kc_err *err);
/* Removes such a file (nothing when the directory is not there). */
void kc_tokenfile_unlink(uid_t uid, const char *name);
/* Whether the user's directory exists. */
bool kc_tokenfile_dir_exists(uid_t uid);

/* The token itself, for kubeconfig.inline_token (out is made a secret buffer). */
int kc_tokenfile_read(uid_t uid, const char *cluster, struct kc_buf *out);
void kc_tokenfile_remove(uid_t uid, const char *cluster);
/* Every token file of the user, and the directory. */
void kc_tokenfile_remove_all(uid_t uid);
/* Removes the user's directory when no token file is left in it. */
void kc_tokenfile_prune(uid_t uid);

/* The uids that have a directory here (gc removes those nobody uses). */
int kc_tokenfile_uids(uid_t **uids, size_t *n);

/* Whether /run/pam_kubeconfig lies on a tmpfs (for `check`): 1 yes, 0 no, -1 unknown. */
int kc_tokenfile_on_tmpfs(void);

#endif

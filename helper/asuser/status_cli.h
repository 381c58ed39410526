/* `pam-kubeconfig status [--output json]`: run by the user, as klist is, with
 * no root and no network. For each of our contexts (their kubeconfig's
 * entries carrying our marker, and every cluster root's status file names):
 * cluster, ServiceAccount, namespace, token expiry and next rotation, the
 * sessions open on this host, and, when they exist, the certificate bound to
 * the grant and an administrator's lock. The state comes from status.json
 * (asuser/status_file.h), which root rewrites whenever the user's grants
 * change, and is trusted over the token's own claims: a token an
 * administrator revoked still carries a future exp. */
#ifndef KC_ASUSER_STATUS_CLI_H
#define KC_ASUSER_STATUS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "asuser/status_file.h"
#include "asuser/token_claims.h"

/* Exit statuses: as `klist -s`, 1 when no context holds a valid grant. */
#define KC_STATUS_EXIT_VALID 0
#define KC_STATUS_EXIT_NONE 1
#define KC_STATUS_EXIT_USAGE 2

/* The command, for the calling user: status directory (NULL: the real one,
 * /run/pam_kubeconfig), output to out. Returns an exit status above. */
int kc_cmd_status(const char *run_dir, bool json, FILE *out);

#endif

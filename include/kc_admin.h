/* Administrator commands. Each returns the process exit status. */
#ifndef KC_ADMIN_H
#define KC_ADMIN_H

#include <stdbool.h>

int kc_cmd_check(const char *config, bool online, bool allow_insecure);
int kc_cmd_explain(const char *config, const char *user);
/* The manifest is built from the config alone: its files need not exist here.
 * cluster may be NULL only when the config has one. */
int kc_cmd_rbac(const char *config, const char *cluster, const char *identity);

/* Per Unix login, the API requests made with its tokens: the API server's audit
 * log (JSON lines) joined with the mint log (syslog lines or journal export) on
 * the token's credential id. */
int kc_cmd_audit(const char *audit_log, const char *mint_log);

/* `aws eks get-token` for an admin or kubectl: region, endpoints and credentials
 * the way awscli finds them. argv[0] is "eks-token"; it parses its own options. */
int kc_cmd_eks_token(int argc, char **argv);

#endif

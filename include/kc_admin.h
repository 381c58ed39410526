/* Administrator commands. Each returns the process exit status. */
#ifndef KC_ADMIN_H
#define KC_ADMIN_H

#include <stdbool.h>

int kc_cmd_check(const char *config, bool online, bool allow_insecure);
int kc_cmd_explain(const char *config, const char *user);
/* The manifest is built from the config alone: its files need not exist here. */
int kc_cmd_rbac(const char *config, const char *identity);

/* `aws eks get-token` for an admin or kubectl: region, endpoints and credentials
 * the way awscli finds them. argv[0] is "eks-token"; it parses its own options. */
int kc_cmd_eks_token(int argc, char **argv);

#endif

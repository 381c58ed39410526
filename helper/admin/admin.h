/* The administrator's commands on the config: check [--online], explain USER,
 * rbac. Each returns the process exit status. */
#ifndef KC_ADMIN_ADMIN_H
#define KC_ADMIN_ADMIN_H

#include <stdbool.h>

int kc_cmd_check(const char *config, bool online, bool allow_insecure);
/* cert_path: an OpenSSH certificate (-cert.pub) a login would come with. */
int kc_cmd_explain(const char *config, const char *user, const char *cert_path);
/* The manifest is built from the config alone: its files need not exist here.
 * cluster may be NULL only when the config has one. */
int kc_cmd_rbac(const char *config, const char *cluster, const char *identity);

#endif

/* Administrator commands. Each returns the process exit status. */
#ifndef KC_ADMIN_H
#define KC_ADMIN_H

#include <stdbool.h>

int kc_cmd_check(const char *config, bool online, bool allow_insecure);
int kc_cmd_explain(const char *config, const char *user);
/* The manifest is built from the config alone: its files need not exist here. */
int kc_cmd_rbac(const char *config, const char *identity);

#endif

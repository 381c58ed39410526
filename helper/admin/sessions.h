/* `sessions [--fleet] [--output json]` (admin): who holds access now. This
 * host from its records: users, their live sessions (and certificates), their
 * grants. With --fleet, every bastion: for each of this host's accounts in
 * scope, the Secrets that any host of the fleet's ConfigMaps may have made for
 * it on each cluster, found by name (a dry-run DELETE each: the helper may not
 * read Secrets). */
#ifndef KC_ADMIN_SESSIONS_H
#define KC_ADMIN_SESSIONS_H

#include <stdbool.h>

int kc_cmd_sessions(const char *config, bool fleet, bool json);

#endif

/* The administrator's kill switch: revoke USER and unlock USER (lockcmd.c).
 * Each returns the process exit status. */
#ifndef KC_ADMIN_LOCKCMD_H
#define KC_ADMIN_LOCKCMD_H

#include <stdbool.h>

/* Locks USER (on cluster, NULL: every cluster) for seconds (0: until
 * unlocked), then revokes what the user holds on this host now: grants,
 * token files, connections. fleet: the lock also into every cluster's fleet
 * namespace first, then every bastion's Secrets of the user deleted. */
int kc_cmd_revoke(const char *config, const char *user, const char *cluster, long seconds, bool fleet,
		  long deadline_ms);
/* Lifts USER's locks (on cluster, NULL: all) and gives the user's open
 * sessions their access back at once. */
int kc_cmd_unlock(const char *config, const char *user, const char *cluster, bool fleet, long deadline_ms);

#endif

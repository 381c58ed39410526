/* The user-side wing (helper/asuser/) runs as the user: the root helper forks
 * the writer before it loads any secret; the writer drops to the user for good,
 * proves it, and then serves requests on a pipe. Nothing in this wing sees the
 * helper's credentials or the config; `make lint` fails if a file here includes
 * anything but common/ and asuser/. This is its first step: the drop. */
#ifndef KC_ASUSER_DROP_H
#define KC_ASUSER_DROP_H

#include <sys/types.h>

/* The user, as the wing needs them (filled by the root side from passwd). */
struct kc_user {
	const char *name;
	uid_t uid;
	gid_t gid;
	const char *home;
	const gid_t *groups; /* the user's groups, as initgroups() would find them; NULL: let it find them */
	size_t n_groups;
};

/* Drops this process to the user for good (their groups, setresgid, setresuid)
 * and proves it: ids, no root group left, no way back. Never for root. 0 / -1. */
int kc_asuser_drop(const struct kc_user *u);

#endif

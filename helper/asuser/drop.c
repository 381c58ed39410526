/* Dropping to the user for good, and proving it (as OpenSSH's
 * permanently_set_uid() does). */

#include "asuser/drop.h"

#include <grp.h>
#include <stdlib.h>
#include <unistd.h>

/* No supplementary group of root's survived. */
static int no_root_group(void)
{
	int n = getgroups(0, NULL);
	gid_t *groups = n > 0 ? calloc((size_t)n, sizeof(*groups)) : NULL;
	int rc = n == 0 ? 0 : -1;

	if (groups && getgroups(n, groups) == n) {
		rc = 0;
		for (int i = 0; i < n; i++)
			rc |= groups[i] == 0 ? -1 : 0;
	}
	free(groups);
	return rc;
}

int kc_asuser_drop(const struct kc_user *u)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	int groups;

	if (u->uid == 0)
		return -1;
	/* The groups the root side looked up, when it did: the directory is asked once. */
	groups = u->groups ? setgroups(u->n_groups, u->groups) : initgroups(u->name, u->gid);
	if (groups < 0 || setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0)
		return -1;
	if (getresuid(&r, &e, &s) < 0 || r != u->uid || e != u->uid || s != u->uid)
		return -1;
	if (getresgid(&rg, &eg, &sg) < 0 || rg != u->gid || eg != u->gid || sg != u->gid)
		return -1;
	if (setresuid(0, 0, 0) == 0 || setegid(0) == 0 || seteuid(0) == 0)
		return -1;
	return no_root_group();
}

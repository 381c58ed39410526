/* Dropping to the user for good, and proving it (as OpenSSH's
 * permanently_set_uid() does). */

#include "asuser/drop.h"

#include <grp.h>
#include <unistd.h>

int kc_asuser_drop(const struct kc_user *u)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[256];
	int n;

	if (u->uid == 0)
		return -1;
	if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return -1;
	if (getresuid(&r, &e, &s) < 0 || r != u->uid || e != u->uid || s != u->uid)
		return -1;
	if (getresgid(&rg, &eg, &sg) < 0 || rg != u->gid || eg != u->gid || sg != u->gid)
		return -1;
	if (setresuid(0, 0, 0) == 0 || setegid(0) == 0 || seteuid(0) == 0)
		return -1;
	/* and no supplementary group of root's survived */
	n = getgroups(256, groups);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			return -1;
	return 0;
}

/* The account databases (passwd, group, shadow) read once, for the commands
 * that ask about every user with records at once (refresh, gc).
 *
 * glibc's files backend reads /etc/passwd and /etc/group from the top for each
 * lookup, and getgrouplist() reads all of /etc/group: one user at a time,
 * a refresh over 1,000 users in 1,000 groups parses millions of lines. A
 * snapshot answers each user from memory, as the per-user lookups would have
 * answered at the moment it was taken.
 *
 * It is taken only where enumerating a database is its whole truth: when
 * nsswitch.conf names no source for passwd, group and shadow but files and
 * systemd. With sss, ldap, winbind or compat an enumeration may be partial
 * (sssd does not enumerate by default), and no snapshot is taken: the
 * per-user lookups of kc_identity_load() serve, as before. */
#ifndef KC_ACCOUNTS_H
#define KC_ACCOUNTS_H

#include <sys/types.h>

#include "config/mapping.h"

struct kc_accounts;

/* The snapshot, or NULL when nsswitch.conf rules it out or reading failed
 * (why, in err; an empty message when it was simply not eligible). */
struct kc_accounts *kc_accounts_snapshot(const char *nsswitch_path, struct kc_err *err);
void kc_accounts_free(struct kc_accounts *a);

/* What getpwuid() then kc_identity_load() of that name give for uid, from the
 * snapshot: 0, or KC_ABSENT when there is no such uid. *expire: the account's
 * expiry in days since the epoch, -1 when it has none. */
int kc_accounts_identity(const struct kc_accounts *a, uid_t uid, struct kc_identity *id, long *expire,
			 struct kc_err *err);

#endif

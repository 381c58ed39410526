/* refresh's and gc's work for one user, in a child of its own (timers.c
 * forks it): the account looked up, locks and certificates put on it, one
 * reconciliation, the user's file rewritten when its entries changed. */
#ifndef KC_LIFECYCLE_TIMERS_USER_H
#define KC_LIFECYCLE_TIMERS_USER_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/accounts.h"
#include "config/config.h"
#include "config/mapping.h"
#include "lifecycle/access.h"
#include "lifecycle/live.h"
#include "lifecycle/plan.h"

struct user_work {
	const struct kc_config *cfg;
	const struct kc_accounts *accounts; /* NULL: look each user up (config/accounts.h) */
	const struct kc_live_entry *live; /* the index of open sessions, as this run read it */
	size_t n_live;
	bool live_unread; /* the index could not be read: no verdict holds this run */
	const struct kc_access *access; /* locks and certificates, as this run read them */
	uid_t uid;
	enum kc_rotate rotate;
	bool gc;
	long long deadline_ms;
	bool turn_cut_short; /* deadline_ms is the run's end, not a whole turn's */
};

/* The account behind a uid: 1 when it is still served, 0 when it is not (no
 * such account any more, root, below min_uid, expired), -1 when the account
 * databases could not say. ua: what kc_access_apply() gave id (caller frees
 * with kc_user_access_free(), then kc_identity_free()). */
int kc_timers_load_user(const struct user_work *u, uid_t uid, struct kc_identity *id, struct kc_user_access *ua);
/* The index entries of this user's dead sessions go once the user is done. */
void kc_timers_drop_dead_entries(const struct user_work *u);
/* The child's work for u->uid. Returns its exit status. */
int kc_timers_user_child(const struct user_work *u);

#endif

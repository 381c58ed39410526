/* refresh's verdicts, kept between runs: "nothing due for this user until T",
 * valid while what it was drawn from is unchanged. A refresh every minute
 * over 1,000 users otherwise parses 3,000 state records to learn, almost
 * every time, that nothing is due.
 *
 * A verdict's key is the user's state directory as it stands (device, inode,
 * mtime to the nanosecond: every record is replaced by rename, so any change
 * to a session or grant moves it) and what the mapping makes of the user
 * now (in scope or not; per cluster the ServiceAccount, the Secret's name
 * parts, the config's rotation point). It is used while its time has come and
 * not gone (since <= now < until), and never for longer than KC_VERDICT_MAX_S:
 * what no key sees (a session's process that died, a token file removed by
 * hand) is looked at again within that, and gc looks at every user anyway.
 * The verdicts live in the cache store: losing them costs one full pass. */
#ifndef KC_VERDICTS_H
#define KC_VERDICTS_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "config/config.h"
#include "config/mapping.h"

#define KC_VERDICT_MAX_S 600

struct kc_verdicts;

/* The verdicts of the last refresh (none when there are none or they are
 * unusable), and an empty set to fill for the next one. NULL: out of memory. */
struct kc_verdicts *kc_verdicts_load(void);
void kc_verdicts_free(struct kc_verdicts *v);

/* The key for a user: id NULL when the uid has no account. */
void kc_verdict_key(const struct kc_config *cfg, const struct kc_identity *id, bool in_scope, const struct stat *dir,
		    char out[65]);
/* Nothing due for uid by the last refresh's verdict under this key; the
 * verdict is carried over into the next set. */
bool kc_verdicts_hold(struct kc_verdicts *v, uid_t uid, const char key[65], time_t now);
/* Records a fresh verdict: nothing due before until (0: no token to rotate). */
void kc_verdicts_note(struct kc_verdicts *v, uid_t uid, const char key[65], time_t now, time_t until);
/* Stores the next set for the next refresh. */
void kc_verdicts_save(const struct kc_verdicts *v);

#endif

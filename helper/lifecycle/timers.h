/* refresh and gc: the timers' commands. Each returns the process exit status
 * (kc_protocol.h). */
#ifndef KC_LIFECYCLE_TIMERS_H
#define KC_LIFECYCLE_TIMERS_H

#include <stdbool.h>

#include "kc_protocol.h"

/* How long refresh and gc may take as a whole, and each user's share (the
 * systemd units' RuntimeMaxSec= lies above the first and the second cuts). */
#define KC_REFRESH_DEADLINE_MS 45000
#define KC_GC_DEADLINE_MS 240000
#define KC_USER_DEADLINE_MS 15000
/* What reading the fleet's locks (one LIST per cluster) may take of a run. */
#define KC_FLEET_READ_MS 10000

/* now_user: rotate that user's tokens at once (refresh --now USER). */
int kc_cmd_refresh(const char *config, const char *now_user, long deadline_ms);
int kc_cmd_gc(const char *config, long deadline_ms);
/* One user's reconciliation now, as refresh makes it, in a child with its
 * deadline (refresh --now, revoke, unlock); rotate_now: every token anew. */
int kc_timers_user(const char *config, const char *user, bool rotate_now, long deadline_ms);

#endif

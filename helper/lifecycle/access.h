/* What bounds a user's access beyond their account and the mapping: an
 * administrator's locks (lifecycle/locks.h) and the SSH certificates their
 * live sessions logged in with. Read once per command (kc_access_load), then
 * put on each user's identity (kc_access_apply) before the mapping runs: the
 * mapping sees a locked cluster as matching nothing, and a rule that needs a
 * certificate only through one of these. */
#ifndef KC_LIFECYCLE_ACCESS_H
#define KC_LIFECYCLE_ACCESS_H

#include <time.h>

#include "config/config.h"
#include "config/mapping.h"
#include "config/sshcert_check.h"
#include "lifecycle/locks.h"

struct kc_access {
	const struct kc_config *cfg;
	struct kc_locks locks;
	bool unreadable; /* the locks could not be read: every user counts as locked */
	struct kc_sshcert_cas cas; /* ssh_certificates.trusted_ca_keys (none: no certificate counts) */
	const char **held; /* clusters whose fleet locks could not be read (config/mapping.h) */
	size_t n_held;
	time_t now;
};

/* What kc_access_apply() gave one identity; freed with kc_user_access_free(). */
struct kc_user_access {
	const char **locked;
	struct kc_cert_claim *claims;
	void **storage; /* what the claims point to */
	size_t n_storage;
};

/* 0, or -1 (err): locks unreadable. A command that cannot read the locks
 * treats every user as locked (every limit fails towards less access). With
 * fleet (refresh, gc, revoke): the fleet's locks too, one LIST per cluster
 * by deadline_ms (lifecycle/fleet.h). */
enum kc_fleet_read {
	KC_FLEET_NONE, /* open, close: a login reads its own lock by name (lifecycle/job.c) */
	KC_FLEET_READ, /* refresh, revoke: one LIST per cluster */
	KC_FLEET_REPAIR, /* gc: and the local fleet locks missing from a cluster written there */
};
int kc_access_load(struct kc_access *a, const struct kc_config *cfg, enum kc_fleet_read fleet, long long deadline_ms,
		   struct kc_err *err);
void kc_access_free(struct kc_access *a);

/* Sets id's locks and certificates: those of the user's live sessions in dir
 * (their state directory; -1: none) and current (the certificate of a session
 * being opened, not recorded yet; NULL: none), each checked again now against
 * the CAs, its window and the principals file. */
void kc_access_apply(const struct kc_access *a, struct kc_identity *id, int dir, const struct kc_sshcert *current,
		     struct kc_user_access *ua);
/* Judges one certificate for the user as the mapping would: 0 and verdict
 * (free with kc_sshcert_verdict_free()), else why. */
int kc_access_check_cert(const struct kc_access *a, const struct kc_sshcert *cert, const char *user,
			 struct kc_sshcert_verdict *verdict, struct kc_err *why);
void kc_user_access_free(struct kc_identity *id, struct kc_user_access *ua);

#endif

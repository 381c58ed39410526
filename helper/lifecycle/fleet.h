/* The fleet, seen through the clusters (fleet: { namespace: NS }): bastions
 * share nothing but the API servers, so what they must agree on lives in NS
 * of every cluster, as ConfigMaps only the helper's identity may write (rbac
 * emits the Role and a ValidatingAdmissionPolicy):
 *
 *   pam-kubeconfig-host-<hash of the host id>   this bastion: its host id and
 *       the namespaces (templates) it mints in on that cluster; written by
 *       refresh and gc when that changes, never per login
 *   pam-kubeconfig-lock-<hash of the user>     a lock on a user (revoke --fleet):
 *       user, until, since, by
 *
 * Secret names derive from host, user and cluster (kube/objects.h), so any
 * bastion can name every Secret of a user on every bastion. Without fleet:
 * nothing here is called and nothing costs a request. */
#ifndef KC_LIFECYCLE_FLEET_H
#define KC_LIFECYCLE_FLEET_H

#include <stdbool.h>

#include "config/config.h"
#include "kube/kubeapi.h"
#include "lifecycle/locks.h"

/* The locks of every cluster, one LIST each (refresh and gc), added to l as
 * locks on that cluster (one that cannot be read, under its name: see
 * below); a cluster whose LIST failed is marked in held[i]
 * (cfg->clusters[i]: nothing is concluded there this run). While connected,
 * this host's ConfigMap is written where it changed, and with repair (gc)
 * each local fleet lock in l missing from a cluster is written there. */
void kc_fleet_read_locks(const struct kc_config *cfg, time_t now, long long deadline_ms, bool repair,
			 struct kc_locks *l, bool *held);

/* A lock ConfigMap whose data cannot be read is listed as a lock of the
 * "user" KC_FLEET_UNREADABLE + its name; this is that key for user. */
#define KC_FLEET_UNREADABLE "configmap/"
void kc_fleet_unreadable_key(const char *user, char out[KC_LOCK_USER_MAX]);

/* open: the user's lock on the cluster k talks to, read by name. 1 locked (k
 * filled), 0 not, -1 cannot tell (err). */
int kc_fleet_get_lock(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
		      time_t now, struct kc_lock *lock, struct kc_err *err);

/* revoke --fleet and unlock --fleet, on one cluster. */
int kc_fleet_put_lock(struct kc_kube *k, const struct kc_config *cfg, const struct kc_lock *lock, struct kc_err *err);
int kc_fleet_drop_lock(struct kc_kube *k, const struct kc_config *cfg, const char *user, struct kc_err *err);

/* Every (host, namespace, Secret name) of the user on this cluster that some
 * bastion of the fleet may mint in, from the hosts' ConfigMaps: fn for each.
 * 0, or -1 (err: the hosts could not be listed). */
typedef void (*kc_fleet_secret_fn)(const char *host, const char *ns, const char *secret, void *arg);
int kc_fleet_secrets_of(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
			kc_fleet_secret_fn fn, void *arg, struct kc_err *err);

#endif

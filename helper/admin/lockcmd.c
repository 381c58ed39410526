/* revoke USER and unlock USER (see lockcmd.h). */
#include "admin/lockcmd.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "kc_protocol.h"
#include "kube/objects.h"
#include "lifecycle/fleet.h"
#include "lifecycle/locks.h"
#include "lifecycle/timers.h"

/* The longest a command that read the locks before ours was written may go
 * on minting: the module's largest timeout= (300 s), past refresh's 45 s and
 * gc's 240 s; and a second. The Secrets are deleted again then. */
#define FLEET_AGAIN_AFTER_S 301
/* Without --deadline, how long a revoke or unlock waits for another one. */
#define SERIAL_WAIT_MS 30000

struct fleet_delete {
	struct kc_kube *k;
	const char *cluster;
	unsigned deleted, failed;
};

static void delete_one(const char *host, const char *ns, const char *secret, void *arg)
{
	struct fleet_delete *d = arg;
	char path[400];
	json_t *resp = NULL;
	struct kc_err e = { "" };
	long status;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, secret);
	status = kc_kube_call(d->k, "DELETE", path, NULL, &resp, &e);
	json_decref(resp);
	if (status == 200 || status == 202) {
		d->deleted++;
		kc_audit("revoke fleet cluster=%s host=%s namespace=%s secret=%s", d->cluster, host, ns, secret);
	} else if (status != 404) {
		d->failed++;
		kc_warn("cluster %s: cannot delete %s/%s (host %s): %s", d->cluster, ns, secret, host,
			e.msg[0] ? e.msg : "refused");
	}
}

/* Every Secret any bastion may have made for the user on cl: deleted. Once
 * the lock is gone (if_locked: the second deletion, after an unlock) the
 * Secrets are the new grants' and stay; a lock that cannot be read counts as
 * standing. */
static int delete_everywhere(const struct kc_config *cfg, const struct kc_cluster *cl, const char *user, bool if_locked,
			     unsigned *deleted)
{
	struct kc_err e = { "" };
	struct fleet_delete d = { .cluster = cl->name };
	struct kc_lock lock;
	int rc;

	d.k = kc_kube_connect(cfg, cl, kc_now_ms() + 30000, NULL, &e);
	if (d.k && if_locked && kc_fleet_get_lock(d.k, cfg, cl, user, time(NULL), &lock, &e) == 0) {
		kc_kube_close(d.k);
		return 0;
	}
	rc = d.k ? kc_fleet_secrets_of(d.k, cfg, cl, user, delete_one, &d, &e) : -1;
	if (rc < 0)
		kc_warn("cluster %s: the fleet's hosts cannot be listed: %s", cl->name, e.msg);
	kc_kube_close(d.k);
	*deleted += d.deleted;
	return rc < 0 || d.failed ? -1 : 0;
}

/* The rule of a second revoke: a lock that stands never gets an earlier end
 * (until 0, until unlocked, is the latest). */
static bool stands_longer(const struct kc_lock *held, time_t until)
{
	return until && (!held->until || held->until > until);
}

/* As keep_longer, for the lock another bastion may have written in the
 * fleet's namespace of cl: put is what to write there. When that lock cannot
 * be read first, ours is written anyway: writing it is what matters. */
static void fleet_keep_longer(struct kc_kube *kube, const struct kc_config *cfg, const struct kc_cluster *cl,
			      const struct kc_lock *k, struct kc_lock *put)
{
	struct kc_lock held;
	struct kc_err e = { "" };

	if (!k->until || kc_fleet_get_lock(kube, cfg, cl, k->user, time(NULL), &held, &e) != 1)
		return;
	if (stands_longer(&held, k->until)) {
		put->until = held.until;
		printf("cluster %s: the fleet's lock on %s stands longer and is kept\n", cl->name, k->user);
	}
}

/* The lock into the fleet's namespace of every cluster first (a login or a
 * refresh anywhere reads it before minting), then every Secret of the user
 * that any bastion may hold, now and once more when whatever read the locks
 * before ours has run out of time. Names the clusters where the lock could not
 * be written (gc writes it there later). */
static int revoke_fleet(const struct kc_config *cfg, const struct kc_lock *k)
{
	unsigned deleted = 0;
	int failed = 0;

	for (size_t c = 0; c < cfg->n_clusters; c++) {
		const struct kc_cluster *cl = &cfg->clusters[c];
		struct kc_err e = { "" };
		struct kc_kube *kube;
		struct kc_lock put = *k;

		if (k->cluster[0] && strcmp(k->cluster, cl->name) != 0)
			continue;
		kube = kc_kube_connect(cfg, cl, kc_now_ms() + 30000, NULL, &e);
		if (kube)
			fleet_keep_longer(kube, cfg, cl, k, &put);
		if (!kube || kc_fleet_put_lock(kube, cfg, &put, &e) < 0) {
			fprintf(stderr,
				"pam-kubeconfig: cluster %s: the lock could not be written (%s); gc writes it "
				"later\n",
				cl->name, e.msg);
			failed++;
		}
		kc_kube_close(kube);
	}
	for (size_t c = 0; c < cfg->n_clusters; c++)
		if (!k->cluster[0] || strcmp(k->cluster, cfg->clusters[c].name) == 0)
			failed += delete_everywhere(cfg, &cfg->clusters[c], k->user, false, &deleted) < 0;
	printf("the fleet: %s is locked on %s; %u Secret%s of other bastions deleted\n", k->user,
	       k->cluster[0] ? k->cluster : "every cluster", deleted, deleted == 1 ? "" : "s");
	return failed ? KC_EXIT_ERROR : KC_EXIT_OK;
}

/* Detached: the Secrets deleted again once whatever read the locks before
 * ours has run out of time, where the lock still stands. */
static void delete_again_later(const struct kc_config *cfg, const char *user, const char *cluster)
{
	pid_t pid;
	unsigned deleted = 0;
	int null;

	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return;
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	sleep(FLEET_AGAIN_AFTER_S);
	for (size_t c = 0; c < cfg->n_clusters; c++)
		if (!cluster || strcmp(cluster, cfg->clusters[c].name) == 0)
			delete_everywhere(cfg, &cfg->clusters[c], user, true, &deleted);
	_exit(0);
}

/* Who asked: the login behind sudo or su (the kernel's login uid; the
 * environment is gone by now), else whoever runs us. */
static void who(char *out, size_t len)
{
	unsigned long login = (unsigned long)-1;
	FILE *f = fopen("/proc/self/loginuid", "re");
	uid_t uid = getuid();
	struct passwd *pw;

	if (f) {
		if (fscanf(f, "%lu", &login) == 1 && login != 4294967295UL)
			uid = (uid_t)login;
		fclose(f);
	}
	if ((pw = getpwuid(uid)))
		snprintf(out, len, "%s", pw->pw_name);
	else
		snprintf(out, len, "uid %u", (unsigned)uid);
}

static int known_cluster(const char *config, const char *cluster)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, 0, &err);
	int rc = KC_EXIT_OK;

	if (!cfg) {
		fprintf(stderr, "%s\n", err.msg);
		return KC_EXIT_USAGE;
	}
	if (cluster && !kc_config_cluster(cfg, cluster)) {
		fprintf(stderr, "pam-kubeconfig: no cluster '%s' in %s\n", cluster, cfg->path);
		rc = KC_EXIT_USAGE;
	}
	kc_config_free(cfg);
	return rc;
}

/* --for's end: whole seconds, rounded up (a lock lapses once time(NULL) reaches it). */
static time_t lock_end(long seconds)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec + (now.tv_nsec > 0) + seconds;
}

/* k keeps the end of a lock that stands longer on the same user and cluster
 * (stands_longer). True when the lock that stood decided it. */
static bool keep_longer(struct kc_lock *k)
{
	struct kc_locks all;
	struct kc_err err = { "" };
	const struct kc_lock *held;
	size_t n;
	bool kept = false;

	if (!k->until || kc_locks_read(&all, time(NULL), &err) < 0)
		return false;
	held = kc_locks_of(&all, k->user, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(held[i].cluster, k->cluster) == 0 && stands_longer(&held[i], k->until)) {
			k->until = held[i].until;
			kept = true;
		}
	kc_locks_free(&all);
	return kept;
}

int kc_cmd_revoke(const char *config, const char *user, const char *cluster, long seconds, bool fleet, long deadline_ms)
{
	struct kc_lock k = { .since = time(NULL) };
	struct kc_err err = { "" };
	char until[96];
	bool kept;
	int serial, rc = known_cluster(config, cluster);

	if (rc != KC_EXIT_OK)
		return rc;
	if (strlen(user) >= sizeof(k.user))
		return fprintf(stderr, "pam-kubeconfig: user name too long\n"), KC_EXIT_USAGE;
	snprintf(k.user, sizeof(k.user), "%s", user);
	snprintf(k.cluster, sizeof(k.cluster), "%s", cluster ? cluster : "");
	k.until = seconds > 0 ? lock_end(seconds) : 0;
	/* What stands is read and ours written with no other revoke or unlock
	 * between: a shorter lock never replaces a longer one written meanwhile. */
	serial = kc_locks_serialize(kc_now_ms() + (deadline_ms > 0 ? deadline_ms : SERIAL_WAIT_MS), &err);
	if (serial < 0) {
		fprintf(stderr, "pam-kubeconfig: cannot lock %s: %s\n", user, err.msg);
		return KC_EXIT_ERROR;
	}
	kept = keep_longer(&k);
	who(k.by, sizeof(k.by));
	k.fleet = fleet;
	/* The lock first: from now on nothing mints for the user, whatever races. */
	rc = kc_lock_put(&k, &err);
	close(serial);
	if (rc < 0) {
		fprintf(stderr, "pam-kubeconfig: cannot lock %s: %s\n", user, err.msg);
		return KC_EXIT_ERROR;
	}
	kc_lock_until_text(&k, until, sizeof(until));
	kc_audit("lock user=%s cluster=%s until=%lld by=%s", user, cluster ? cluster : "*", (long long)k.until, k.by);
	printf("%s is locked on %s%s %s%s\n", user, cluster ? "cluster " : "every cluster", cluster ? cluster : "",
	       until, kept ? " (a lock that stands longer is kept)" : "");
	if (fleet) {
		struct kc_config *cfg = kc_config_load(config, 0, &err);

		rc = cfg && cfg->fleet_namespace ? revoke_fleet(cfg, &k) : KC_EXIT_USAGE;
		if (cfg && !cfg->fleet_namespace)
			fprintf(stderr, "pam-kubeconfig: --fleet needs fleet: { namespace: NS } in %s\n", cfg->path);
		if (rc != KC_EXIT_USAGE && cfg)
			delete_again_later(cfg, user, cluster);
		kc_config_free(cfg);
		if (rc == KC_EXIT_USAGE)
			return rc;
	}
	if (!getpwnam(user)) {
		printf("no account %s on this host: nothing held here to revoke\n", user);
		return rc;
	}
	rc |= kc_timers_user(config, user, false, deadline_ms);
	if (rc == KC_EXIT_OK)
		printf("what %s held here is revoked, their token files removed and connections cut\n", user);
	else
		fprintf(stderr, "pam-kubeconfig: some revocations are pending; gc retries them and the lock stands\n");
	return rc;
}

/* The fleet's locks on user go from every cluster (or one). */
static int unlock_fleet(const char *config, const char *user, const char *cluster)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, 0, &err);
	int failed = 0;

	if (!cfg || !cfg->fleet_namespace) {
		fprintf(stderr, "pam-kubeconfig: --fleet needs fleet: { namespace: NS } in the config\n");
		kc_config_free(cfg);
		return -1;
	}
	for (size_t c = 0; c < cfg->n_clusters; c++) {
		const struct kc_cluster *cl = &cfg->clusters[c];
		struct kc_kube *k;

		if (cluster && strcmp(cluster, cl->name) != 0)
			continue;
		k = kc_kube_connect(cfg, cl, kc_now_ms() + 30000, NULL, &err);
		if (!k || kc_fleet_drop_lock(k, cfg, user, &err) < 0) {
			fprintf(stderr, "pam-kubeconfig: cluster %s: the lock could not be removed: %s\n", cl->name,
				err.msg);
			failed++;
		}
		kc_kube_close(k);
	}
	kc_config_free(cfg);
	return failed ? -1 : 0;
}

int kc_cmd_unlock(const char *config, const char *user, const char *cluster, bool fleet, long deadline_ms)
{
	struct kc_err err = { "" };
	size_t n = 0;
	char by[64];
	int serial, rc = known_cluster(config, cluster);

	if (rc != KC_EXIT_OK)
		return rc;
	serial = kc_locks_serialize(kc_now_ms() + (deadline_ms > 0 ? deadline_ms : SERIAL_WAIT_MS), &err);
	if (serial < 0 || kc_lock_drop(user, cluster, &n, &err) < 0) {
		fprintf(stderr, "pam-kubeconfig: cannot unlock %s: %s\n", user, err.msg);
		if (serial >= 0)
			close(serial);
		return KC_EXIT_ERROR;
	}
	close(serial);
	who(by, sizeof(by));
	if (fleet) {
		if (unlock_fleet(config, user, cluster) < 0)
			return KC_EXIT_ERROR;
		n++;
	}
	if (n == 0) {
		printf("%s holds no lock%s%s\n", user, cluster ? " on cluster " : "", cluster ? cluster : "");
		return KC_EXIT_OK;
	}
	kc_audit("unlock user=%s cluster=%s by=%s", user, cluster ? cluster : "*", by);
	printf("%s is unlocked%s%s\n", user, cluster ? " on cluster " : "", cluster ? cluster : "");
	/* Sessions still open get their tokens back now, not at the next refresh. */
	return getpwnam(user) ? kc_timers_user(config, user, false, deadline_ms) : KC_EXIT_OK;
}

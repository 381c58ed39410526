/* The fleet's ConfigMaps (see fleet.h). */
#include "lifecycle/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"
#include "common/json_alloc.h"
#include "common/log.h"
#include "config/mapping.h"
#include "kube/configmaps.h"
#include "kube/objects.h"

static void name_of(const char *what, const char *key, char out[64])
{
	char hex[65];

	kc_sha256_hex(key, strlen(key), hex);
	snprintf(out, 64, "pam-kubeconfig-%s-%.20s", what, hex);
}

/* What this host's ConfigMap says on a cluster: its id and the namespaces
 * (templates: {user} and {user_safe} expand per user) its rules mint in. */
static json_t *host_data(const struct kc_config *cfg, const struct kc_cluster *cl)
{
	kc_autobuf struct kc_buf ns = { 0 };

	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const char *t = cfg->mappings[i].sa_namespace;

		if (strcmp(cfg->mappings[i].cluster, cl->name) != 0 || (ns.data && strstr(ns.data, t)))
			continue;
		kc_buf_printf(&ns, "%s\n", t);
	}
	return json_pack("{s:s, s:s, s:s}", "host", cfg->host_id, "cluster", cl->name, "namespaces",
			 ns.data ? ns.data : "");
}

static void note_host(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl)
{
	json_t *data = host_data(cfg, cl);
	char *text = data ? json_dumps(data, JSON_SORT_KEYS) : NULL;
	char name[64], digest[65], key[160];
	kc_autobuf struct kc_buf was = { 0 };
	struct kc_err e = { "" };

	if (!text) {
		json_decref(data);
		return;
	}
	kc_sha256_hex(text, strlen(text), digest);
	snprintf(key, sizeof(key), "host-%s", cl->name);
	if (kc_cache_get("fleet", key, 0, 0, &was, NULL, &e) != 0 || !was.data || strcmp(was.data, digest) != 0) {
		name_of("host", cfg->host_id, name);
		if (kc_kube_cm_put(k, cfg->fleet_namespace, name, "host", data, &e) == 0)
			kc_cache_put("fleet", key, digest, strlen(digest), &e);
		else
			kc_warn("cluster %s: the fleet's ConfigMap of this host: %s", cl->name, e.msg);
	}
	kc_json_free(text);
	json_decref(data);
}

static int lock_of(json_t *data, const char *cluster, struct kc_lock *k)
{
	const char *user = NULL, *until = "0", *since = "0", *by = "";

	memset(k, 0, sizeof(*k));
	if (json_unpack(data, "{s:s, s?s, s?s, s?s}", "user", &user, "until", &until, "since", &since, "by", &by) < 0 ||
	    !*user || strlen(user) >= sizeof(k->user))
		return -1;
	snprintf(k->user, sizeof(k->user), "%s", user);
	snprintf(k->cluster, sizeof(k->cluster), "%s", cluster);
	snprintf(k->by, sizeof(k->by), "%s", by);
	k->until = (time_t)strtoll(until, NULL, 10);
	k->since = (time_t)strtoll(since, NULL, 10);
	k->fleet = true;
	return 0;
}

/* A lock ConfigMap this version cannot read (another version's format, or an
 * edit by hand) still stands, for ever, over the user its name is made for.
 * Says so; true. */
static bool unreadable(const struct kc_config *cfg, const struct kc_cluster *cl, const char *name)
{
	kc_warn("cluster %s: the fleet's lock ConfigMap %s/%s cannot be read (no \"user\" of up to %zu characters in "
		"its data): it stands for ever over the user it was made for (its name ends in the first 20 hex "
		"digits of the SHA-256 of the user's name); `pam-kubeconfig unlock USER --fleet` removes it",
		cl->name, cfg->fleet_namespace, name ? name : "?", sizeof(((struct kc_lock *)0)->user) - 1);
	return true;
}

void kc_fleet_unreadable_key(const char *user, char out[KC_LOCK_USER_MAX])
{
	char name[64];

	name_of("lock", user, name);
	snprintf(out, KC_LOCK_USER_MAX, "%s%s", KC_FLEET_UNREADABLE, name);
}

/* Listed, a lock ConfigMap that cannot be read joins l under its name
 * (kc_fleet_unreadable_key() finds whose it is); 0, or -1 when even its
 * name is missing: then the cluster is held. */
static int unreadable_lock(const struct kc_config *cfg, const struct kc_cluster *cl, json_t *item, struct kc_locks *l)
{
	const char *name = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
	struct kc_lock k = { .fleet = true };

	unreadable(cfg, cl, name);
	if (!name)
		return -1;
	snprintf(k.user, sizeof(k.user), "%s%s", KC_FLEET_UNREADABLE, name);
	snprintf(k.cluster, sizeof(k.cluster), "%s", cl->name);
	snprintf(k.by, sizeof(k.by), "unreadable");
	return kc_locks_add(l, &k);
}

/* gc: a lock revoke --fleet could not write on this cluster is written now. */
static void repair(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl,
		   const struct kc_locks *local, json_t *items)
{
	for (size_t i = 0; i < local->n; i++) {
		const struct kc_lock *want = &local->l[i];
		json_t *item;
		size_t n;
		bool there = false;
		struct kc_err e = { "" };

		if (!want->fleet || (want->cluster[0] && strcmp(want->cluster, cl->name) != 0))
			continue;
		json_array_foreach(items, n, item)
		{
			struct kc_lock got;

			there |= lock_of(json_object_get(item, "data"), cl->name, &got) == 0 &&
				 strcmp(got.user, want->user) == 0;
		}
		if (!there && kc_fleet_put_lock(k, cfg, want, &e) < 0)
			kc_warn("cluster %s: the fleet's lock on %s is still missing: %s", cl->name, want->user, e.msg);
		else if (!there)
			kc_audit("lock user=%s cluster=%s fleet written-by=gc", want->user, cl->name);
	}
}

void kc_fleet_read_locks(const struct kc_config *cfg, time_t now, long long deadline_ms, bool repair_them,
			 struct kc_locks *l, bool *held)
{
	struct kc_locks local = { 0 };

	if (repair_them && l->n && (local.l = calloc(l->n, sizeof(*local.l)))) {
		memcpy(local.l, l->l, l->n * sizeof(*local.l));
		local.n = l->n;
	}
	for (size_t c = 0; c < cfg->n_clusters; c++) {
		const struct kc_cluster *cl = &cfg->clusters[c];
		struct kc_err e = { "" };
		struct kc_kube *k = kc_kube_connect(cfg, cl, deadline_ms, NULL, &e);
		json_t *items = NULL, *item;
		size_t i;

		if (!k || kc_kube_cm_list(k, cfg->fleet_namespace, "lock", &items, &e) < 0) {
			kc_warn("cluster %s: the fleet's locks cannot be read (%s): nothing changes there this run",
				cl->name, e.msg);
			held[c] = true;
			kc_kube_close(k);
			continue;
		}
		json_array_foreach(items, i, item)
		{
			struct kc_lock lock;

			if (lock_of(json_object_get(item, "data"), cl->name, &lock) < 0)
				held[c] |= unreadable_lock(cfg, cl, item, l) < 0;
			else if (!lock.until || lock.until > now)
				kc_locks_add(l, &lock);
		}
		repair(k, cfg, cl, &local, items);
		json_decref(items);
		note_host(k, cfg, cl);
		kc_kube_close(k);
	}
	kc_locks_free(&local);
}

int kc_fleet_get_lock(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
		      time_t now, struct kc_lock *lock, struct kc_err *err)
{
	char name[64];
	json_t *data = NULL;
	int rc;

	name_of("lock", user, name);
	rc = kc_kube_cm_get(k, cfg->fleet_namespace, name, &data, err);
	if (rc == 0 && (lock_of(data, cl->name, lock) < 0 || strcmp(lock->user, user) != 0)) {
		memset(lock, 0, sizeof(*lock)); /* standing, for ever, until it is replaced or deleted */
		snprintf(lock->user, sizeof(lock->user), "%s", user);
		snprintf(lock->cluster, sizeof(lock->cluster), "%s", cl->name);
		lock->fleet = unreadable(cfg, cl, name);
		rc = 1;
	} else if (rc == 0)
		rc = !lock->until || lock->until > now ? 1 : 0;
	else if (rc == 1)
		rc = 0;
	json_decref(data);
	return rc;
}

int kc_fleet_put_lock(struct kc_kube *k, const struct kc_config *cfg, const struct kc_lock *lock, struct kc_err *err)
{
	char name[64], until[24], since[24];
	json_t *data;
	int rc;

	snprintf(until, sizeof(until), "%lld", (long long)lock->until);
	snprintf(since, sizeof(since), "%lld", (long long)lock->since);
	data = json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", lock->user, "until", until, "since", since, "by",
			 lock->by, "host", cfg->host_id);
	if (!data)
		return kc_seterr(err, "out of memory"), -1;
	name_of("lock", lock->user, name);
	rc = kc_kube_cm_put(k, cfg->fleet_namespace, name, "lock", data, err);
	json_decref(data);
	return rc;
}

int kc_fleet_drop_lock(struct kc_kube *k, const struct kc_config *cfg, const char *user, struct kc_err *err)
{
	char name[64];

	name_of("lock", user, name);
	return kc_kube_cm_delete(k, cfg->fleet_namespace, name, err) < 0 ? -1 : 0;
}

int kc_fleet_secrets_of(struct kc_kube *k, const struct kc_config *cfg, const struct kc_cluster *cl, const char *user,
			kc_fleet_secret_fn fn, void *arg, struct kc_err *err)
{
	json_t *items = NULL, *item;
	size_t i;

	if (kc_kube_cm_list(k, cfg->fleet_namespace, "host", &items, err) < 0)
		return -1;
	json_array_foreach(items, i, item)
	{
		const char *host = NULL, *list = "", *cluster = cl->name;
		char secret[64];

		if (json_unpack(json_object_get(item, "data"), "{s:s, s?s, s?s}", "host", &host, "namespaces", &list,
				"cluster", &cluster) < 0)
			continue;
		kc_kube_secret_name(host, user, cluster, secret, sizeof(secret));
		for (const char *p = list; *p; p += strcspn(p, "\n"), p += *p == '\n') {
			char tmpl[256], ns[KC_NS_MAX];
			size_t n = strcspn(p, "\n");

			if (n == 0 || n >= sizeof(tmpl))
				continue;
			memcpy(tmpl, p, n);
			tmpl[n] = '\0';
			if (kc_template_expand(tmpl, user, ns, sizeof(ns)) < (int)sizeof(ns) && kc_valid_dns_label(ns))
				fn(host, ns, secret, arg);
		}
	}
	json_decref(items);
	return 0;
}

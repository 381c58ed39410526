/* Locks and certificates put on an identity (see access.h). */
#include "lifecycle/access.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "lifecycle/fleet.h"
#include "lifecycle/state.h"

/* The fleet's locks join the local ones; the clusters that could not say are held. */
static void read_fleet(struct kc_access *a, bool repair, long long deadline_ms)
{
	bool *held = calloc(a->cfg->n_clusters + 1, sizeof(*held));

	a->held = calloc(a->cfg->n_clusters + 1, sizeof(*a->held));
	if (!held || !a->held) {
		for (size_t c = 0; a->held && c < a->cfg->n_clusters; c++)
			a->held[a->n_held++] = a->cfg->clusters[c].name;
		free(held);
		return;
	}
	kc_fleet_read_locks(a->cfg, a->now, deadline_ms, repair, &a->locks, held);
	for (size_t c = 0; c < a->cfg->n_clusters; c++)
		if (held[c])
			a->held[a->n_held++] = a->cfg->clusters[c].name;
	free(held);
}

int kc_access_load(struct kc_access *a, const struct kc_config *cfg, enum kc_fleet_read fleet, long long deadline_ms,
		   struct kc_err *err)
{
	struct kc_err e = { "" };
	int rc = 0;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->now = time(NULL);
	/* A CA file that cannot be read now: no certificate counts (less access). */
	if (cfg->ssh_ca_keys && kc_sshcert_cas_load(cfg->ssh_ca_keys, &a->cas, NULL, &e) < 0)
		kc_warn("%s; no SSH certificate counts until it is fixed", e.msg);
	if (kc_locks_read(&a->locks, a->now, err) < 0) {
		a->unreadable = true;
		rc = -1;
	}
	if (fleet != KC_FLEET_NONE && cfg->fleet_namespace)
		read_fleet(a, fleet == KC_FLEET_REPAIR, deadline_ms);
	return rc;
}

void kc_access_free(struct kc_access *a)
{
	free(a->held);
	kc_locks_free(&a->locks);
	kc_sshcert_cas_free(&a->cas);
}

int kc_access_check_cert(const struct kc_access *a, const struct kc_sshcert *cert, const char *user,
			 struct kc_sshcert_verdict *verdict, struct kc_err *why)
{
	const struct kc_sshcert_policy policy = { .cas = &a->cas,
						  .principals_file = a->cfg->ssh_principals_file,
						  .cas_path = a->cfg->ssh_ca_keys };

	memset(verdict, 0, sizeof(*verdict));
	if (!a->cfg->ssh_ca_keys || a->cas.n == 0)
		return kc_seterr(why, "no trusted SSH CA (ssh_certificates.trusted_ca_keys)"), 1;
	return kc_sshcert_check(cert, &policy, time(NULL), user, verdict, why);
}

/* Everything a claim points to is kept here, freed with it. */
static void *keep_ptr(struct kc_user_access *ua, void *p)
{
	void **more = p ? reallocarray(ua->storage, ua->n_storage + 1, sizeof(*more)) : NULL;

	if (!more) {
		free(p);
		return NULL;
	}
	ua->storage = more;
	ua->storage[ua->n_storage++] = p;
	return p;
}

static char *keep(struct kc_user_access *ua, const char *s)
{
	return keep_ptr(ua, strdup(s ? s : ""));
}

/* One accepted certificate becomes a claim: its authorized principals, key id
 * and end. What cannot be kept is left out (less access). */
static void add_claim(struct kc_user_access *ua, size_t *n, const struct kc_sshcert *cert,
		      const struct kc_sshcert_verdict *v)
{
	struct kc_cert_claim *c = &ua->claims[*n];
	const char **p = keep_ptr(ua, calloc(v->n_principals + 1, sizeof(*p)));
	const char *key_id = keep(ua, cert->key_id);

	if (!p || !key_id)
		return;
	for (size_t i = 0; i < v->n_principals; i++)
		if ((p[c->n_principals] = keep(ua, v->principals[i])))
			c->n_principals++;
	c->principals = p;
	c->key_id = key_id;
	c->valid_before =
		cert->valid_before > (uint64_t)INT64_MAX / 2 ? (time_t)(INT64_MAX / 2) : (time_t)cert->valid_before;
	(*n)++;
}

static void judge(const struct kc_access *a, const char *user, const struct kc_sshcert *cert, struct kc_user_access *ua,
		  size_t *n)
{
	struct kc_sshcert_verdict v;
	struct kc_err why = { "" };

	if (kc_access_check_cert(a, cert, user, &v, &why) == 0)
		add_claim(ua, n, cert, &v);
	else
		kc_debug("user %s: %s", user, why.msg);
	kc_sshcert_verdict_free(&v);
}

/* The certificates of the user's live sessions, each read from its file. */
static void recorded_claims(const struct kc_access *a, const char *user, int dir, struct kc_user_access *ua, size_t *n,
			    size_t cap)
{
	struct kc_session_record *live = NULL;
	size_t n_live = 0;
	struct kc_err e;

	if (kc_state_sessions(dir, false, &live, &n_live, NULL, &e) < 0)
		return;
	for (size_t i = 0; i < n_live && *n < cap; i++) {
		kc_autobuf struct kc_buf blob = { 0 };
		struct kc_sshcert *cert = NULL;

		if (!live[i].cert.present || kc_state_get_cert(dir, live[i].id, KC_SSHCERT_MAX, &blob, &e) < 0 ||
		    kc_sshcert_parse((const unsigned char *)blob.data, blob.len, &cert, &e) != 0)
			continue;
		judge(a, user, cert, ua, n);
		kc_sshcert_free(cert);
	}
	free(live);
}

/* The fleet's lock ConfigMaps made for this user that could not be read
 * lock it all the same (kc_fleet_read_locks()). */
static void add_unreadable_fleet_locks(const struct kc_access *a, struct kc_identity *id, struct kc_user_access *ua,
				       size_t *n)
{
	char key[KC_LOCK_USER_MAX];
	const char **more = NULL, **all;
	size_t m = 0;
	bool every;

	kc_fleet_unreadable_key(id->name, key);
	kc_locks_for_mapping(&a->locks, key, &every, &more, &m);
	id->locked_all |= every;
	if (!m) {
		free(more);
		return;
	}
	all = reallocarray(ua->locked, *n + m + 1, sizeof(*all));
	if (!all) {
		id->locked_all = true; /* out of memory: fail towards less access */
		free(more);
		return;
	}
	memcpy(all + *n, more, m * sizeof(*all));
	*n += m;
	all[*n] = NULL;
	ua->locked = all;
	free(more);
}

void kc_access_apply(const struct kc_access *a, struct kc_identity *id, int dir, const struct kc_sshcert *current,
		     struct kc_user_access *ua)
{
	size_t n = 0, cap = 64;

	memset(ua, 0, sizeof(*ua));
	if (!id->name)
		return;
	kc_locks_for_mapping(&a->locks, id->name, &id->locked_all, &ua->locked, &n);
	if (a->cfg && a->cfg->fleet_namespace)
		add_unreadable_fleet_locks(a, id, ua, &n);
	id->locked_all |= a->unreadable;
	id->locked = ua->locked;
	id->n_locked = n;
	id->held = a->held;
	id->n_held = a->n_held;
	if (!a->cfg || !a->cfg->ssh_ca_keys || (dir < 0 && !current))
		return;
	ua->claims = calloc(cap, sizeof(*ua->claims));
	if (!ua->claims)
		return;
	n = 0;
	if (current)
		judge(a, id->name, current, ua, &n);
	if (dir >= 0)
		recorded_claims(a, id->name, dir, ua, &n, cap);
	id->certs = ua->claims;
	id->n_certs = n;
}

void kc_user_access_free(struct kc_identity *id, struct kc_user_access *ua)
{
	for (size_t i = 0; i < ua->n_storage; i++)
		free(ua->storage[i]);
	free(ua->storage);
	free(ua->claims);
	free(ua->locked);
	if (id) {
		id->locked = NULL;
		id->n_locked = 0;
		id->certs = NULL;
		id->n_certs = 0;
	}
	memset(ua, 0, sizeof(*ua));
}

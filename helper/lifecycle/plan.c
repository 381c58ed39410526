/* The planner (see lifecycle/plan.h for its invariants). */
#include "lifecycle/plan.h"

#include <stdio.h>
#include <string.h>

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

time_t kc_plan_fresh_until(const struct kc_grant *g, int refresh_before)
{
	return g->minted + (time_t)(g->lifetime * (100 - refresh_before) / 100);
}

bool kc_plan_due(const struct kc_grant *g, int refresh_before, time_t now)
{
	if (!g->sa_name[0] || g->lifetime <= 0 || now < g->minted - 300)
		return true;
	return now >= kc_plan_fresh_until(g, refresh_before);
}

time_t kc_plan_bound_until(const struct kc_grant *g)
{
	if (g->bound_until)
		return g->bound_until;
	if (g->minted && g->lifetime > 0)
		return g->minted + g->lifetime;
	return g->since ? g->since + KC_BOUND_UNKNOWN_S : 0;
}

/* A pending revocation with nothing left to revoke (P7). */
static bool all_expired(const struct kc_grant *g, time_t now)
{
	time_t bound = kc_plan_bound_until(g);

	return g->state == KC_GRANT_REVOKE && bound && now >= bound + KC_TOKEN_LEEWAY_S;
}

/* The grant the mapping wants, if this one can serve as it (P8: made against
 * the cluster as it is now; an older helper's file, which did not say, is). */
static bool can_keep(const struct kc_grant *g, const struct kc_plan_target *t)
{
	return g->state == KC_GRANT_CURRENT && !g->interrupted && strcmp(g->secret, t->secret) == 0 &&
	       (!g->sa_name[0] || strcmp(g->sa_name, t->sa_name) == 0) &&
	       (!g->endpoint[0] || !t->endpoint[0] || strcmp(g->endpoint, t->endpoint) == 0);
}

static void decide_mint(struct kc_plan *p)
{
	const struct kc_grant *k;
	bool due;

	p->need_mint = true;
	if (p->keep < 0)
		return;
	k = &p->old[p->keep];
	due = !k->sa_name[0] || p->in.rotate == KC_ROTATE_NOW || kc_plan_due(k, p->in.refresh_before, p->in.now);
	/* The user may break their own token file (it is theirs): a fresh token is
	 * minted for it once per rotation period, not at every refresh. */
	p->remint = !due && !p->in.token_file;
	p->remint_held = p->remint && k->reminted && p->in.limit_remint;
	p->need_mint = due || (p->remint && !p->remint_held);
}

int kc_plan_start(struct kc_plan *p, const struct kc_plan_input *in)
{
	const struct kc_plan_target *t = &in->target;

	memset(p, 0, sizeof(*p));
	p->in = *in;
	p->keep = -1;
	if (in->n_grants > KC_PLAN_GRANTS_MAX - 1) /* one slot stays free for a stray */
		return -1;
	p->n_old = in->n_grants;
	for (size_t i = 0; i < in->n_grants; i++) {
		const struct kc_grant *g = &in->grants[i];

		p->old[i] = *g;
		/* A holder that died mid-change may have made another incarnation:
		 * its recorded uid proves nothing; a dry run will tell. */
		if (g->interrupted)
			p->old[i].secret_uid[0] = '\0';
		if (all_expired(g, in->now))
			p->fate[i] = KC_FATE_REVOKE, p->revoked[i] = p->expired[i] = true;
		else if (!t->wanted || strcmp(g->sa_namespace, t->sa_namespace) != 0)
			p->fate[i] = KC_FATE_REVOKE;
		else if (can_keep(g, t) && p->keep < 0)
			p->fate[i] = KC_FATE_KEEP, p->keep = (int)i;
		else
			p->fate[i] = KC_FATE_RECREATE;
		/* A grant bound to no Secret is revoked by forgetting it. */
		if (p->fate[i] != KC_FATE_KEEP && !g->secret[0])
			p->revoked[i] = true;
	}
	if (!t->wanted)
		return 0;
	if (p->keep >= 0)
		copy_str(p->secret_uid, sizeof(p->secret_uid), p->old[p->keep].secret_uid);
	p->need_create = p->keep < 0 && t->secret[0];
	decide_mint(p);
	p->need_reconcile = p->need_mint && t->reconcile;
	return 0;
}

static const char *uid_of(const struct kc_plan *p, size_t i)
{
	return p->uid_learned[i] ? p->learned_uid[i] : p->old[i].secret_uid;
}

/* The old grants whose Secrets must go, in file order; a kept one stays. */
static bool next_revocation(const struct kc_plan *p, struct kc_step *s)
{
	for (size_t i = 0; i < p->n_old; i++) {
		if (p->fate[i] == KC_FATE_KEEP || p->revoked[i] || p->revoke_failed[i])
			continue;
		s->grant = i;
		s->sa_namespace = p->old[i].sa_namespace;
		s->secret = p->old[i].secret;
		s->secret_uid = uid_of(p, i);
		s->kind = s->secret_uid[0] ? KC_STEP_DELETE : KC_STEP_LEARN_UID;
		return true;
	}
	return false;
}

struct kc_step kc_plan_next(const struct kc_plan *p)
{
	struct kc_step s = { .kind = KC_STEP_DONE };
	const struct kc_plan_target *t = &p->in.target;

	if (p->stopped || next_revocation(p, &s))
		return s;
	if (!t->wanted)
		return s;
	/* The wanted grant's slot must be free of every old incarnation first. */
	for (size_t i = 0; i < p->n_old; i++)
		if (p->fate[i] != KC_FATE_KEEP && !p->revoked[i] &&
		    strcmp(p->old[i].sa_namespace, t->sa_namespace) == 0)
			return s;
	s.sa_namespace = t->sa_namespace;
	s.secret = t->secret;
	s.secret_uid = p->secret_uid;
	if (p->need_create && !p->created)
		s.kind = KC_STEP_CREATE;
	else if (p->need_reconcile && !p->reconciled)
		s.kind = KC_STEP_RECONCILE;
	else if (p->need_mint && !p->minted)
		s.kind = KC_STEP_MINT;
	return s;
}

/* A Secret of ours that no file records: revoked first, then made anew. */
static void add_stray(struct kc_plan *p)
{
	struct kc_grant *g;

	if (p->n_old >= KC_PLAN_GRANTS_MAX || p->create_tries >= 2) {
		p->stopped = true;
		return;
	}
	g = &p->old[p->n_old];
	memset(g, 0, sizeof(*g));
	copy_str(g->cluster, sizeof(g->cluster), p->in.cluster);
	copy_str(g->sa_namespace, sizeof(g->sa_namespace), p->in.target.sa_namespace);
	copy_str(g->secret, sizeof(g->secret), p->in.target.secret);
	g->state = KC_GRANT_REVOKE;
	p->fate[p->n_old] = KC_FATE_REVOKE;
	p->stray[p->n_old] = true;
	p->n_old++;
}

/* The kept grant's Secret vanished under us (deleted by someone, or another
 * incarnation): the grant is gone; make the Secret anew, once. */
static void lost_kept(struct kc_plan *p)
{
	if (p->keep < 0 || p->mint_tries >= 2 || !p->in.target.secret[0]) {
		p->stopped = true;
		return;
	}
	p->fate[p->keep] = KC_FATE_RECREATE;
	p->revoked[p->keep] = true;
	p->keep = -1;
	p->need_create = true;
	p->created = false;
	p->secret_uid[0] = '\0';
}

static void record_mint(struct kc_plan *p, enum kc_outcome o, const char *uid)
{
	p->mint_tries++;
	switch (o) {
	case KC_OUT_OK:
		p->minted = true;
		copy_str(p->minted_uid, sizeof(p->minted_uid), uid);
		if (!p->secret_uid[0])
			copy_str(p->secret_uid, sizeof(p->secret_uid), uid);
		break;
	case KC_OUT_SA_MISSING:
		if (p->in.target.create && !p->reconciled && p->mint_tries < 2)
			p->need_reconcile = true;
		else
			p->stopped = true;
		break;
	case KC_OUT_SECRET_MISSING:
		if (p->created)
			p->stopped = true; /* just made, and already gone: leave it */
		else
			lost_kept(p);
		break;
	default: p->stopped = true; break;
	}
}

/* A Secret revoked (404, or deleted) whose create may still land
 * (KC_CREATE_MAY_LAND_S): a job that may have sent one marked its slot a
 * moment ago and died (the Secret deleted may be the one before it); or, on a
 * 404, its uid was never learned and its revocation began a moment ago. The
 * slot of a wanted grant goes on all the same: its own create adopts what
 * lands first (409, a stray). */
static bool create_may_land(const struct kc_plan *p, size_t i, enum kc_outcome o)
{
	const struct kc_grant *g = i < p->in.n_grants && !p->stray[i] ? &p->in.grants[i] : NULL;

	if (!g || p->fate[i] != KC_FATE_REVOKE)
		return false;
	if (g->creating && p->in.now - g->creating < KC_CREATE_MAY_LAND_S)
		return true;
	return o == KC_OUT_GONE && !g->secret_uid[0] && g->state == KC_GRANT_REVOKE && g->since &&
	       p->in.now - g->since < KC_CREATE_MAY_LAND_S;
}

void kc_plan_record(struct kc_plan *p, const struct kc_step *s, enum kc_outcome o, const char *uid)
{
	size_t i = s->grant;

	switch (s->kind) {
	case KC_STEP_LEARN_UID:
	case KC_STEP_DELETE:
		if ((o == KC_OUT_GONE || (o == KC_OUT_OK && s->kind == KC_STEP_DELETE)) && create_may_land(p, i, o)) {
			p->revoke_failed[i] = p->may_land[i] = true; /* not there yet: asked again later */
		} else if (o == KC_OUT_GONE || (o == KC_OUT_OK && s->kind == KC_STEP_DELETE)) {
			p->revoked[i] = true;
		} else if (o == KC_OUT_OK && uid && *uid) {
			copy_str(p->learned_uid[i], sizeof(p->learned_uid[i]), uid);
			p->uid_learned[i] = true;
		} else {
			p->revoke_failed[i] = true;
			/* Without the slot free, the wanted grant cannot be made. */
			if (p->fate[i] == KC_FATE_RECREATE || p->stray[i])
				p->stopped = true;
		}
		break;
	case KC_STEP_CREATE:
		p->create_tries++;
		if (o == KC_OUT_OK) {
			p->created = true;
			copy_str(p->secret_uid, sizeof(p->secret_uid), uid);
		} else if (o == KC_OUT_EXISTS) {
			add_stray(p);
		} else {
			p->stopped = true;
		}
		break;
	case KC_STEP_RECONCILE:
		if (o == KC_OUT_OK)
			p->reconciled = true;
		else
			p->stopped = true;
		break;
	case KC_STEP_MINT: record_mint(p, o, uid); break;
	case KC_STEP_DONE: break;
	}
}

void kc_plan_minted(struct kc_plan *p, time_t sent, long lifetime, const char *jti)
{
	p->minted_at = sent;
	p->lifetime = lifetime;
	copy_str(p->jti, sizeof(p->jti), jti);
}

static void put(struct kc_commit *c, const struct kc_grant *g)
{
	/* A later put for the same file replaces an earlier one. */
	for (size_t i = 0; i < c->n_put; i++)
		if (strcmp(c->put[i].sa_namespace, g->sa_namespace) == 0) {
			c->put[i] = *g;
			return;
		}
	if (c->n_put < KC_PLAN_GRANTS_MAX)
		c->put[c->n_put++] = *g;
}

static void commit_old(const struct kc_plan *p, struct kc_commit *c, const char *error, time_t now)
{
	for (size_t i = 0; i < p->n_old; i++) {
		struct kc_grant g = p->old[i];

		if (p->fate[i] == KC_FATE_KEEP)
			continue;
		if (p->revoked[i]) {
			if (!p->stray[i] && c->n_drop < KC_PLAN_GRANTS_MAX) {
				c->drop_expired[c->n_drop] = p->expired[i];
				c->drop[c->n_drop++] = g;
			}
			continue;
		}
		/* Pending: kept until a later job confirms the Secret gone. */
		g.state = KC_GRANT_REVOKE;
		g.interrupted = false;
		/* A create that lands late makes a Secret of our name and a uid not known. */
		copy_str(g.secret_uid, sizeof(g.secret_uid), p->may_land[i] ? "" : uid_of(p, i));
		if (!g.since)
			g.since = now;
		copy_str(g.error, sizeof(g.error),
			 p->may_land[i]				  ? "a create sent before may still land: asked again"
			 : p->revoke_failed[i] && error && *error ? error
								  : "not attempted yet (another request failed)");
		put(c, &g);
	}
}

/* When a job that died may have sent a create for the wanted slot (0: not
 * lately): that create may still land after this job's own Secret is gone, so
 * whatever the slot holds next carries the time (create_may_land). */
static time_t late_create(const struct kc_plan *p)
{
	time_t at = 0;

	for (size_t i = 0; i < p->in.n_grants; i++) {
		const struct kc_grant *g = &p->in.grants[i];

		if (strcmp(g->sa_namespace, p->in.target.sa_namespace) == 0 && g->creating > at &&
		    p->in.now - g->creating < KC_CREATE_MAY_LAND_S)
			at = g->creating;
	}
	return at;
}

/* The wanted grant: kept, made, or (a create whose answer was lost) recorded
 * as a Secret that may exist. */
static void commit_wanted(const struct kc_plan *p, struct kc_commit *c, const char *error, time_t now)
{
	const struct kc_plan_target *t = &p->in.target;
	struct kc_grant g;

	if (!t->wanted)
		return;
	if (p->keep >= 0) {
		g = p->old[p->keep];
		/* An older file's tokens expire by its last one's: kept below a new mint's. */
		g.bound_until = kc_plan_bound_until(&g);
	} else if (p->created || (!t->secret[0] && p->minted)) {
		memset(&g, 0, sizeof(g));
		copy_str(g.cluster, sizeof(g.cluster), p->in.cluster);
		copy_str(g.sa_namespace, sizeof(g.sa_namespace), t->sa_namespace);
		copy_str(g.secret, sizeof(g.secret), t->secret);
		copy_str(g.endpoint, sizeof(g.endpoint), t->endpoint);
		g.state = KC_GRANT_CURRENT;
	} else {
		if (p->need_create && p->create_tries > 0 && !p->created) {
			memset(&g, 0, sizeof(g));
			copy_str(g.cluster, sizeof(g.cluster), p->in.cluster);
			copy_str(g.sa_namespace, sizeof(g.sa_namespace), t->sa_namespace);
			copy_str(g.secret, sizeof(g.secret), t->secret);
			g.state = KC_GRANT_REVOKE;
			g.since = now;
			/* This job's own create, its answer lost, may land as late
			 * as a dead job's (sent before now: the window only grows). */
			g.creating = now;
			copy_str(g.error, sizeof(g.error), error && *error ? error : "its creation was not confirmed");
			put(c, &g);
		}
		return;
	}
	copy_str(g.secret_uid, sizeof(g.secret_uid), p->secret_uid);
	g.interrupted = false;
	g.creating = late_create(p);
	if (p->minted) {
		copy_str(g.sa_name, sizeof(g.sa_name), t->sa_name);
		g.minted = p->minted_at;
		g.lifetime = p->lifetime;
		if (g.bound_until < g.minted + g.lifetime)
			g.bound_until = g.minted + g.lifetime;
		g.reminted = p->remint;
		copy_str(g.endpoint, sizeof(g.endpoint), t->endpoint);
		copy_str(g.jti, sizeof(g.jti), p->jti);
	} else if (p->mint_tries > 0 && g.bound_until < now + p->in.ttl) {
		/* Its answer lost: a token may have been made, as long as it asked,
		 * sent at the latest now (after in.now: other requests came first). */
		g.bound_until = now + p->in.ttl;
	}
	if (!p->minted && p->keep < 0) {
		g.sa_name[0] = '\0'; /* the Secret is there, no token yet */
	}
	put(c, &g);
}

bool kc_plan_will_cut(const struct kc_plan *p)
{
	if (p->in.target.wanted)
		return false;
	if (p->in.token_file)
		return true;
	for (size_t i = 0; i < p->n_old; i++)
		if (p->old[i].state == KC_GRANT_CURRENT && p->old[i].sa_name[0])
			return true;
	return false;
}

void kc_plan_commit(const struct kc_plan *p, struct kc_commit *c, const char *error, time_t now)
{
	bool had_token = p->in.token_file;

	memset(c, 0, sizeof(*c));
	commit_old(p, c, error, now);
	commit_wanted(p, c, error, now);
	for (size_t i = 0; i < p->n_old; i++) {
		const struct kc_grant *g = &p->old[i];

		if (g->state == KC_GRANT_CURRENT && g->sa_name[0]) {
			had_token = true;
			if (p->fate[i] != KC_FATE_KEEP && strcmp(g->sa_name, p->in.target.sa_name) != 0)
				c->remap = p->in.target.wanted && p->minted;
			if (p->revoked[i] && !p->stray[i])
				c->cut = true;
		}
	}
	c->minted = p->minted;
	if (p->minted)
		c->token = KC_TOKEN_WRITE;
	else if (p->keep >= 0 && p->old[p->keep].sa_name[0] && (p->in.token_file || p->remint_held))
		c->token = KC_TOKEN_KEEP; /* with remint_held, the user's broken file stays theirs */
	else
		c->token = KC_TOKEN_REMOVE;
	c->written = c->token == KC_TOKEN_WRITE || (c->token == KC_TOKEN_KEEP && p->in.token_file);
	if (had_token && c->token == KC_TOKEN_REMOVE)
		c->cut = true;
}

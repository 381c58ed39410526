/* The planner over every small state: up to two grant files on a cluster (every
 * state, known or unknown uid, interrupted or not), the token file there or not,
 * fresh or due, each mapping change (nothing wanted, the same account, another
 * account in the same namespace, another namespace; create or not), rotation
 * due or now, a server whose Secrets are as recorded, deleted behind our back,
 * re-created with another uid, or with a stray; and a failure of each request in
 * turn, before the server acted or after (the answer lost). Per file also: a
 * current grant made under the cluster's identity now, another one or an
 * unknown one (P8), re-minted for a broken token file this period or not (with
 * the remint limit on or off), and a pending (or interrupted) grant whose
 * every token has expired or not (P7, on both sides of the leeway); an older
 * file (no identity, no bound) was made when the ttl was longer. A model API
 * server answers, a second later at each request, and remembers when the last
 * token bound to each Secret expires; the invariants of lifecycle/plan.h are
 * checked against it, not against the planner's own view. Two files vary in
 * these last dimensions together only where both are about expiry (see
 * paired()), and a dry run's failure is tried once (before or after is the
 * same to the model). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lifecycle/plan.h"

#define SECRET "pam-kubeconfig-0123456789abcdef0123"
#define NOW 1000000
#define TTL 900 /* what a TokenRequest asks; the model server grants it */
#define ENDPOINT "e1" /* the cluster's identity now */
#define OLD_ENDPOINT "e0" /* another one: the server or CA changed */

/* ---- the model API server: one Secret per namespace (A, B), two accounts ---- */

struct world {
	bool secret[2]; /* in namespace A, B */
	int uid[2];
	bool sa[2][2]; /* namespace, account X/Y */
	int next_uid;
	int token_uid; /* the uid the last token minted in this job is bound to, 0: none */
	int token_ns, token_sa;
	/* The latest expiry of any token bound to the Secret now in the namespace
	 * (0: none); a token dies with its Secret. */
	time_t tok_exp[2];
	time_t clock; /* the helper's and the server's: each request a second after the last */
};

static int ns_index(const char *ns)
{
	return ns[0] == 'A' || ns[0] == 'a' ? 0 : 1;
}

/* Uids are "u" and a number (below 1000): "u7" -> 7. */
static int uid_num(const char *s)
{
	int n = 0;

	if (!s || !*s)
		return 0;
	while (*++s)
		n = n * 10 + (*s - '0');
	return n;
}

static void uid_str(int n, char *out, size_t len)
{
	char digits[8];
	size_t k = 0, i = 0;

	assert_true(n >= 0 && len >= 8);
	do
		digits[k++] = (char)('0' + n % 10);
	while ((n /= 10) && k < sizeof(digits));
	out[i++] = 'u';
	while (k)
		out[i++] = digits[--k];
	out[i] = '\0';
}

static bool expired_by(time_t exp, time_t now)
{
	return exp + KC_TOKEN_LEEWAY_S <= now;
}

enum fail { FAIL_NONE, FAIL_BEFORE, FAIL_AFTER };

static enum kc_outcome serve_mint(struct world *w, const struct kc_plan *p, const struct kc_step *s, char *uid,
				  size_t len)
{
	int n = ns_index(s->sa_namespace);
	int a = p->in.target.sa_name[0] == 'x' ? 0 : 1;

	if (!w->sa[n][a])
		return KC_OUT_SA_MISSING;
	if (s->secret[0] && (!w->secret[n] || (*s->secret_uid && w->uid[n] != uid_num(s->secret_uid))))
		return KC_OUT_SECRET_MISSING;
	w->token_uid = s->secret[0] ? w->uid[n] : -1;
	w->token_ns = n, w->token_sa = a;
	if (s->secret[0]) {
		if (w->tok_exp[n] < w->clock + TTL)
			w->tok_exp[n] = w->clock + TTL;
		uid_str(w->uid[n], uid, len);
	}
	return KC_OUT_OK;
}

/* Applies one request to the world; returns the outcome the helper would see. */
static enum kc_outcome serve(struct world *w, const struct kc_plan *p, const struct kc_step *s, enum fail f, char *uid,
			     size_t len)
{
	int n = ns_index(s->sa_namespace);
	enum kc_outcome o = KC_OUT_FAILED;

	uid[0] = '\0';
	if (f == FAIL_BEFORE)
		return KC_OUT_FAILED;
	switch (s->kind) {
	case KC_STEP_LEARN_UID:
		if (!w->secret[n])
			o = KC_OUT_GONE;
		else
			o = KC_OUT_OK, uid_str(w->uid[n], uid, len);
		break;
	case KC_STEP_DELETE:
		assert_true(s->secret_uid && *s->secret_uid); /* P5 */
		if (!w->secret[n] || w->uid[n] != uid_num(s->secret_uid))
			o = KC_OUT_GONE;
		else
			w->secret[n] = false, w->tok_exp[n] = 0, o = KC_OUT_OK;
		break;
	case KC_STEP_CREATE:
		if (w->secret[n]) {
			o = KC_OUT_EXISTS;
		} else {
			w->secret[n] = true;
			w->uid[n] = ++w->next_uid;
			w->tok_exp[n] = 0;
			o = KC_OUT_OK, uid_str(w->uid[n], uid, len);
		}
		break;
	case KC_STEP_RECONCILE:
		w->sa[n][p->in.target.sa_name[0] == 'x' ? 0 : 1] = true;
		o = KC_OUT_OK;
		break;
	case KC_STEP_MINT: o = serve_mint(w, p, s, uid, len); break;
	case KC_STEP_DONE: break;
	}
	return f == FAIL_AFTER ? KC_OUT_FAILED : o;
}

/* ---- the cases ------------------------------------------------------------------ */

enum shape { SH_NONE, SH_CURRENT_X, SH_CURRENT_Y, SH_CURRENT_EMPTY, SH_REVOKE, SH_COUNT };
enum drift { DR_AS_RECORDED, DR_DELETED, DR_OTHER_UID, DR_COUNT };
enum ep { EP_SAME, EP_OTHER, EP_UNKNOWN };
enum want { W_NONE, W_AX, W_AY, W_BX, W_COUNT };

/* One namespace's grant file (or none), and its Secret on the server. */
struct file {
	int shape, drift;
	bool known_uid, interrupted;
	int ep; /* current, not interrupted: made under the identity now, another, or not said (older file) */
	bool reminted; /* current with a token, not interrupted */
	bool expired; /* pending or interrupted: every token bound to it expired */
};

struct scenario {
	struct file f[2];
	bool token_file, due, create, reconcile, stray_b, sa_missing, limit_remint;
	enum want want;
	enum kc_rotate rotate;
};

/* The requests of one job and their outcomes as the planner saw them. */
struct trace {
	int n;
	enum kc_step_kind kind[20];
	size_t grant[20];
	enum kc_outcome out[20];
};

static unsigned long runs;

static bool has_token(const struct file *f)
{
	return f->shape == SH_CURRENT_X || f->shape == SH_CURRENT_Y;
}

static void build_bound(const struct scenario *sc, const struct file *f, struct kc_grant *x)
{
	x->lifetime = 900;
	x->minted = sc->due ? NOW - 800 : NOW - 10;
	/* An older helper's file, from when the ttl was longer: its token may
	 * outlive the ones this job mints. */
	if (f->ep == EP_UNKNOWN)
		x->lifetime = 1800, x->minted = sc->due ? NOW - 1500 : NOW - 10;
	if (f->expired) {
		/* Every token past its exp and the leeway: at the boundary as
		 * recorded, or long ago by an older file's last token. */
		x->minted = NOW - KC_TOKEN_LEEWAY_S - 900 - (sc->due ? 0 : 5);
		x->bound_until = sc->due ? NOW - KC_TOKEN_LEEWAY_S : 0;
	} else if (f->shape == SH_REVOKE) {
		/* Not over: one second inside the leeway as recorded, or by an
		 * older file's last token. */
		if (sc->due)
			x->minted = NOW - KC_TOKEN_LEEWAY_S + 1 - 900, x->bound_until = NOW - KC_TOKEN_LEEWAY_S + 1;
	} else if (f->ep != EP_UNKNOWN) {
		x->bound_until = x->minted + x->lifetime; /* a newer file records it */
	}
}

static void build(const struct scenario *sc, struct kc_grant *g, size_t *n, struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->next_uid = 100;
	for (int ns = 0; ns < 2; ns++)
		w->sa[ns][0] = w->sa[ns][1] = !sc->sa_missing;
	*n = 0;
	for (int ns = 0; ns < 2; ns++) {
		const struct file *f = &sc->f[ns];
		struct kc_grant *x;

		if (f->shape == SH_NONE) {
			if (ns == 1 && sc->stray_b)
				w->secret[1] = true, w->uid[1] = 77;
			continue;
		}
		x = &g[(*n)++];
		memset(x, 0, sizeof(*x));
		strcpy(x->cluster, "c");
		strcpy(x->sa_namespace, ns ? "B" : "A");
		strcpy(x->secret, SECRET);
		x->state = f->shape == SH_REVOKE ? KC_GRANT_REVOKE : KC_GRANT_CURRENT;
		if (f->shape == SH_REVOKE)
			x->since = NOW - 3600;
		if (has_token(f))
			strcpy(x->sa_name, f->shape == SH_CURRENT_X ? "x" : "y");
		x->interrupted = f->interrupted;
		x->reminted = f->reminted;
		if (f->shape != SH_REVOKE && f->ep != EP_UNKNOWN)
			strcpy(x->endpoint, f->ep == EP_SAME ? ENDPOINT : OLD_ENDPOINT);
		build_bound(sc, f, x);
		w->uid[ns] = 10 + ns;
		w->secret[ns] = f->drift != DR_DELETED;
		if (f->drift == DR_OTHER_UID)
			w->uid[ns] = 50 + ns;
		if (f->known_uid)
			uid_str(10 + ns, x->secret_uid, sizeof(x->secret_uid));
		/* The tokens the file's Secret may have, if ours: as late as it says. */
		if (w->secret[ns] && (!f->known_uid || f->interrupted || f->drift == DR_AS_RECORDED))
			w->tok_exp[ns] = x->bound_until ? x->bound_until : x->minted + x->lifetime;
	}
}

static const struct kc_grant *final_file(const struct kc_commit *c, const struct kc_grant *old, size_t n, int ns)
{
	const char *name = ns ? "B" : "A";

	for (size_t i = 0; i < c->n_put; i++)
		if (strcmp(c->put[i].sa_namespace, name) == 0)
			return &c->put[i];
	for (size_t i = 0; i < c->n_drop; i++)
		if (strcmp(c->drop[i].sa_namespace, name) == 0)
			return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(old[i].sa_namespace, name) == 0)
			return &old[i];
	return NULL;
}

/* The case being run, told when a check fails. */
static struct {
	const struct scenario *sc;
	int fail_at;
	enum fail kind;
	const struct trace *tr;
} running;

static void describe(const char *what)
{
	static const char *const shape[] = { "none", "current x", "current y", "current empty", "revoke" };
	static const char *const drift[] = { "as recorded", "deleted", "other uid" };
	static const char *const ep[] = { "same", "other", "unknown" };
	static const char *const want[] = { "nothing", "A/x", "A/y", "B/x" };
	static const char *const kind[] = { "done", "learn-uid", "delete", "create", "reconcile", "mint" };
	const struct scenario *sc = running.sc;

	print_error("check failed: %s\n", what);
	for (int ns = 0; ns < 2; ns++) {
		const struct file *f = &sc->f[ns];

		if (f->shape == SH_NONE) {
			print_error("  file %c: none\n", ns ? 'B' : 'A');
			continue;
		}
		print_error("  file %c: %s, %s, uid %s, endpoint %s%s%s\n", ns ? 'B' : 'A', shape[f->shape],
			    drift[f->drift],
			    f->interrupted ? "interrupted"
			    : f->known_uid ? "known"
					   : "unknown",
			    ep[f->ep], f->reminted ? ", reminted" : "", f->expired ? ", expired" : "");
	}
	print_error("  want %s; token file %d, due %d, create %d, rotate now %d, no account %d, stray in B %d, "
		    "limit_remint %d\n",
		    want[sc->want], sc->token_file, sc->due, sc->create, sc->rotate == KC_ROTATE_NOW, sc->sa_missing,
		    sc->stray_b, sc->limit_remint);
	print_error("  failure at request %d (%s)\n", running.fail_at,
		    running.kind == FAIL_BEFORE	 ? "before"
		    : running.kind == FAIL_AFTER ? "after"
						 : "none");
	for (int k = 0; k < running.tr->n; k++)
		print_error("  request %d: %s (grant %zu) -> %d\n", k, kind[running.tr->kind[k]], running.tr->grant[k],
			    (int)running.tr->out[k]);
}

#define expect(cond)                                           \
	do {                                                   \
		if (!(cond)) {                                 \
			describe(#cond);                       \
			fail_msg("%s:%d", __FILE__, __LINE__); \
		}                                              \
	} while (0)

/* One job, as the checks see it. */
struct job {
	const struct scenario *sc;
	const struct kc_plan *p;
	const struct kc_commit *c;
	const struct world *w;
	const struct kc_grant *old;
	size_t n_old;
	const struct trace *tr;
	bool failed; /* a request failed, or minting fails by nature (no account, none made) */
	int tn; /* the wanted namespace, -1: nothing wanted */
	const struct kc_grant *f[2]; /* each namespace's file after the job */
	bool ours[2]; /* each namespace's Secret is ours by the protocol */
	bool forget_ok[2]; /* ... and may go unrecorded: a revocation ended, its tokens expired (P7) */
};

static bool dropped_expired(const struct kc_commit *c, int ns)
{
	for (size_t i = 0; i < c->n_drop; i++)
		if (ns_index(c->drop[i].sa_namespace) == ns && c->drop_expired[i])
			return true;
	return false;
}

static bool sent(const struct trace *tr, enum kc_step_kind kind)
{
	for (int k = 0; k < tr->n; k++)
		if (tr->kind[k] == kind)
			return true;
	return false;
}

static void check_core(struct job *j)
{
	const struct kc_plan_target *t = &j->p->in.target;
	const struct kc_commit *c = j->c;
	const struct world *w = j->w;
	int current = 0;

	for (int ns = 0; ns < 2; ns++) {
		const struct file *fl = &j->sc->f[ns];
		/* Ours by the protocol: made in this job, or the incarnation a file names. */
		bool made_here = w->secret[ns] && w->uid[ns] > 100;
		bool recorded = w->secret[ns] && w->uid[ns] <= 100 && fl->shape != SH_NONE &&
				(!fl->known_uid || fl->interrupted || fl->drift == DR_AS_RECORDED);

		j->ours[ns] = made_here || recorded;
		j->forget_ok[ns] = recorded && dropped_expired(c, ns) && expired_by(w->tok_exp[ns], NOW);
		j->f[ns] = final_file(c, j->old, j->n_old, ns);
		/* P1, no orphan: every Secret of ours stays recorded until it is gone,
		 * or (P7) until every token bound to it has expired. */
		if (j->ours[ns] && !j->forget_ok[ns])
			expect(j->f[ns]);
		if (!j->f[ns])
			continue;
		if (j->f[ns]->state == KC_GRANT_CURRENT) {
			current++;
			/* P2 and P4: the one current grant is the wanted one. */
			expect(t->wanted);
			expect(ns == j->tn);
			expect(!j->f[ns]->sa_name[0] || strcmp(j->f[ns]->sa_name, t->sa_name) == 0);
		}
	}
	expect(current <= 1);
	/* P6, and P3/I2 in the model: a token file names a live grant of the wanted account. */
	if (c->token == KC_TOKEN_WRITE) {
		int ns = j->tn;

		expect(t->wanted && j->f[ns] && j->f[ns]->state == KC_GRANT_CURRENT && j->f[ns]->sa_name[0]);
		expect(w->token_uid == -1 || (w->secret[ns] && w->token_uid == w->uid[ns]));
		expect(w->token_ns == ns);
	}
	if (c->token == KC_TOKEN_KEEP)
		expect(t->wanted && j->p->keep >= 0 && j->f[j->tn]->sa_name[0]);
	if (!t->wanted)
		expect(c->token != KC_TOKEN_WRITE);
	expect(c->written == (c->token == KC_TOKEN_WRITE || (c->token == KC_TOKEN_KEEP && j->sc->token_file)));
	/* I1 in the model: nothing wanted and nothing failed -> nothing of ours is
	 * left but Secrets no live token is bound to. */
	if (!t->wanted && !j->failed) {
		expect(!j->ours[0] || j->forget_ok[0]);
		expect(!j->ours[1] || j->forget_ok[1]);
		expect(!j->f[0] && !j->f[1]);
		expect(c->token == KC_TOKEN_REMOVE);
	}
	/* Wanted and nothing failed -> a token of the wanted account is in the file. */
	if (t->wanted && !j->failed)
		expect(c->token == KC_TOKEN_WRITE || c->token == KC_TOKEN_KEEP);
}

/* Was old grant i confirmed gone by an answer of this job? */
static bool confirmed_gone(const struct job *j, size_t i)
{
	const struct trace *tr = j->tr;
	bool created = false;

	if (!j->old[i].secret[0])
		return true; /* bound to no Secret: nothing to confirm */
	for (int k = 0; k < tr->n; k++) {
		bool revocation = tr->kind[k] == KC_STEP_LEARN_UID || tr->kind[k] == KC_STEP_DELETE;

		if (revocation && tr->grant[k] == i &&
		    (tr->out[k] == KC_OUT_GONE || (tr->kind[k] == KC_STEP_DELETE && tr->out[k] == KC_OUT_OK)))
			return true;
		/* The kept grant's TokenRequest: its Secret is not there (404) or
		 * is another incarnation (409). */
		if (tr->kind[k] == KC_STEP_MINT && tr->out[k] == KC_OUT_SECRET_MISSING && !created &&
		    ns_index(j->old[i].sa_namespace) == j->tn)
			return true;
		created |= tr->kind[k] == KC_STEP_CREATE && tr->out[k] == KC_OUT_OK;
	}
	return false;
}

static bool asked_about(const struct trace *tr, size_t i)
{
	for (int k = 0; k < tr->n; k++)
		if ((tr->kind[k] == KC_STEP_LEARN_UID || tr->kind[k] == KC_STEP_DELETE) && tr->grant[k] == i)
			return true;
	return false;
}

/* P7: a file goes without a request only for a pending revocation past its
 * bound (and always then); any other only with its Secret confirmed gone. */
static void check_ended(const struct job *j)
{
	const struct kc_commit *c = j->c;

	for (size_t i = 0; i < j->n_old; i++) {
		const struct kc_grant *g = &j->old[i];
		int ns = ns_index(g->sa_namespace);
		bool over = g->state == KC_GRANT_REVOKE && j->sc->f[ns].expired;
		bool dropped = false, as_expired = false;

		for (size_t d = 0; d < c->n_drop; d++)
			if (ns_index(c->drop[d].sa_namespace) == ns)
				dropped = true, as_expired = c->drop_expired[d];
		expect(as_expired == over);
		if (over) {
			expect(dropped);
			expect(!asked_about(j->tr, i));
			expect(kc_plan_bound_until(g) + KC_TOKEN_LEEWAY_S <= NOW);
		} else if (dropped) {
			expect(confirmed_gone(j, i));
		}
	}
}

/* P8: no grant made under another identity of the cluster is kept. */
static void check_endpoint(const struct job *j)
{
	const struct kc_commit *c = j->c;
	const struct world *w = j->w;
	const struct file *fl = j->tn >= 0 ? &j->sc->f[j->tn] : NULL;

	for (int ns = 0; ns < 2; ns++) {
		const struct kc_grant *f = j->f[ns];

		if (!f || f->state != KC_GRANT_CURRENT)
			continue;
		expect(strcmp(f->endpoint, OLD_ENDPOINT) != 0);
		/* a grant made in this job records the identity it was made under */
		if (uid_num(f->secret_uid) > 100 || (c->minted && ns == j->tn))
			expect(strcmp(f->endpoint, ENDPOINT) == 0);
	}
	if (c->token == KC_TOKEN_KEEP)
		expect(fl->ep != EP_OTHER);
	if (!fl || fl->shape == SH_NONE || fl->shape == SH_REVOKE || fl->interrupted || fl->ep != EP_OTHER || j->failed)
		return;
	/* Made anew in the same job: a new Secret, a token bound to it. */
	expect(c->minted && c->token == KC_TOKEN_WRITE);
	expect(w->secret[j->tn] && w->uid[j->tn] > 100 && w->token_uid == w->uid[j->tn]);
	expect(uid_num(j->f[j->tn]->secret_uid) == w->uid[j->tn]);
}

/* The remint limit: a fresh grant's broken token file is re-minted once per
 * rotation period with limit_remint; a due rotation clears the mark. */
static void check_remint(const struct job *j)
{
	const struct scenario *sc = j->sc;
	const struct kc_commit *c = j->c;
	const struct file *fl, *other;
	const struct kc_grant *f;
	bool keepable, fresh, broken, held;

	if (j->tn < 0)
		return;
	fl = &sc->f[j->tn];
	other = &sc->f[1 - j->tn];
	f = j->f[j->tn];
	keepable = has_token(fl) && (fl->shape == SH_CURRENT_Y) == (sc->want == W_AY) && !fl->interrupted &&
		   fl->ep != EP_OTHER;
	fresh = !sc->due && sc->rotate == KC_ROTATE_DUE;
	broken = keepable && fresh && !sc->token_file;
	held = broken && fl->reminted && sc->limit_remint;
	if (keepable && fresh && sc->token_file)
		expect(!sent(j->tr, KC_STEP_MINT)); /* a fresh token costs nothing */
	if (held) {
		/* The user's broken file stays theirs until the token is due. */
		expect(!sent(j->tr, KC_STEP_MINT));
		expect(c->token == KC_TOKEN_KEEP);
		expect(!(c->written || c->minted));
		if (!has_token(other))
			expect(!c->cut);
		expect(f && f->state == KC_GRANT_CURRENT && f->reminted);
		expect(f->minted == NOW - 10);
	} else if (broken && !j->failed) {
		expect(c->minted && f->reminted);
	}
	if (c->minted && !fresh)
		expect(!f->reminted); /* a due rotation clears it */
}

/* bound_until: no file naming a Secret says its tokens expired sooner than
 * the server's last token bound to it does. */
static void check_bound(const struct job *j)
{
	const struct world *w = j->w;

	for (int ns = 0; ns < 2; ns++) {
		const struct kc_grant *f = j->f[ns];

		if (!f || !w->secret[ns] || !w->tok_exp[ns])
			continue;
		if (f->secret_uid[0] && uid_num(f->secret_uid) != w->uid[ns])
			continue; /* it names another incarnation */
		expect(kc_plan_bound_until(f) >= w->tok_exp[ns]);
		/* a token minted in this job (the answer lost or not) is recorded as such */
		if (w->token_uid == w->uid[ns] && w->token_ns == ns)
			expect(f->bound_until >= w->tok_exp[ns]);
	}
}

static void check(struct job *j)
{
	check_core(j);
	check_ended(j);
	check_endpoint(j);
	check_remint(j);
	check_bound(j);
}

static void fill_input(const struct scenario *sc, struct kc_plan_input *in)
{
	in->token_file = sc->token_file;
	in->rotate = sc->rotate;
	in->limit_remint = sc->limit_remint;
	strcpy(in->target.endpoint, ENDPOINT);
	if (sc->want == W_NONE)
		return;
	in->target.wanted = true;
	strcpy(in->target.sa_namespace, sc->want == W_BX ? "B" : "A");
	strcpy(in->target.sa_name, sc->want == W_AY ? "y" : "x");
	strcpy(in->target.secret, SECRET);
	in->target.create = sc->create;
	in->target.reconcile = sc->create && sc->reconcile;
}

/* P7 from the start: exactly the pending revocations past their bound end. */
static void check_start(const struct scenario *sc, const struct kc_plan *p, const struct kc_grant *old, size_t n_old)
{
	for (size_t i = 0; i < n_old; i++) {
		bool over = old[i].state == KC_GRANT_REVOKE && sc->f[ns_index(old[i].sa_namespace)].expired;

		expect(p->expired[i] == over);
		if (over)
			expect(p->revoked[i] && p->fate[i] == KC_FATE_REVOKE);
	}
}

/* Runs one job; its requests go to tr. Returns how many it sent. */
static int run_case(const struct scenario *sc, int fail_at, enum fail kind, struct trace *tr)
{
	struct kc_grant old[2];
	size_t n_old;
	struct world w;
	struct kc_plan_input in = { .cluster = "c", .refresh_before = 20, .ttl = TTL, .now = NOW };
	struct kc_plan p;
	struct kc_commit c;
	struct job j = { .sc = sc, .p = &p, .c = &c, .w = &w, .old = old, .tr = tr };
	bool early_cut;

	build(sc, old, &n_old, &w);
	in.grants = old;
	in.n_grants = j.n_old = n_old;
	fill_input(sc, &in);
	running.sc = sc, running.fail_at = fail_at, running.kind = kind, running.tr = tr;
	tr->n = 0;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	check_start(sc, &p, old, n_old);
	early_cut = kc_plan_will_cut(&p);
	for (;;) {
		struct kc_step s = kc_plan_next(&p);
		char uid[64];
		enum kc_outcome o;

		if (s.kind == KC_STEP_DONE)
			break;
		assert_true(tr->n < 20); /* it ends */
		w.clock = NOW + tr->n;
		o = serve(&w, &p, &s, tr->n == fail_at ? kind : FAIL_NONE, uid, sizeof(uid));
		j.failed |= tr->n == fail_at;
		kc_plan_record(&p, &s, o, uid);
		if (s.kind == KC_STEP_MINT && o == KC_OUT_OK)
			kc_plan_minted(&p, w.clock, TTL, "jti");
		tr->kind[tr->n] = s.kind, tr->grant[tr->n] = s.grant, tr->out[tr->n] = o;
		tr->n++;
	}
	kc_plan_commit(&p, &c, j.failed ? "a request failed" : NULL, NOW + tr->n);
	/* A logout's cut goes beside its requests: what the start said is what
	 * the commit does, whatever the requests answered. */
	expect(in.target.wanted ? !early_cut : early_cut == c.cut);
	/* Without SA (and no create) minting fails by nature: a failure like any other. */
	j.failed |= sc->sa_missing && !sc->create && sc->want != W_NONE;
	j.tn = sc->want == W_NONE ? -1 : sc->want == W_BX ? 1 : 0;
	check(&j);
	runs++;
	return tr->n;
}

/* Every failure point of one scenario: none, then each request it sends (the
 * requests before a failure are the same as without one), before the server
 * acted and after (a dry run changes nothing: once). */
static void run_all_failures(const struct scenario *sc)
{
	struct trace tr, scratch;
	int steps = run_case(sc, -1, FAIL_NONE, &tr);

	for (int k = 0; k < steps; k++) {
		run_case(sc, k, FAIL_BEFORE, &scratch);
		if (tr.kind[k] != KC_STEP_LEARN_UID)
			run_case(sc, k, FAIL_AFTER, &scratch);
	}
}

/* Per namespace: no file, or a file of every shape, uid known, unknown, or
 * interrupted (its uid then proves nothing: known or not is the same), and the
 * server as recorded or drifted; with each variant of the file's identity,
 * remint mark and bound. */
static struct file options[128];
static size_t n_options;

static void add_variants(struct file f)
{
	static const struct {
		int ep;
		bool reminted;
	} with_token[] = {
		{ EP_SAME, false }, { EP_SAME, true }, { EP_OTHER, false }, { EP_OTHER, true }, { EP_UNKNOWN, false }
	};

	if (f.shape == SH_REVOKE || f.interrupted) {
		for (int e = 0; e < 2; e++)
			f.expired = e, options[n_options++] = f;
	} else if (f.shape == SH_CURRENT_EMPTY) {
		for (int e = EP_SAME; e <= EP_UNKNOWN; e++)
			f.ep = e, options[n_options++] = f;
	} else {
		for (size_t v = 0; v < sizeof(with_token) / sizeof(with_token[0]); v++) {
			f.ep = with_token[v].ep;
			f.reminted = with_token[v].reminted;
			options[n_options++] = f;
		}
	}
}

static void make_options(void)
{
	n_options = 0;
	options[n_options++] = (struct file){ .shape = SH_NONE };
	for (int shape = SH_CURRENT_X; shape < SH_COUNT; shape++)
		for (int drift = 0; drift < DR_COUNT; drift++)
			for (int uid = 0; uid < 3; uid++)
				add_variants((struct file){ .shape = shape,
							    .drift = drift,
							    .known_uid = uid == 1,
							    .interrupted = uid == 2 });
	assert_true(n_options <= sizeof(options) / sizeof(options[0]));
}

static bool plain(const struct file *f)
{
	return f->ep == EP_SAME && !f->reminted && !f->expired;
}

/* Both files vary in the new dimensions only where both are about expiry;
 * otherwise one of them is plain (the pairs that matter: one grant under
 * another identity or re-minted, beside every other file). */
static bool paired(const struct file *a, const struct file *b)
{
	return plain(a) || plain(b) || (a->ep == EP_SAME && b->ep == EP_SAME && !a->reminted && !b->reminted);
}

static void run_scenarios(struct scenario *sc)
{
	bool reminted = sc->f[0].reminted || sc->f[1].reminted, limit;

	for (sc->want = 0; sc->want < W_COUNT; sc->want++)
		for (int more = 0; more < 128; more++) {
			sc->token_file = more & 1;
			sc->due = more >> 1 & 1;
			sc->create = more >> 2 & 1;
			sc->rotate = (more >> 3 & 1) ? KC_ROTATE_NOW : KC_ROTATE_DUE;
			sc->sa_missing = more >> 4 & 1;
			sc->stray_b = more >> 5 & 1;
			/* The limit is for a marked fresh grant's broken token
			 * file; elsewhere it changes nothing: both values all
			 * the same, alternately. */
			limit = reminted && !sc->token_file && !sc->due && sc->rotate == KC_ROTATE_DUE;
			sc->limit_remint = limit ? more >> 6 & 1 : (more ^ more >> 2) & 1;
			if (!limit && more >> 6)
				continue;
			if (sc->stray_b && sc->f[1].shape != SH_NONE)
				continue;
			if (sc->rotate == KC_ROTATE_NOW && sc->due)
				continue; /* the same as due */
			sc->reconcile = sc->create;
			run_all_failures(sc);
		}
}

static void test_every_small_state(void **state)
{
	struct scenario sc;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	make_options();
	for (size_t a = 0; a < n_options; a++)
		for (size_t b = 0; b < n_options; b++) {
			if (!paired(&options[a], &options[b]))
				continue;
			sc.f[0] = options[a];
			sc.f[1] = options[b];
			run_scenarios(&sc);
		}
	printf("planner: %lu runs over every small state\n", runs);
}

/* ---- single cases ---------------------------------------------------------------- */

static struct kc_grant grant_ax(void)
{
	struct kc_grant g = { .cluster = "c",
			      .sa_namespace = "A",
			      .secret = SECRET,
			      .secret_uid = "u10",
			      .state = KC_GRANT_CURRENT,
			      .sa_name = "x",
			      .minted = NOW - 10,
			      .lifetime = 900,
			      .bound_until = NOW + 890,
			      .endpoint = ENDPOINT };

	return g;
}

static void want_ax(struct kc_plan_input *in, const struct kc_grant *g)
{
	memset(in, 0, sizeof(*in));
	in->cluster = "c";
	in->grants = g;
	in->n_grants = 1;
	in->token_file = true;
	in->refresh_before = 20;
	in->ttl = TTL;
	in->now = NOW;
	in->target.wanted = true;
	snprintf(in->target.sa_namespace, sizeof(in->target.sa_namespace), "A");
	snprintf(in->target.sa_name, sizeof(in->target.sa_name), "x");
	snprintf(in->target.secret, sizeof(in->target.secret), SECRET);
	snprintf(in->target.endpoint, sizeof(in->target.endpoint), ENDPOINT);
}

/* The remap of issue 11: same namespace, another account; nothing fails. */
static void test_remap_in_namespace(void **state)
{
	struct kc_grant g = grant_ax();
	struct kc_plan_input in;
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	want_ax(&in, &g);
	snprintf(in.target.sa_name, sizeof(in.target.sa_name), "y");
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_DELETE);
	assert_string_equal(s.secret_uid, "u10");
	kc_plan_record(&p, &s, KC_OUT_OK, "");
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_CREATE);
	kc_plan_record(&p, &s, KC_OUT_OK, "u11");
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_MINT);
	assert_string_equal(s.secret_uid, "u11");
	kc_plan_record(&p, &s, KC_OUT_OK, "u11");
	kc_plan_minted(&p, NOW, 900, "j");
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.token, KC_TOKEN_WRITE);
	assert_true(c.remap && c.cut);
	assert_int_equal(c.n_put, 1);
	assert_string_equal(c.put[0].sa_name, "y");
	assert_string_equal(c.put[0].secret_uid, "u11");
}

/* Nothing due: no request at all. */
static void test_fresh_token_costs_nothing(void **state)
{
	struct kc_grant g = grant_ax();
	struct kc_plan_input in;
	struct kc_plan p;

	(void)state;
	want_ax(&in, &g);
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	/* 80 % of its life gone: due. */
	g.minted = NOW - 720;
	assert_true(kc_plan_due(&g, 20, NOW));
	g.minted = NOW - 719;
	assert_false(kc_plan_due(&g, 20, NOW));
}

/* kc_plan_bound_until: recorded, else the last token's, else since + two days. */
static void test_bound_until(void **state)
{
	struct kc_grant g = { .state = KC_GRANT_REVOKE, .since = NOW - 100 };

	(void)state;
	assert_int_equal(kc_plan_bound_until(&g), NOW - 100 + KC_BOUND_UNKNOWN_S);
	g.minted = NOW - 50, g.lifetime = 900;
	assert_int_equal(kc_plan_bound_until(&g), NOW + 850);
	g.bound_until = NOW + 2000;
	assert_int_equal(kc_plan_bound_until(&g), NOW + 2000);
	memset(&g, 0, sizeof(g));
	assert_int_equal(kc_plan_bound_until(&g), 0); /* never known: never over */
}

/* P7: a pending revocation past its bound ends with no request, at the
 * second the leeway is over; a current grant never does. */
static void test_pending_revocation_ends(void **state)
{
	struct kc_grant g = { .cluster = "c",
			      .sa_namespace = "A",
			      .secret = SECRET,
			      .secret_uid = "u10",
			      .state = KC_GRANT_REVOKE,
			      .since = NOW - 5000,
			      .bound_until = NOW - KC_TOKEN_LEEWAY_S };
	struct kc_plan_input in = { .cluster = "c", .grants = &g, .n_grants = 1, .ttl = TTL, .now = NOW };
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.n_drop, 1);
	assert_true(c.drop_expired[0]);
	assert_int_equal(c.n_put, 0);
	g.bound_until++;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_DELETE);
	kc_plan_record(&p, &s, KC_OUT_FAILED, "");
	kc_plan_commit(&p, &c, "refused", NOW);
	assert_int_equal(c.n_drop, 0);
	assert_int_equal(c.n_put, 1);
	assert_int_equal(c.put[0].bound_until, NOW - KC_TOKEN_LEEWAY_S + 1);
	/* an older file: two days after the revocation began */
	g.bound_until = 0, g.since = NOW - KC_BOUND_UNKNOWN_S - KC_TOKEN_LEEWAY_S;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	/* current, long expired: its DELETE is tried all the same */
	g = grant_ax();
	g.minted = NOW - 10000, g.bound_until = NOW - 9100;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DELETE);
}

/* A create whose answer was lost (the grant marked "being made", no uid) may
 * land after a logout's 404: within KC_CREATE_MAY_LAND_S the revocation stays
 * pending and is asked again; past it, a 404 is the end. A wanted grant in
 * the same slot goes on at once (schedule seed 608659076: a Secret created
 * after the logout's dry run said it was not there, left behind). */
static void test_create_may_land_after_a_404(void **state)
{
	struct kc_grant g = { .cluster = "c",
			      .sa_namespace = "A",
			      .secret = SECRET,
			      .state = KC_GRANT_REVOKE,
			      .since = NOW - 2,
			      .bound_until = NOW + TTL };
	struct kc_plan_input in = { .cluster = "c", .grants = &g, .n_grants = 1, .ttl = TTL, .now = NOW };
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_LEARN_UID);
	kc_plan_record(&p, &s, KC_OUT_GONE, "");
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.n_drop, 0);
	assert_int_equal(c.n_put, 1);
	assert_int_equal(c.put[0].state, KC_GRANT_REVOKE);
	/* Long enough after: the 404 ends it. */
	g.since = NOW - KC_CREATE_MAY_LAND_S;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	kc_plan_record(&p, &s, KC_OUT_GONE, "");
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.n_drop, 1);
	assert_int_equal(c.n_put, 0);
}

/* A job killed after it sent a create for a slot whose file named another
 * Secret (a recreate: the old one deleted, its uid still in the file, marked
 * interrupted with the time it was marked): the create may land after the
 * next logout's 404 as well. Within KC_CREATE_MAY_LAND_S of the marking the
 * revocation stays pending, whatever the file's state and uid; past it, a 404
 * is the end (schedule seed 4402677: a Secret left after the last logout). */
static void test_create_may_land_after_an_interrupted_recreate(void **state)
{
	struct kc_grant g = grant_ax();
	struct kc_plan_input in = { .cluster = "c", .grants = &g, .n_grants = 1, .ttl = TTL, .now = NOW };
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	g.interrupted = true;
	g.creating = NOW - 2;
	/* The file's state, and what the server answers: 404, or the Secret there
	 * (the one before the create) and deleted. */
	for (int k = 0; k < 4; k++) {
		g.state = k & 1 ? KC_GRANT_REVOKE : KC_GRANT_CURRENT;
		g.since = k & 1 ? NOW - 3600 : 0;
		assert_int_equal(kc_plan_start(&p, &in), 0);
		while ((s = kc_plan_next(&p)).kind != KC_STEP_DONE)
			kc_plan_record(&p, &s, k & 2 ? KC_OUT_OK : KC_OUT_GONE,
				       s.kind == KC_STEP_LEARN_UID ? "u11" : "");
		kc_plan_commit(&p, &c, NULL, NOW);
		assert_int_equal(c.n_drop, 0);
		assert_int_equal(c.n_put, 1);
		assert_int_equal(c.put[0].state, KC_GRANT_REVOKE);
		/* the next job still knows when the create may have been sent, and
		 * deletes by name: what lands late has a uid no one knows */
		assert_int_equal(c.put[0].creating, NOW - 2);
		assert_string_equal(c.put[0].secret_uid, "");
	}
	/* Long enough after: the 404 ends it. */
	g.creating = NOW - KC_CREATE_MAY_LAND_S;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	kc_plan_record(&p, &s, KC_OUT_GONE, "");
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.n_drop, 1);
	assert_int_equal(c.n_put, 0);
}

/* A job's own create whose answer it lost (a proxy held it past the
 * request's timeout) may land later, as a dead job's may: the grant it
 * writes carries the time, so a later revocation that deletes an earlier
 * Secret by that name keeps it pending for KC_CREATE_MAY_LAND_S, and the
 * late create is deleted by the next (schedule seed 747825191: a Secret
 * left after the last logout and a gc). */
static void test_create_may_land_after_a_lost_create(void **state)
{
	struct kc_grant none = { 0 };
	struct kc_plan_input in;
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;
	struct kc_grant g;

	(void)state;
	want_ax(&in, &none);
	in.n_grants = 0; /* a first login */
	assert_int_equal(kc_plan_start(&p, &in), 0);
	while ((s = kc_plan_next(&p)).kind != KC_STEP_DONE) {
		assert_int_equal(s.kind, KC_STEP_CREATE);
		kc_plan_record(&p, &s, KC_OUT_FAILED, "");
	}
	kc_plan_commit(&p, &c, "timed out", NOW + 1);
	assert_int_equal(c.n_put, 1);
	assert_int_equal(c.put[0].state, KC_GRANT_REVOKE);
	assert_int_equal(c.put[0].creating, NOW + 1);

	/* The logout: a Secret by that name is there (an earlier create of the
	 * same name, landed) and is deleted; the create may still land. */
	g = c.put[0];
	in = (struct kc_plan_input){ .cluster = "c", .grants = &g, .n_grants = 1, .ttl = TTL, .now = NOW + 5 };
	assert_int_equal(kc_plan_start(&p, &in), 0);
	while ((s = kc_plan_next(&p)).kind != KC_STEP_DONE)
		kc_plan_record(&p, &s, KC_OUT_OK, s.kind == KC_STEP_LEARN_UID ? "u12" : "");
	kc_plan_commit(&p, &c, NULL, NOW + 5);
	assert_int_equal(c.n_drop, 0);
	assert_int_equal(c.n_put, 1);
	assert_int_equal(c.put[0].state, KC_GRANT_REVOKE);
	assert_int_equal(c.put[0].creating, NOW + 1);
}

/* The remint limit: once per period at refresh, at every login. */
static void test_remint_once_per_period(void **state)
{
	struct kc_grant g = grant_ax(), g2;
	struct kc_plan_input in;
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	want_ax(&in, &g);
	in.token_file = false;
	in.limit_remint = true;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_MINT);
	kc_plan_record(&p, &s, KC_OUT_OK, "u10");
	kc_plan_minted(&p, NOW, 900, "j");
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.token, KC_TOKEN_WRITE);
	assert_true(c.put[0].reminted);
	assert_int_equal(c.put[0].bound_until, NOW + 900);
	/* broken again: left as it is */
	g2 = c.put[0];
	in.grants = &g2;
	in.now = NOW + 60;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	kc_plan_commit(&p, &c, NULL, NOW + 60);
	assert_int_equal(c.token, KC_TOKEN_KEEP);
	assert_false(c.written || c.cut || c.minted);
	assert_true(c.n_put == 1 && c.put[0].reminted);
	/* a login re-mints */
	in.limit_remint = false;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_MINT);
	/* a due rotation clears the mark */
	in.limit_remint = true;
	in.now = NOW + 720;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_MINT);
	kc_plan_record(&p, &s, KC_OUT_OK, "u10");
	kc_plan_minted(&p, NOW + 720, 900, "j2");
	kc_plan_commit(&p, &c, NULL, NOW + 720);
	assert_false(c.put[0].reminted);
	assert_int_equal(c.put[0].bound_until, NOW + 720 + 900);
}

/* P8: the cluster's identity changed; an older file's is taken as matching. */
static void test_endpoint_changed(void **state)
{
	struct kc_grant g = grant_ax();
	struct kc_plan_input in;
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	want_ax(&in, &g);
	snprintf(g.endpoint, sizeof(g.endpoint), OLD_ENDPOINT);
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_DELETE);
	kc_plan_record(&p, &s, KC_OUT_OK, "");
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_CREATE);
	kc_plan_record(&p, &s, KC_OUT_OK, "u11");
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_MINT);
	kc_plan_record(&p, &s, KC_OUT_OK, "u11");
	kc_plan_minted(&p, NOW, 900, "j");
	kc_plan_commit(&p, &c, NULL, NOW);
	assert_int_equal(c.token, KC_TOKEN_WRITE);
	assert_true(c.cut && !c.remap);
	assert_int_equal(c.n_put, 1);
	assert_string_equal(c.put[0].endpoint, ENDPOINT);
	assert_string_equal(c.put[0].secret_uid, "u11");
	g.endpoint[0] = '\0';
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
}

/* A TokenRequest whose answer was lost may have made a token as long as it
 * asked, sent at the latest when the job commits. */
static void test_lost_mint_answer(void **state)
{
	struct kc_grant g = grant_ax();
	struct kc_plan_input in;
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	want_ax(&in, &g);
	g.minted = NOW - 800, g.bound_until = NOW + 100;
	assert_int_equal(kc_plan_start(&p, &in), 0);
	s = kc_plan_next(&p);
	assert_int_equal(s.kind, KC_STEP_MINT);
	kc_plan_record(&p, &s, KC_OUT_FAILED, "");
	/* sent after the plan began, before the commit */
	kc_plan_commit(&p, &c, "timed out", NOW + 20);
	assert_int_equal(c.n_put, 1);
	assert_int_equal(c.put[0].bound_until, NOW + 20 + TTL);
	assert_int_equal(c.put[0].minted, NOW - 800);
	assert_int_equal(c.token, KC_TOKEN_KEEP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remap_in_namespace),
		cmocka_unit_test(test_fresh_token_costs_nothing),
		cmocka_unit_test(test_bound_until),
		cmocka_unit_test(test_pending_revocation_ends),
		cmocka_unit_test(test_create_may_land_after_a_404),
		cmocka_unit_test(test_create_may_land_after_an_interrupted_recreate),
		cmocka_unit_test(test_create_may_land_after_a_lost_create),
		cmocka_unit_test(test_remint_once_per_period),
		cmocka_unit_test(test_endpoint_changed),
		cmocka_unit_test(test_lost_mint_answer),
		cmocka_unit_test(test_every_small_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

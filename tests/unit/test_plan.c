/* The planner over every small state: up to two grant files on a cluster (every
 * state, known or unknown uid, interrupted or not), the token file there or not,
 * fresh or due, each mapping change (nothing wanted, the same account, another
 * account in the same namespace, another namespace; create or not), rotation
 * due or now, a server whose Secrets are as recorded, deleted behind our back,
 * re-created with another uid, or with a stray; and a failure of each request in
 * turn, before the server acted or after (the answer lost). A model API server
 * answers; the invariants of lifecycle/plan.h are checked against it, not against the
 * planner's own view. */
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

/* ---- the model API server: one Secret per namespace (A, B), two accounts ---- */

struct world {
	bool secret[2]; /* in namespace A, B */
	int uid[2];
	bool sa[2][2]; /* namespace, account X/Y */
	int next_uid;
	int token_uid; /* the uid the last minted token is bound to, 0: none */
	int token_ns, token_sa;
};

static int ns_index(const char *ns)
{
	return ns[0] == 'A' || ns[0] == 'a' ? 0 : 1;
}

static int uid_num(const char *s)
{
	return s && *s ? atoi(s + 1) : 0; /* "u7" -> 7 */
}

static void uid_str(int n, char *out, size_t len)
{
	snprintf(out, len, "u%d", n);
}

enum fail { FAIL_NONE, FAIL_BEFORE, FAIL_AFTER };

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
			w->secret[n] = false, o = KC_OUT_OK;
		break;
	case KC_STEP_CREATE:
		if (w->secret[n]) {
			o = KC_OUT_EXISTS;
		} else {
			w->secret[n] = true;
			w->uid[n] = ++w->next_uid;
			o = KC_OUT_OK, uid_str(w->uid[n], uid, len);
		}
		break;
	case KC_STEP_RECONCILE:
		w->sa[n][p->in.target.sa_name[0] == 'x' ? 0 : 1] = true;
		o = KC_OUT_OK;
		break;
	case KC_STEP_MINT: {
		int a = p->in.target.sa_name[0] == 'x' ? 0 : 1;

		if (!w->sa[n][a]) {
			o = KC_OUT_SA_MISSING;
		} else if (s->secret[0] && (!w->secret[n] || (*s->secret_uid && w->uid[n] != uid_num(s->secret_uid)))) {
			o = KC_OUT_SECRET_MISSING;
		} else {
			w->token_uid = s->secret[0] ? w->uid[n] : -1;
			w->token_ns = n, w->token_sa = a;
			o = KC_OUT_OK;
			if (s->secret[0])
				uid_str(w->uid[n], uid, len);
		}
		break;
	}
	case KC_STEP_DONE: break;
	}
	return f == FAIL_AFTER ? KC_OUT_FAILED : o;
}

/* ---- the cases ------------------------------------------------------------------ */

enum shape { SH_NONE, SH_CURRENT_X, SH_CURRENT_Y, SH_CURRENT_EMPTY, SH_REVOKE, SH_COUNT };
enum drift { DR_AS_RECORDED, DR_DELETED, DR_OTHER_UID, DR_COUNT };
enum want { W_NONE, W_AX, W_AY, W_BX, W_COUNT };

struct scenario {
	int shape[2], known_uid[2], interrupted[2], drift[2];
	bool token_file, due, create, reconcile, stray_b, sa_missing;
	enum want want;
	enum kc_rotate rotate;
};

static unsigned long runs;

static void build(const struct scenario *sc, struct kc_grant *g, size_t *n, struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->next_uid = 100;
	for (int ns = 0; ns < 2; ns++)
		w->sa[ns][0] = w->sa[ns][1] = !sc->sa_missing;
	*n = 0;
	for (int ns = 0; ns < 2; ns++) {
		struct kc_grant *x;

		if (sc->shape[ns] == SH_NONE) {
			if (ns == 1 && sc->stray_b)
				w->secret[1] = true, w->uid[1] = 77;
			continue;
		}
		x = &g[(*n)++];
		memset(x, 0, sizeof(*x));
		snprintf(x->cluster, sizeof(x->cluster), "c");
		snprintf(x->sa_namespace, sizeof(x->sa_namespace), "%s", ns ? "B" : "A");
		snprintf(x->secret, sizeof(x->secret), SECRET);
		x->state = sc->shape[ns] == SH_REVOKE ? KC_GRANT_REVOKE : KC_GRANT_CURRENT;
		if (sc->shape[ns] == SH_CURRENT_X || sc->shape[ns] == SH_CURRENT_Y)
			snprintf(x->sa_name, sizeof(x->sa_name), "%s", sc->shape[ns] == SH_CURRENT_X ? "x" : "y");
		x->interrupted = sc->interrupted[ns];
		x->lifetime = 900;
		x->minted = sc->due ? NOW - 800 : NOW - 10;
		w->uid[ns] = 10 + ns;
		w->secret[ns] = sc->drift[ns] != DR_DELETED;
		if (sc->drift[ns] == DR_OTHER_UID)
			w->uid[ns] = 50 + ns;
		if (sc->known_uid[ns])
			uid_str(10 + ns, x->secret_uid, sizeof(x->secret_uid));
	}
}

static const struct kc_grant *final_file(const struct kc_commit *c, const struct kc_grant *old, size_t n, int ns,
					 struct kc_grant *buf)
{
	const char *name = ns ? "B" : "A";

	for (size_t i = 0; i < c->n_put; i++)
		if (strcmp(c->put[i].sa_namespace, name) == 0)
			return &c->put[i];
	for (size_t i = 0; i < c->n_drop; i++)
		if (strcmp(c->drop[i].sa_namespace, name) == 0)
			return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(old[i].sa_namespace, name) == 0) {
			*buf = old[i];
			return buf;
		}
	return NULL;
}

static void check(const struct scenario *sc, const struct kc_plan *p, const struct kc_commit *c, const struct world *w,
		  const struct kc_grant *old, size_t n_old, bool failed)
{
	const struct kc_plan_target *t = &p->in.target;
	struct kc_grant buf[2];
	const struct kc_grant *f[2];
	bool ours[2];
	int current = 0;

	for (int ns = 0; ns < 2; ns++) {
		/* Ours by the protocol: made in this job, or the incarnation a file names. */
		bool made_here = w->secret[ns] && w->uid[ns] > 100;
		bool recorded = w->secret[ns] && w->uid[ns] <= 100 && sc->shape[ns] != SH_NONE &&
				(!sc->known_uid[ns] || sc->interrupted[ns] || sc->drift[ns] == DR_AS_RECORDED);

		ours[ns] = made_here || recorded;
		f[ns] = final_file(c, old, n_old, ns, &buf[ns]);
		/* P1, no orphan: every Secret of ours stays recorded until it is gone. */
		if (ours[ns])
			assert_non_null(f[ns]);
		if (!f[ns])
			continue;
		if (f[ns]->state == KC_GRANT_CURRENT) {
			current++;
			/* P2 and P4: the one current grant is the wanted one. */
			assert_true(t->wanted);
			assert_int_equal(ns, ns_index(t->sa_namespace));
			assert_true(!f[ns]->sa_name[0] || strcmp(f[ns]->sa_name, t->sa_name) == 0);
		}
	}
	assert_true(current <= 1);
	/* P6, and P3/I2 in the model: a token file names a live grant of the wanted account. */
	if (c->token == KC_TOKEN_WRITE) {
		int ns = ns_index(t->sa_namespace);

		assert_true(t->wanted && f[ns] && f[ns]->state == KC_GRANT_CURRENT && f[ns]->sa_name[0]);
		assert_true(w->token_uid == -1 || (w->secret[ns] && w->token_uid == w->uid[ns]));
		assert_int_equal(w->token_ns, ns);
	}
	if (c->token == KC_TOKEN_KEEP)
		assert_true(t->wanted && p->keep >= 0 && f[ns_index(t->sa_namespace)]->sa_name[0]);
	if (!t->wanted)
		assert_int_not_equal(c->token, KC_TOKEN_WRITE);
	/* I1 in the model: nothing wanted and nothing failed -> nothing of ours is left. */
	if (!t->wanted && !failed) {
		assert_false(ours[0] || ours[1]);
		assert_true(!f[0] && !f[1]);
		assert_int_equal(c->token, KC_TOKEN_REMOVE);
	}
	/* Wanted and nothing failed -> a token of the wanted account is in the file. */
	if (t->wanted && !failed && !sc->sa_missing)
		assert_true(c->token == KC_TOKEN_WRITE || c->token == KC_TOKEN_KEEP);
}

/* Returns how many requests the job sent. */
static int run_case(const struct scenario *sc, int fail_at, enum fail kind)
{
	struct kc_grant old[2];
	size_t n_old;
	struct world w;
	struct kc_plan_input in = { .cluster = "c", .refresh_before = 20, .now = NOW };
	struct kc_plan p;
	struct kc_commit c;
	bool failed = false;
	int step = 0;

	build(sc, old, &n_old, &w);
	in.grants = old;
	in.n_grants = n_old;
	in.token_file = sc->token_file;
	in.rotate = sc->rotate;
	if (sc->want != W_NONE) {
		in.target.wanted = true;
		snprintf(in.target.sa_namespace, sizeof(in.target.sa_namespace), "%s", sc->want == W_BX ? "B" : "A");
		snprintf(in.target.sa_name, sizeof(in.target.sa_name), "%s", sc->want == W_AY ? "y" : "x");
		snprintf(in.target.secret, sizeof(in.target.secret), SECRET);
		in.target.create = sc->create;
		in.target.reconcile = sc->create && sc->reconcile;
	}
	assert_int_equal(kc_plan_start(&p, &in), 0);
	for (;;) {
		struct kc_step s = kc_plan_next(&p);
		char uid[64];
		enum kc_outcome o;

		if (s.kind == KC_STEP_DONE)
			break;
		assert_true(step < 20); /* it ends */
		o = serve(&w, &p, &s, step == fail_at ? kind : FAIL_NONE, uid, sizeof(uid));
		failed |= step == fail_at;
		kc_plan_record(&p, &s, o, uid);
		if (s.kind == KC_STEP_MINT && o == KC_OUT_OK)
			kc_plan_minted(&p, NOW, 900, "jti");
		step++;
	}
	kc_plan_commit(&p, &c, failed ? "a request failed" : NULL, NOW);
	/* Without SA (and no create) minting fails by nature: a failure like any other. */
	check(sc, &p, &c, &w, old, n_old, failed || (sc->sa_missing && !sc->create && sc->want != W_NONE));
	runs++;
	return step;
}

/* Every failure point of one scenario: none, then each request it sends (the
 * requests before a failure are the same as without one), before the server
 * acted and after. */
static void run_all_failures(const struct scenario *sc)
{
	int steps = run_case(sc, -1, FAIL_NONE);

	for (int k = 0; k < steps; k++) {
		run_case(sc, k, FAIL_BEFORE);
		run_case(sc, k, FAIL_AFTER);
	}
}

/* Per namespace: no file, or a file of every shape, uid known or not,
 * interrupted or not, and the server as recorded or drifted. */
static bool next_file(struct scenario *sc, int ns)
{
	if (sc->shape[ns] == SH_NONE) {
		sc->shape[ns] = SH_CURRENT_X;
		return true;
	}
	if (++sc->drift[ns] < DR_COUNT)
		return true;
	sc->drift[ns] = 0;
	if (++sc->known_uid[ns] < 2)
		return true;
	sc->known_uid[ns] = 0;
	if (++sc->interrupted[ns] < 2)
		return true;
	sc->interrupted[ns] = 0;
	if (++sc->shape[ns] < SH_COUNT)
		return true;
	sc->shape[ns] = SH_NONE;
	return false;
}

static void test_every_small_state(void **state)
{
	struct scenario sc;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	do {
		do {
			for (sc.want = 0; sc.want < W_COUNT; sc.want++)
				for (int more = 0; more < 64; more++) {
					sc.token_file = more & 1;
					sc.due = more >> 1 & 1;
					sc.create = more >> 2 & 1;
					sc.rotate = (more >> 3 & 1) ? KC_ROTATE_NOW : KC_ROTATE_DUE;
					sc.sa_missing = more >> 4 & 1;
					sc.stray_b = more >> 5 & 1;
					if (sc.stray_b && sc.shape[1] != SH_NONE)
						continue;
					sc.reconcile = sc.create;
					run_all_failures(&sc);
				}
		} while (next_file(&sc, 1));
	} while (next_file(&sc, 0));
	printf("planner: %lu runs over every small state\n", runs);
}

/* The remap of issue 11: same namespace, another account; nothing fails. */
static void test_remap_in_namespace(void **state)
{
	struct kc_grant g = { .cluster = "c",
			      .sa_namespace = "A",
			      .secret = SECRET,
			      .secret_uid = "u10",
			      .state = KC_GRANT_CURRENT,
			      .sa_name = "x",
			      .minted = NOW - 10,
			      .lifetime = 900 };
	struct kc_plan_input in = {
		.cluster = "c", .grants = &g, .n_grants = 1, .token_file = true, .refresh_before = 20, .now = NOW
	};
	struct kc_plan p;
	struct kc_step s;
	struct kc_commit c;

	(void)state;
	in.target.wanted = true;
	snprintf(in.target.sa_namespace, sizeof(in.target.sa_namespace), "A");
	snprintf(in.target.sa_name, sizeof(in.target.sa_name), "y");
	snprintf(in.target.secret, sizeof(in.target.secret), SECRET);
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
	struct kc_grant g = { .cluster = "c",
			      .sa_namespace = "A",
			      .secret = SECRET,
			      .secret_uid = "u10",
			      .state = KC_GRANT_CURRENT,
			      .sa_name = "x",
			      .minted = NOW - 10,
			      .lifetime = 900 };
	struct kc_plan_input in = {
		.cluster = "c", .grants = &g, .n_grants = 1, .token_file = true, .refresh_before = 20, .now = NOW
	};
	struct kc_plan p;

	(void)state;
	in.target.wanted = true;
	snprintf(in.target.sa_namespace, sizeof(in.target.sa_namespace), "A");
	snprintf(in.target.sa_name, sizeof(in.target.sa_name), "x");
	snprintf(in.target.secret, sizeof(in.target.secret), SECRET);
	assert_int_equal(kc_plan_start(&p, &in), 0);
	assert_int_equal(kc_plan_next(&p).kind, KC_STEP_DONE);
	/* 80 % of its life gone: due. */
	g.minted = NOW - 720;
	assert_true(kc_plan_due(&g, 20, NOW));
	g.minted = NOW - 719;
	assert_false(kc_plan_due(&g, 20, NOW));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remap_in_namespace),
		cmocka_unit_test(test_fresh_token_costs_nothing),
		cmocka_unit_test(test_every_small_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

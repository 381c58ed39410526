/* The cut and the lift of one job (lifecycle/job_cut.h). */
#include "lifecycle/job_cut.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/refuse.h"

/* The port of an https:// URL (443 when it names none). */
static unsigned url_port(const char *url)
{
	const char *host, *colon;
	unsigned long port;

	if (!url || strncmp(url, "https://", 8) != 0)
		return 443;
	host = url + 8;
	if (*host == '[' && strchr(host, ']'))
		host = strchr(host, ']'); /* past an IPv6 literal's colons */
	colon = strchr(host, ':');
	port = colon && (!strchr(host, '/') || colon < strchr(host, '/')) ? strtoul(colon + 1, NULL, 10) : 443;
	return port > 0 && port < 65536 ? (unsigned)port : 443;
}

/* Every address the endpoint had (recorded in this cluster's grant files),
 * has now, and the config's other front doors of the same API server. */
static size_t known_addrs(const struct job_ctx *c, char (*out)[64], size_t max)
{
	const struct kc_cluster *cl = c->j->cl;
	size_t n = 0;

	for (size_t i = 0; i < c->n_grants; i++)
		for (size_t a = 0; a < c->grants[i].n_addrs && n < max; a++)
			snprintf(out[n++], 64, "%s", c->grants[i].addrs[a]);
	if (c->kube && *kc_kube_peer(c->kube) && n < max)
		snprintf(out[n++], 64, "%s", kc_kube_peer(c->kube));
	for (size_t i = 0; i < cl->n_also && n < max; i++) {
		char ip[64];
		unsigned port;

		if (sscanf(cl->also_reachable_at[i], "%63s %u", ip, &port) == 2)
			snprintf(out[n++], 64, "%.46s %u", ip,
				 port ? port : url_port(c->j->ep.server ? c->j->ep.server : cl->server));
	}
	return n;
}

/* ---- the cut (lifecycle/cut.h) -------------------------------------------------------- */

static struct kc_cut cut_of(struct job_ctx *c, char (*addrs)[64], size_t n, bool refuse)
{
	struct kc_job *j = c->j;

	return (struct kc_cut){ .uid = j->uid,
				.user = j->user,
				.cluster = j->cl->name,
				.server = j->ep.server ? j->ep.server : j->cl->server,
				.addrs = addrs,
				.n = n,
				.state_dir = j->state_dir,
				.refuse = refuse };
}

/* A logout's cut goes beside its requests (kc_plan_will_cut): the uid's new
 * connections refused, what is open cut, by every address the endpoint had,
 * has (resolved again) and is also reachable at, while the DELETE is on its
 * way. Under the cluster's lock from start to join. */
static void *early_cut_thread(void *arg)
{
	struct job_ctx *c = arg;

	kc_cut_user(&c->early.cut, c->j->deadline_ms);
	return NULL;
}

void kc_job_early_cut_start(struct job_ctx *c)
{
	struct early_cut *e = &c->early;

	if (!c->j->cfg->cut_on_logout || !kc_plan_will_cut(&c->plan))
		return;
	/* Everything the thread reads, taken now: the requests change the endpoint. */
	e->cut = cut_of(c, e->addrs, known_addrs(c, e->addrs, sizeof(e->addrs) / sizeof(e->addrs[0])), true);
	snprintf(e->server, sizeof(e->server), "%s", e->cut.server ? e->cut.server : "");
	e->cut.server = e->server[0] ? e->server : NULL;
	e->cut.resolve = true;
	e->started = pthread_create(&e->thread, NULL, early_cut_thread, c) == 0;
	if (!c->early.started)
		early_cut_thread(c);
	c->early.done = true;
}

void kc_job_early_cut_join(struct job_ctx *c)
{
	if (c->early.started)
		pthread_join(c->early.thread, NULL);
	c->early.started = false;
}

/* The commit's cut: all of it, or, after an early one, the address the
 * requests' own connection went to when that was new (a DNS answer changed). */
void kc_job_cut_after(struct job_ctx *c, bool refuse)
{
	char addrs[2 * KC_ADDRS_MAX * KC_PLAN_GRANTS_MAX][64];
	size_t n = known_addrs(c, addrs, sizeof(addrs) / sizeof(addrs[0])), m = 0;
	struct kc_cut cut;

	kc_job_early_cut_join(c);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (size_t k = 0; c->early.done && k < c->early.cut.n && !seen; k++)
			seen = strcmp(addrs[i], c->early.addrs[k]) == 0;
		if (!seen)
			memmove(addrs[m++], addrs[i], sizeof(addrs[0]));
	}
	if (m == 0)
		return;
	cut = cut_of(c, addrs, m, refuse);
	kc_cut_user(&cut, c->j->deadline_ms);
}

static void *lift_thread(void *arg)
{
	const struct kc_job *j = ((struct kc_lift *)arg)->j;

	kc_refuse_lift(j->state_dir, j->cl->name, j->uid, j->deadline_ms);
	return NULL;
}

void kc_job_lift_start(struct kc_lift *l, const struct job_ctx *c)
{
	l->j = c->j;
	if (!c->plan.in.target.wanted || !kc_refuse_stands(c->j->state_dir, c->j->cl->name))
		return;
	l->started = pthread_create(&l->thread, NULL, lift_thread, l) == 0;
	if (!l->started)
		lift_thread(l);
}

void kc_job_lift_join(struct kc_lift *l)
{
	if (l->started)
		pthread_join(l->thread, NULL);
}

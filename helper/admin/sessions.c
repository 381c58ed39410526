/* sessions [--fleet] [--output json]: who holds access now (see sessions.h). */
#include "admin/sessions.h"

#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json_alloc.h"
#include "config/config.h"
#include "config/mapping.h"
#include "kc_protocol.h"
#include "kube/objects.h"
#include "lifecycle/fleet.h"
#include "lifecycle/state.h"

static json_t *session_json(const struct kc_session_record *r)
{
	json_t *s = json_pack("{s:s, s:s, s:I, s:I}", "id", r->id, "rhost", r->rhost, "opened", (json_int_t)r->opened,
			      "pid", (json_int_t)r->pid);

	if (s && r->cert.present)
		json_object_set_new(s, "certificate",
				    json_pack("{s:s, s:I, s:s}", "key_id", r->cert.key_id, "valid_before",
					      (json_int_t)r->cert.valid_before, "ca", r->cert.ca));
	return s;
}

static json_t *grant_json(const struct kc_grant *g)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "cluster", g->cluster, "namespace", g->sa_namespace,
			 "serviceaccount", g->sa_name, "secret", g->secret, "state",
			 g->state == KC_GRANT_REVOKE ? "pending-revocation"
			 : g->sa_name[0]	     ? "current"
						     : "being-made",
			 "expires", (json_int_t)(g->minted && g->lifetime ? g->minted + g->lifetime : 0));
}

/* One uid's records: its name, live sessions and grants; NULL when it has none. */
static json_t *user_json(uid_t uid)
{
	struct kc_session_record *live = NULL;
	struct kc_grant *g = NULL;
	size_t n_live = 0, n_g = 0;
	char name[256] = "";
	struct kc_err e;
	int dir = kc_state_open(uid, false, &e);
	json_t *u = NULL, *sessions, *grants;

	if (dir < 0)
		return NULL;
	kc_state_user_name(dir, name, sizeof(name));
	if (kc_state_sessions(dir, false, &live, &n_live, NULL, &e) == 0 &&
	    kc_state_grants(dir, NULL, NULL, &g, &n_g, &e) == 0 && (n_live || n_g)) {
		sessions = json_array();
		grants = json_array();
		for (size_t i = 0; sessions && i < n_live; i++)
			json_array_append_new(sessions, session_json(&live[i]));
		for (size_t i = 0; grants && i < n_g; i++)
			json_array_append_new(grants, grant_json(&g[i]));
		u = json_pack("{s:s, s:I, s:o, s:o}", "user", name, "uid", (json_int_t)uid, "sessions", sessions,
			      "grants", grants);
	}
	free(live);
	free(g);
	close(dir);
	return u;
}

static json_t *this_host(void)
{
	uid_t *uids = NULL;
	size_t n = 0;
	struct kc_err e;
	json_t *users = json_array();

	if (kc_state_list_uids(&uids, &n, &e) == 0)
		for (size_t i = 0; users && i < n; i++) {
			json_t *u = user_json(uids[i]);

			if (u)
				json_array_append_new(users, u);
		}
	free(uids);
	return users;
}

struct probe {
	struct kc_kube *k;
	const char *user, *cluster;
	json_t *out;
};

/* A Secret of the user's on some bastion: there when a dry-run DELETE finds it. */
static void probe_one(const char *host, const char *ns, const char *secret, void *arg)
{
	struct probe *p = arg;
	char uid[64];
	struct kc_err e = { "" };

	if (kc_kube_secret_uid(p->k, ns, secret, uid, &e) == 0)
		json_array_append_new(p->out, json_pack("{s:s, s:s, s:s, s:s, s:s}", "host", host, "user", p->user,
							"cluster", p->cluster, "namespace", ns, "secret", secret));
}

/* The users to look for on every bastion: this host's accounts in scope. */
static json_t *fleet_grants(const struct kc_config *cfg)
{
	json_t *out = json_array();
	struct passwd *pw;

	for (size_t c = 0; out && c < cfg->n_clusters; c++) {
		struct kc_err e = { "" };
		struct probe p = { .cluster = cfg->clusters[c].name, .out = out };

		p.k = kc_kube_connect(cfg, &cfg->clusters[c], kc_now_ms() + 60000, NULL, &e);
		if (!p.k) {
			fprintf(stderr, "pam-kubeconfig: cluster %s: %s\n", p.cluster, e.msg);
			continue;
		}
		setpwent();
		while ((pw = getpwent()))
			if (pw->pw_uid >= cfg->min_uid && pw->pw_uid != 0) {
				p.user = pw->pw_name;
				if (kc_fleet_secrets_of(p.k, cfg, &cfg->clusters[c], pw->pw_name, probe_one, &p, &e) <
				    0) {
					fprintf(stderr, "pam-kubeconfig: cluster %s: %s\n", p.cluster, e.msg);
					break;
				}
			}
		endpwent();
		kc_kube_close(p.k);
	}
	return out;
}

static void print_text(json_t *doc)
{
	json_t *u, *x;
	size_t i, k;

	printf("this host (%s):\n", json_string_value(json_object_get(doc, "host")));
	json_array_foreach(json_object_get(doc, "users"), i, u)
	{
		printf("  %s (uid %lld)\n", json_string_value(json_object_get(u, "user")),
		       (long long)json_integer_value(json_object_get(u, "uid")));
		json_array_foreach(json_object_get(u, "sessions"), k, x)
		{
			printf("    session %s from %s%s\n", json_string_value(json_object_get(x, "id")),
			       json_string_value(json_object_get(x, "rhost")),
			       json_object_get(x, "certificate") ? " (with an SSH certificate)" : "");
		}
		json_array_foreach(json_object_get(u, "grants"), k, x)
		{
			printf("    cluster %s: %s/%s (%s)\n", json_string_value(json_object_get(x, "cluster")),
			       json_string_value(json_object_get(x, "namespace")),
			       json_string_value(json_object_get(x, "serviceaccount")),
			       json_string_value(json_object_get(x, "state")));
		}
	}
	if (!json_object_get(doc, "fleet"))
		return;
	printf("the fleet (Secrets found by name, a dry-run DELETE each):\n");
	json_array_foreach(json_object_get(doc, "fleet"), i, x)
	{
		printf("  host %s: %s on cluster %s (%s/%s)\n", json_string_value(json_object_get(x, "host")),
		       json_string_value(json_object_get(x, "user")), json_string_value(json_object_get(x, "cluster")),
		       json_string_value(json_object_get(x, "namespace")),
		       json_string_value(json_object_get(x, "secret")));
	}
}

int kc_cmd_sessions(const char *config, bool fleet, bool json)
{
	struct kc_err err = { "" };
	struct kc_config *cfg = kc_config_load(config, 0, &err);
	json_t *doc;
	char *text;

	if (!cfg) {
		fprintf(stderr, "%s\n", err.msg);
		return KC_EXIT_USAGE;
	}
	if (fleet && !cfg->fleet_namespace) {
		fprintf(stderr, "pam-kubeconfig: --fleet needs fleet: { namespace: NS } in %s\n", cfg->path);
		kc_config_free(cfg);
		return KC_EXIT_USAGE;
	}
	doc = json_pack("{s:s, s:o}", "host", cfg->host_id, "users", this_host());
	if (doc && fleet)
		json_object_set_new(doc, "fleet", fleet_grants(cfg));
	if (json && doc && (text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		puts(text);
		kc_json_free(text);
	} else if (doc) {
		print_text(doc);
	}
	json_decref(doc);
	kc_config_free(cfg);
	return doc ? KC_EXIT_OK : KC_EXIT_ERROR;
}

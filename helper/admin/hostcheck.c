/* `check`'s look at this host (see admin/hostcheck.h). */
#include "admin/hostcheck.h"

#include <unistd.h>

#include "common/cache.h"
#include "lifecycle/sockcut.h"
#include "lifecycle/state.h"
#include "lifecycle/tokenfile.h"

#define HEARTBEAT_STALE 180

static int check_run_dir(FILE *out)
{
	int tmpfs = kc_tokenfile_on_tmpfs();

	if (tmpfs == 0)
		fprintf(out,
			"note: %s is not on a tmpfs here: token files sit on disk until their session ends "
			"(they expire after token.ttl all the same)\n",
			KC_RUN_DIR);
	return 0;
}

static int check_cut(const struct kc_config *cfg, FILE *out)
{
	struct kc_err why = { "" };

	if (!cfg->cut_on_logout)
		return 0;
	if (kc_sockcut_supported(&why) == 0) {
		fprintf(out, "ok: connections to the API servers can be cut at logout (sock_diag SOCK_DESTROY)\n");
		return 0;
	}
	fprintf(out,
		"warning: open connections cannot be cut at logout: %s; revoked tokens are refused all the same, "
		"but a stream opened before the logout (kubectl get -w, port-forward) stays open\n",
		why.msg);
	return 1;
}

static int check_heartbeat(FILE *out)
{
	time_t at = kc_cache_stored("heartbeat", "refresh");

	if (at && time(NULL) - at <= HEARTBEAT_STALE)
		return 0;
	fprintf(out,
		"warning: the refresh timer %s: tokens of open sessions are not rotated and die after token.ttl; "
		"systemctl enable --now pam-kubeconfig-refresh.timer\n",
		at ? "has not run for over 3 minutes" : "has never run");
	return 1;
}

/* Records of clusters that left the config: their Secrets may remain. */
static int check_orphans(const struct kc_config *cfg, FILE *out)
{
	uid_t *uids = NULL;
	size_t n = 0;
	int found = 0;
	struct kc_err e;

	if (kc_state_list_uids(&uids, &n, &e) < 0)
		return 0;
	for (size_t u = 0; u < n; u++) {
		struct kc_grant *g = NULL;
		size_t m = 0;
		int dir = kc_state_open(uids[u], false, &e);

		if (dir < 0)
			continue;
		if (kc_state_grants(dir, NULL, NULL, &g, &m, &e) == 0)
			for (size_t i = 0; i < m; i++) {
				if (kc_config_cluster(cfg, g[i].cluster) || !g[i].secret[0])
					continue;
				fprintf(out,
					"warning: uid %u holds a grant on cluster %s, which is no longer in the "
					"config; remove its Secret there with: kubectl --context %s -n %s delete "
					"secret %s\n",
					(unsigned)uids[u], g[i].cluster, g[i].cluster, g[i].sa_namespace, g[i].secret);
				found++;
			}
		free(g);
		close(dir);
	}
	free(uids);
	return found;
}

int kc_check_host(const struct kc_config *cfg, FILE *out)
{
	int warnings = 0;

	if (cfg->remove_on_logout) {
		fprintf(out,
			"warning: %s: kubeconfig.remove_on_logout is true: with homes shared between bastions, "
			"a logout here removes the contexts a session on another bastion uses\n",
			cfg->path);
		warnings++;
	}
	warnings += check_run_dir(out);
	warnings += check_cut(cfg, out);
	warnings += check_heartbeat(out);
	warnings += check_orphans(cfg, out);
	return warnings;
}

/* `check`'s look at this host (see admin/hostcheck.h). */
#include "admin/hostcheck.h"

#include "config/pamstack.h"
#include "config/sshcert_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/cache.h"
#include "lifecycle/cut.h"
#include "lifecycle/job.h"
#include "lifecycle/ledger.h"
#include "lifecycle/metrics_textfile.h"
#include "lifecycle/plan.h"
#include "lifecycle/refuse.h"
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

/* The refusal of reconnects in the authentication cache window (nftables). */
static int check_refuse(const struct kc_config *cfg, FILE *out)
{
	struct kc_err why = { "" };

	if (!cfg->cut_on_logout)
		return 0;
	if (kc_refuse_supported(&why) == 0) {
		fprintf(out,
			"ok: a revoked user's reconnects are refused for %d s after a logout (nftables table inet "
			"%s)\n",
			KC_REFUSE_S, KC_NFT_TABLE);
		return 0;
	}
	fprintf(out,
		"warning: reconnects cannot be refused after a logout: %s; the second cut, %d s after it, catches "
		"a stream opened with the revoked token meanwhile\n",
		why.msg, KC_CUT_AGAIN_AFTER);
	return 1;
}

/* Doors to an API server the cut does not see. */
static int check_doors(const struct kc_config *cfg, FILE *out)
{
	int found = 0;

	for (size_t i = 0; cfg->cut_on_logout && i < cfg->n_clusters; i++) {
		const struct kc_cluster *cl = &cfg->clusters[i];

		if (cl->proxy) {
			fprintf(out,
				"warning: cluster %s is reached through the proxy %s: a cut at logout closes the "
				"connections to the proxy, not what the proxy holds open to the API server\n",
				cl->name, cl->proxy);
			found++;
		}
	}
	if (cfg->cut_on_logout && cfg->n_clusters)
		fprintf(out, "note: the cut closes a user's connections to each API server's addresses and its "
			     "also_reachable_at; a user's own HTTPS proxy or tunnel (ssh -D, a SOCKS proxy on another "
			     "host) is a door it does not see\n");
	return found;
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

static void say_pending(const struct kc_grant *g, uid_t uid, FILE *out)
{
	char until[32];

	kc_format_time(kc_plan_bound_until(g) + KC_TOKEN_LEEWAY_S, until, sizeof(until));
	fprintf(out,
		"note: uid %u: the revocation of Secret %s/%s on cluster %s is pending (gc retries it until %s, when "
		"every token bound to it has expired): %s\n",
		(unsigned)uid, g->sa_namespace, g->secret, g->cluster, until, g->error[0] ? g->error : "-");
}

/* Records of clusters that left the config: their Secrets may remain. And
 * the revocations still pending, and those that ended by expiry. */
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
				if (g[i].state == KC_GRANT_REVOKE && g[i].secret[0])
					say_pending(&g[i], uids[u], out);
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
	n = kc_cache_count(KC_ENDED_KIND);
	if (n)
		fprintf(out,
			"note: %zu revocations ended because every token bound to their Secret had expired (the API "
			"server refused to delete it; see the log lines \"the revocation of Secret ... ended\")\n",
			n);
	return found;
}

/* ssh_certificates: the CA file reads, and sshd's SSH_AUTH_INFO_0 reaches the
 * module as sshd set it (no pam_env with user_readenv before it). */
static int check_certificates(const struct kc_config *cfg, FILE *out)
{
	struct kc_sshcert_cas cas = { 0 };
	kc_autobuf struct kc_buf warnings = { 0 };
	struct kc_err e = { "" };
	int n = 0;

	if (!cfg->ssh_ca_keys)
		return 0;
	if (kc_sshcert_cas_load(cfg->ssh_ca_keys, &cas, &warnings, &e) < 0) {
		fprintf(out, "warning: %s; no SSH certificate counts until it is fixed\n", e.msg);
		n++;
	} else {
		fprintf(out, "%s: %zu trusted SSH CA key%s\n", cfg->ssh_ca_keys, cas.n, cas.n == 1 ? "" : "s");
	}
	if (warnings.len) {
		fputs(warnings.data, out);
		n++;
	}
	kc_sshcert_cas_free(&cas);
	if (kc_pamstack_check("/", "sshd", &e) != 0) {
		fprintf(out, "warning: SSH_AUTH_INFO_0 will be ignored for sshd logins: %s\n", e.msg);
		n++;
	} else {
		fprintf(out, "/etc/pam.d/sshd: pam_kubeconfig.so runs before any pam_env that reads users' files: "
			     "SSH certificates count\n");
	}
	return n;
}

/* Where refresh and gc write the metrics: refused, they write none. */
static int check_metrics(const struct kc_config *cfg, FILE *out)
{
	struct kc_err why = { "" };
	int fd;

	if (!cfg->metrics_dir)
		return 0;
	fd = kc_metrics_textfile_open_dir(cfg->metrics_dir, &why);
	if (fd >= 0) {
		close(fd);
		fprintf(out, "ok: refresh and gc write the metrics to %s/%s\n", cfg->metrics_dir, KC_METRICS_TEXTFILE);
		return 0;
	}
	fprintf(out, "warning: %s; refresh and gc write no metrics there until it is fixed\n", why.msg);
	return 1;
}

/* The audit ledger: a mint whose line cannot be written is not handed out. */
static int check_ledger(FILE *out)
{
	struct stat st;
	const char *dir = kc_ledger_dir();

	if (lstat(dir, &st) < 0) {
		fprintf(out, "note: %s does not exist yet; the first login makes it (root, 0700)\n", dir);
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 027)) {
		fprintf(out,
			"warning: %s must be a directory of root's with mode 0700 or 0750 (chown root %s; chmod 0700 "
			"%s): until it is, no token is handed out\n",
			dir, dir, dir);
		return 1;
	}
	return 0;
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
	warnings += check_refuse(cfg, out);
	warnings += check_doors(cfg, out);
	warnings += check_heartbeat(out);
	warnings += check_orphans(cfg, out);
	warnings += check_metrics(cfg, out);
	warnings += check_ledger(out);
	warnings += check_certificates(cfg, out);
	return warnings;
}

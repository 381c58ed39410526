/* Unit tests for the kubeconfig merge: what a login writes into a file the user
 * and other tools also write, read back with the strict YAML reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "asuser/kubeconfig_merge.h"
#include "asuser/kubeconfig_names.h"
#include "asuser/kubeconfig_read.h"

static const unsigned char CA[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
static const unsigned char CA2[] = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

#define ENTRY(n, srv, ns)                                                                           \
	{                                                                                           \
		n, srv, CA, sizeof(CA) - 1, false, ns, "/run/pam_kubeconfig/1000/" n ".token", NULL \
	}

struct result {
	int rc;
	struct kc_buf out, notes;
	bool changed, empty;
	struct kc_err err;
	struct kc_ynode *root;
};

static void merge(struct result *r, const char *data, const struct kc_merge_entry *e, size_t n,
		  const struct kc_kubeconfig_names *others)
{
	memset(r, 0, sizeof(*r));
	r->rc = kc_kubeconfig_merge(data, data ? strlen(data) : 0, e, n, others, &r->out, &r->changed, &r->empty,
				    &r->notes, &r->err);
	if (r->rc == 0 && r->out.len)
		assert_int_equal(kc_kubeconfig_read(r->out.data, r->out.len, &r->root, &r->err), 0);
}

static void done(struct result *r)
{
	kc_buf_free(&r->out);
	kc_buf_free(&r->notes);
	kc_ytree_free(r->root);
}

/* The entry named name in a top-level list, or NULL. */
static struct kc_ynode *entry(const struct kc_ynode *root, const char *list, const char *name)
{
	const struct kc_ynode *l = kc_ytree_get(root, list);

	for (size_t i = 0; l && l->kind == KC_YSEQ && i < l->n; i++)
		if (kc_ytree_is(kc_ytree_get(l->items[i], "name"), name))
			return l->items[i];
	return NULL;
}

static size_t count(const struct kc_ynode *root, const char *list)
{
	const struct kc_ynode *l = kc_ytree_get(root, list);

	return l && l->kind == KC_YSEQ ? l->n : 0;
}

/* A scalar inside an entry's object: field(root, "clusters", "a", "cluster", "server"). */
static const char *field(const struct kc_ynode *root, const char *list, const char *name, const char *inner,
			 const char *key)
{
	const struct kc_ynode *v = kc_ytree_get(kc_ytree_get(entry(root, list, name), inner), key);

	return v && v->kind == KC_YSCALAR ? v->value : NULL;
}

static bool marked(const struct kc_ynode *root, const char *list, const char *name, const char *inner)
{
	const struct kc_ynode *ext = kc_ytree_get(kc_ytree_get(entry(root, list, name), inner), "extensions");

	for (size_t i = 0; ext && ext->kind == KC_YSEQ && i < ext->n; i++)
		if (kc_ytree_is(kc_ytree_get(ext->items[i], "name"), KC_MERGE_MARKER))
			return true;
	return false;
}

static const char *current(const struct kc_ynode *root)
{
	const struct kc_ynode *v = kc_ytree_get(root, "current-context");

	return v ? v->value : NULL;
}

static void test_first_login(void **state)
{
	struct kc_merge_entry e[2] = { ENTRY("a", "https://a.example", "team-a"),
				       ENTRY("b", "https://b.example:6443", "team-b") };
	struct result r, again;

	(void)state;
	merge(&r, NULL, e, 2, NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.changed);
	assert_false(r.empty);
	assert_int_equal(r.notes.len, 0);
	assert_true(r.out.secret);
	/* The format a file starts with, pinned: kubectl's frame and key order, the
	 * marker in extensions, nothing of this host. */
	assert_non_null(strstr(r.out.data,
			       "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: " CA_B64
			       "\n    extensions:\n    - extension:\n        managed-by: pam-kubeconfig\n"
			       "        note: updated at login; remove this extension to keep the entry as is\n"
			       "      name: pam-kubeconfig\n    server: https://a.example\n  name: a\n"));
	assert_non_null(strstr(r.out.data, "- context:\n    cluster: a\n    extensions:\n"));
	assert_non_null(strstr(r.out.data, "    namespace: team-a\n    user: a\n  name: a\n"));
	assert_non_null(strstr(r.out.data, "current-context: a\nkind: Config\npreferences: {}\nusers:\n- name: a\n"
					   "  user:\n    extensions:\n"));
	assert_non_null(strstr(r.out.data, "    tokenFile: /run/pam_kubeconfig/1000/a.token\n"));
	assert_null(strstr(r.out.data, "#"));
	for (int k = 0; k < 2; k++) {
		assert_true(marked(r.root, "clusters", e[k].name, "cluster"));
		assert_true(marked(r.root, "contexts", e[k].name, "context"));
		assert_true(marked(r.root, "users", e[k].name, "user"));
		assert_string_equal(field(r.root, "contexts", e[k].name, "context", "cluster"), e[k].name);
		assert_string_equal(field(r.root, "contexts", e[k].name, "context", "user"), e[k].name);
		assert_string_equal(field(r.root, "clusters", e[k].name, "cluster", "server"), e[k].server);
	}
	assert_string_equal(current(r.root), "a");
	/* Same inputs, same bytes (every bastion of a shared home writes this). */
	merge(&again, NULL, e, 2, NULL);
	assert_int_equal(again.out.len, r.out.len);
	assert_memory_equal(again.out.data, r.out.data, r.out.len);
	done(&again);
	done(&r);
}

static void test_second_login_unchanged(void **state)
{
	struct kc_merge_entry e[2] = { ENTRY("a", "https://a.example", "team-a"),
				       ENTRY("b", "https://b.example", "team-b") };
	struct result r, again;

	(void)state;
	merge(&r, NULL, e, 2, NULL);
	merge(&again, r.out.data, e, 2, NULL);
	assert_int_equal(again.rc, 0);
	assert_false(again.changed);
	assert_string_equal(again.out.data, r.out.data);
	assert_int_equal(again.notes.len, 0);
	done(&again);
	done(&r);
}

static void test_cluster_added_removed_updated(void **state)
{
	struct kc_merge_entry before[2] = { ENTRY("a", "https://a.example", "ns"),
					    ENTRY("b", "https://b.example", "ns") };
	struct kc_merge_entry after[2] = { ENTRY("b", "https://b2.example", "ns"),
					   ENTRY("c", "https://c.example", "ns") };
	struct result r, next;

	(void)state;
	after[0].ca_pem = CA2;
	merge(&r, NULL, before, 2, NULL);
	merge(&next, r.out.data, after, 2, NULL);
	assert_int_equal(next.rc, 0);
	assert_true(next.changed);
	for (const char *const *l = (const char *const[]){ "clusters", "contexts", "users", NULL }; *l; l++) {
		assert_null(entry(next.root, *l, "a"));
		assert_int_equal(count(next.root, *l), 2);
	}
	assert_string_equal(field(next.root, "clusters", "b", "cluster", "server"), "https://b2.example");
	assert_string_not_equal(field(next.root, "clusters", "b", "cluster", "certificate-authority-data"), CA_B64);
	assert_string_equal(field(next.root, "clusters", "c", "cluster", "server"), "https://c.example");
	/* current-context named the context that went: now our first. */
	assert_string_equal(current(next.root), "b");
	assert_non_null(strstr(next.notes.data, "current-context \"a\" named no context any more: it is now \"b\"\n"));
	done(&next);
	done(&r);
}

/* What `kubectl config use-context b` and `set-context --current --namespace=x`
 * leave, with kubectl's quoting; and a CA path kubectl may have added. */
static const char *const KUBECTL_EDITED = "apiVersion: v1\n"
					  "clusters:\n"
					  "- cluster:\n"
					  "    certificate-authority: /etc/old-ca.pem\n"
					  "    extensions:\n"
					  "    - extension:\n"
					  "        managed-by: pam-kubeconfig\n"
					  "      name: pam-kubeconfig\n"
					  "    proxy-url: http://proxy:3128\n"
					  "    server: https://old.example\n"
					  "  name: b\n"
					  "contexts:\n"
					  "- context:\n"
					  "    cluster: b\n"
					  "    extensions:\n"
					  "    - extension:\n"
					  "        managed-by: pam-kubeconfig\n"
					  "      name: pam-kubeconfig\n"
					  "    namespace: x\n"
					  "    user: b\n"
					  "  name: b\n"
					  "current-context: \"b\"\n"
					  "kind: Config\n"
					  "preferences: {}\n"
					  "users:\n"
					  "- name: b\n"
					  "  user:\n"
					  "    extensions:\n"
					  "    - extension:\n"
					  "        managed-by: pam-kubeconfig\n"
					  "      name: pam-kubeconfig\n"
					  "    token: old-secret\n";

static void test_user_context_and_namespace_kept(void **state)
{
	struct kc_merge_entry e[2] = { ENTRY("a", "https://a.example", "team-a"),
				       ENTRY("b", "https://b.example", "team-b") };
	struct result r;

	(void)state;
	merge(&r, KUBECTL_EDITED, e, 2, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(current(r.root), "b");
	assert_string_equal(field(r.root, "contexts", "b", "context", "namespace"), "x");
	assert_string_equal(field(r.root, "contexts", "a", "context", "namespace"), "team-a");
	/* Ours replaced, the rest of our entry kept. */
	assert_string_equal(field(r.root, "clusters", "b", "cluster", "server"), "https://b.example");
	assert_string_equal(field(r.root, "clusters", "b", "cluster", "certificate-authority-data"), CA_B64);
	assert_null(field(r.root, "clusters", "b", "cluster", "certificate-authority"));
	assert_string_equal(field(r.root, "clusters", "b", "cluster", "proxy-url"), "http://proxy:3128");
	assert_string_equal(field(r.root, "users", "b", "user", "tokenFile"), "/run/pam_kubeconfig/1000/b.token");
	assert_null(field(r.root, "users", "b", "user", "token"));
	assert_null(strstr(r.out.data, "old-secret"));
	/* kubectl's quoting of a value we did not change is kept. */
	assert_non_null(strstr(r.out.data, "current-context: \"b\"\n"));
	assert_int_equal(r.notes.len, 0);
	done(&r);
}

static const char *const OTHER_TOOLS =
	"# a comment kubectl would drop too\n"
	"apiVersion: v1\n"
	"kind: Config\n"
	"x-custom: {keep: [1, '2', \"three\", ~, 0x1F, !!str 7]}\n"
	"preferences:\n"
	"  colors: true\n"
	"clusters:\n"
	"- name: arn:aws:eks:us-west-2:111122223333:cluster/other\n"
	"  cluster:\n"
	"    server: https://other.example\n"
	"    certificate-authority-data: T1RIRVI=\n"
	"    tls-server-name: other\n"
	"contexts:\n"
	"- name: arn:aws:eks:us-west-2:111122223333:cluster/other\n"
	"  context: {cluster: 'arn:aws:eks:us-west-2:111122223333:cluster/other', user: eks-user}\n"
	"users:\n"
	"- name: eks-user\n"
	"  user:\n"
	"    exec:\n"
	"      apiVersion: client.authentication.k8s.io/v1beta1\n"
	"      command: aws\n"
	"      args: [--region, us-west-2, eks, get-token, --cluster-name, other]\n"
	"      env:\n"
	"      - {name: AWS_PROFILE, value: dev}\n"
	"      interactiveMode: IfAvailable\n"
	"      provideClusterInfo: false\n"
	"    note: |\n"
	"      a literal\n"
	"      block\n"
	"current-context: arn:aws:eks:us-west-2:111122223333:cluster/other\n"
	"extensions:\n"
	"- name: someone-else\n"
	"  extension: {x: 1}\n";

static void test_other_tools_entries_kept(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "team-a") };
	struct kc_ynode *in = NULL;
	struct kc_err err;
	struct result r, again;
	static const char *const keys[] = { "apiVersion", "kind", "x-custom", "preferences", "extensions", NULL };

	(void)state;
	assert_int_equal(kc_kubeconfig_read(OTHER_TOOLS, strlen(OTHER_TOOLS), &in, &err), 0);
	merge(&r, OTHER_TOOLS, e, 1, NULL);
	assert_int_equal(r.rc, 0);
	for (size_t i = 0; keys[i]; i++)
		assert_true(kc_ytree_equal(kc_ytree_get(in, keys[i]), kc_ytree_get(r.root, keys[i])));
	/* Every other entry, byte of meaning for byte, ahead of ours. */
	for (const char *const *l = (const char *const[]){ "clusters", "contexts", "users", NULL }; *l; l++) {
		assert_int_equal(count(r.root, *l), 2);
		assert_true(kc_ytree_equal(kc_ytree_get(in, *l)->items[0], kc_ytree_get(r.root, *l)->items[0]));
	}
	/* Top-level keys in their order, ours added where missing. */
	assert_true(kc_ytree_is(r.root->items[0], "apiVersion") && kc_ytree_is(r.root->items[4], "x-custom"));
	assert_string_equal(current(r.root), "arn:aws:eks:us-west-2:111122223333:cluster/other");
	assert_false(r.empty);
	merge(&again, r.out.data, e, 1, NULL);
	assert_false(again.changed);
	done(&again);
	kc_ytree_free(in);
	done(&r);
}

static void test_marker_removed_left_alone(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("b", "https://new.example", "team-b") };
	struct kc_buf text = { 0 };
	const char *cut;
	struct result r;

	(void)state;
	/* The cluster entry without its extension, as `aws eks update-kubeconfig`
	 * or an editor leaves it. */
	cut = strstr(KUBECTL_EDITED, "    extensions:");
	kc_buf_append(&text, KUBECTL_EDITED, (size_t)(cut - KUBECTL_EDITED));
	kc_buf_puts(&text, strstr(KUBECTL_EDITED, "    proxy-url:"));
	merge(&r, text.data, e, 1, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(count(r.root, "clusters"), 1);
	assert_string_equal(field(r.root, "clusters", "b", "cluster", "server"), "https://old.example");
	assert_string_equal(field(r.root, "clusters", "b", "cluster", "certificate-authority"), "/etc/old-ca.pem");
	assert_false(marked(r.root, "clusters", "b", "cluster"));
	/* Its context and user are still ours, and updated. */
	assert_string_equal(field(r.root, "users", "b", "user", "tokenFile"), "/run/pam_kubeconfig/1000/b.token");
	assert_string_equal(r.notes.data,
			    "cluster \"b\" has no pam-kubeconfig marker (another tool or you rewrote it): "
			    "it is left as it is and its server and certificate are no longer updated at "
			    "login; delete it to have ours written again\n");
	kc_buf_free(&text);
	done(&r);
}

static void test_clash_with_others(void **state)
{
	struct kc_merge_entry e[2] = { ENTRY("a", "https://a.example", "ns"), ENTRY("b", "https://b.example", "ns") };
	struct kc_kubeconfig_names others;
	struct kc_err err;
	struct result r;
	const char *mine = "apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: https://mine}\n"
			   "contexts:\n- name: a\n  context: {cluster: a, user: me}\n- name: mine\n  context: {}\n"
			   "users:\n- name: a\n  user: {}\n- name: me\n  user: {}\ncurrent-context: mine\n";

	(void)state;
	assert_int_equal(kc_kubeconfig_names_parse(mine, strlen(mine), &others, &err), 0);
	assert_int_equal(others.n_contexts, 2);
	assert_string_equal(others.current_context, "mine");
	others.label = "~/.kube/config";
	merge(&r, NULL, e, 2, &others);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.notes.data, "\"a\" is also a context, cluster and user name in ~/.kube/config: kubectl "
					  "uses this file's, listed first in KUBECONFIG\n");
	kc_kubeconfig_names_free(&others);
	done(&r);
}

/* The user's own file is read as kubectl reads it: anchors and aliases, flow
 * style, a second document ignored; an alias where a name would be is no name. */
static void test_others_read_leniently(void **state)
{
	struct kc_kubeconfig_names o;
	struct kc_err err;
	const char *anchors =
		"clusters:\n- name: home\n  cluster: &c {server: https://h}\n- name: work\n  cluster: *c\n"
		"- {name: *c}\ncontexts:\n- name: &n home\n  context: {cluster: home}\n"
		"- name: x\n  context: &ctx\n    cluster: work\n    deep: [[[1, {a: b}]]]\n"
		"users: [{name: me, user: {}}, 7, {user: {}}]\ncurrent-context: *n\n"
		"? [complex, key]\n: value\n---\ncurrent-context: other\n";

	(void)state;
	if (kc_kubeconfig_names_parse(anchors, strlen(anchors), &o, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(o.n_clusters, 2);
	assert_string_equal(o.clusters[1], "work");
	assert_int_equal(o.n_contexts, 2);
	assert_string_equal(o.contexts[0], "home");
	assert_int_equal(o.n_users, 1);
	assert_null(o.current_context); /* an alias: not read */
	kc_kubeconfig_names_free(&o);

	assert_int_equal(kc_kubeconfig_names_parse("current-context: ~\n", strlen("current-context: ~\n"), &o, &err),
			 0);
	assert_null(o.current_context);
	kc_kubeconfig_names_free(&o);
	assert_int_equal(kc_kubeconfig_names_parse("# only a comment\n", strlen("# only a comment\n"), &o, &err), 0);
	assert_int_equal(o.n_contexts, 0);
	kc_kubeconfig_names_free(&o);
	assert_int_equal(kc_kubeconfig_names_parse("- a\n", strlen("- a\n"), &o, &err), -1);
	assert_non_null(strstr(err.msg, "not a kubeconfig"));
	kc_kubeconfig_names_free(&o);
	{
		char deep[5000] = "a: ";

		memset(deep + 3, '[', 100);
		assert_int_equal(kc_kubeconfig_names_parse(deep, strlen(deep), &o, &err), -1);
		assert_non_null(strstr(err.msg, "nested more than"));
		kc_kubeconfig_names_free(&o);
	}
	assert_int_equal(kc_kubeconfig_names_parse("a: [b\n", strlen("a: [b\n"), &o, &err), -1);
	assert_non_null(strstr(err.msg, "line "));
	kc_kubeconfig_names_free(&o);
}

static void test_current_context_in_others_kept(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "ns") };
	char mine[] = "mine", *names[] = { mine };
	struct kc_kubeconfig_names others = { .contexts = names, .n_contexts = 1 };
	struct result first, r;

	(void)state;
	merge(&first, "current-context: mine\n", e, 1, &others);
	assert_int_equal(first.rc, 0);
	assert_string_equal(current(first.root), "mine");
	assert_int_equal(first.notes.len, 0);
	/* That file there but unreadable (too large, not YAML) may name it: kept. */
	{
		struct kc_kubeconfig_names unreadable = { .unreadable = true };
		struct result kept;

		merge(&kept, first.out.data, e, 1, &unreadable);
		assert_string_equal(current(kept.root), "mine");
		done(&kept);
	}
	/* Without that file the context names nothing: reset, and said. */
	merge(&r, first.out.data, e, 1, NULL);
	assert_string_equal(current(r.root), "a");
	assert_non_null(strstr(r.notes.data, "current-context \"mine\" named no context any more"));
	done(&first);
	done(&r);
}

static void test_remove_on_logout(void **state)
{
	struct kc_merge_entry e[2] = { ENTRY("a", "https://a.example", "ns"), ENTRY("b", "https://b.example", "ns") };
	struct result ours, none, mixed, nothing;
	struct kc_buf text = { 0 };

	(void)state;
	merge(&ours, NULL, e, 2, NULL);
	merge(&none, ours.out.data, NULL, 0, NULL);
	assert_int_equal(none.rc, 0);
	assert_true(none.changed);
	assert_true(none.empty);
	for (const char *const *l = (const char *const[]){ "clusters", "contexts", "users", NULL }; *l; l++)
		assert_int_equal(count(none.root, *l), 0);
	assert_string_equal(current(none.root), "");
	/* Something else there: it stays, and so does the file. */
	kc_buf_puts(&text, ours.out.data);
	kc_buf_puts(&text, "x-mine: 1\n");
	merge(&mixed, text.data, NULL, 0, NULL);
	assert_false(mixed.empty);
	assert_non_null(kc_ytree_get(mixed.root, "x-mine"));
	/* No file, nothing of ours: nothing to write. */
	merge(&nothing, NULL, NULL, 0, NULL);
	assert_int_equal(nothing.rc, 0);
	assert_true(nothing.empty);
	assert_false(nothing.changed);
	assert_int_equal(nothing.out.len, 0);
	kc_buf_free(&text);
	done(&ours), done(&none), done(&mixed), done(&nothing);
}

static void refused(const char *data, const char *why)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "ns") };
	struct kc_buf out = { 0 }, notes = { 0 };
	struct kc_err err = { "" };
	bool changed = true, empty = true;

	assert_int_equal(kc_kubeconfig_merge(data, strlen(data), e, 1, NULL, &out, &changed, &empty, &notes, &err), -1);
	if (!strstr(err.msg, why))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, why);
	assert_false(changed);
	assert_int_equal(out.len, 0);
	kc_buf_free(&out);
	kc_buf_free(&notes);
}

static void test_unusable_input_refused(void **state)
{
	size_t huge = KC_KUBECONFIG_MAX_BYTES + 1;
	char *big = malloc(huge + 1);
	struct kc_buf deep = { 0 };

	(void)state;
	refused("clusters: [\n", "line 2, column 1: not valid YAML");
	refused("- a\n- b\n", "top level is not a mapping");
	refused("a: &x {b: 1}\nc: *x\n", "line 2: an alias");
	refused("clusters: []\nusers: []\nclusters: []\n", "line 3: the key \"clusters\" appears twice");
	refused("a: 1\n---\nb: 2\n", "line 2: a second YAML document");
	refused("clusters: {a: 1}\n", "line 1: \"clusters\" is not a list");
	refused("current-context: [a]\n", "line 1: \"current-context\" is not a string");
	refused("? [a]\n: 1\n", "line 1: a mapping key that is not a string");
	refused("a: \"\\x01\xff\"\n", "not valid YAML text");
	memset(big, ' ', huge);
	big[huge] = '\0';
	refused(big, "more than the 1048576");
	for (int i = 0; i < KC_KUBECONFIG_MAX_DEPTH + 1; i++)
		kc_buf_puts(&deep, "[");
	refused(deep.data, "nested deeper than 32 levels");
	free(big);
	kc_buf_free(&deep);
}

static void test_bad_entries_refused(void **state)
{
	struct kc_merge_entry two[2] = { ENTRY("a", "https://a", "ns"), ENTRY("a", "https://b", "ns") };
	struct kc_merge_entry both[1] = { ENTRY("a", "https://a", "ns") };
	struct kc_buf out = { 0 }, notes = { 0 };
	struct kc_err err;
	bool changed, empty;

	(void)state;
	assert_int_equal(kc_kubeconfig_merge(NULL, 0, two, 2, NULL, &out, &changed, &empty, &notes, &err), -1);
	assert_string_equal(err.msg, "two entries of ours are named \"a\"");
	both[0].token = "t";
	assert_int_equal(kc_kubeconfig_merge(NULL, 0, both, 1, NULL, &out, &changed, &empty, &notes, &err), -1);
	assert_non_null(strstr(err.msg, "exactly one of a token file and a token"));
	both[0].token = NULL;
	both[0].name = "bad\xc0\xaf";
	assert_int_equal(kc_kubeconfig_merge(NULL, 0, both, 1, NULL, &out, &changed, &empty, &notes, &err), -1);
	assert_non_null(strstr(err.msg, "not valid UTF-8"));
	kc_buf_free(&out);
	kc_buf_free(&notes);
}

/* What the writer before markers wrote (helper/kubeconfig.c until it went). */
static void old_file(struct kc_buf *f)
{
	char *ca = kc_base64_encode(CA, sizeof(CA) - 1, false);

	kc_buf_printf(f,
		      "# Written by pam-kubeconfig on host for alice at login; tokens expire 2026-11-29T08:15:39Z.\n"
		      "# Replaced at each login and removed at the last logout: do not edit.\n"
		      "# pam-kubeconfig-host-id: host-id-1\n"
		      "apiVersion: v1\nkind: Config\nclusters:\n"
		      "- name: a\n  cluster:\n    server: https://a.example\n    certificate-authority-data: %s\n"
		      "- name: gone\n  cluster:\n    server: https://g.example\n    insecure-skip-tls-verify: true\n"
		      "contexts:\n- name: a\n  context:\n    cluster: a\n    user: a\n    namespace: ns\n"
		      "- name: gone\n  context:\n    cluster: gone\n    user: gone\n    namespace: ns\n"
		      "current-context: a\nusers:\n- name: a\n  user:\n    token: OLD-TOKEN-A\n"
		      "- name: gone\n  user:\n    token: OLD-TOKEN-GONE\n",
		      ca);
	free(ca);
}

static void test_old_format_upgraded(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "team-a") };
	struct kc_buf file = { 0 };
	struct result r, again;

	(void)state;
	old_file(&file);
	/* A key added by hand stays. */
	kc_buf_puts(&file, "preferences: {colors: true}\n");
	merge(&r, file.data, e, 1, NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.changed);
	assert_null(strstr(r.out.data, "OLD-TOKEN"));
	assert_null(strstr(r.out.data, "host-id"));
	assert_null(entry(r.root, "clusters", "gone"));
	assert_null(entry(r.root, "users", "gone"));
	assert_true(marked(r.root, "clusters", "a", "cluster"));
	assert_true(marked(r.root, "contexts", "a", "context"));
	assert_true(marked(r.root, "users", "a", "user"));
	assert_string_equal(field(r.root, "users", "a", "user", "tokenFile"), "/run/pam_kubeconfig/1000/a.token");
	assert_string_equal(field(r.root, "contexts", "a", "context", "namespace"), "team-a");
	assert_string_equal(current(r.root), "a");
	assert_non_null(kc_ytree_get(kc_ytree_get(r.root, "preferences"), "colors"));
	assert_int_equal(r.notes.len, 0);
	merge(&again, r.out.data, e, 1, NULL);
	assert_false(again.changed);
	kc_buf_free(&file);
	done(&again);
	done(&r);
}

static void test_old_format_keeps_foreign_entries(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "ns") };
	const char *file = "# Written by pam-kubeconfig on h for u at login; tokens expire 2026-11-29T08:00:00Z.\n"
			   "# pam-kubeconfig-host-id: abc\n"
			   "apiVersion: v1\nkind: Config\n"
			   "clusters:\n- name: a\n  cluster: {server: https://old, insecure-skip-tls-verify: true}\n"
			   "- name: mine\n  cluster: {server: https://mine, proxy-url: http://p}\n"
			   "users:\n- name: a\n  user: {token: OLD}\n- name: mine\n  user: {exec: {command: x}}\n";
	struct result r;

	(void)state;
	merge(&r, file, e, 1, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(field(r.root, "clusters", "mine", "cluster", "proxy-url"), "http://p");
	assert_non_null(entry(r.root, "users", "mine"));
	assert_null(field(r.root, "clusters", "a", "cluster", "insecure-skip-tls-verify"));
	assert_null(strstr(r.out.data, "OLD"));
	done(&r);
}

/* An old file after `kubectl config set-context --current --namespace=x`:
 * kubectl's key order, the header comment gone, the tokens still there. */
static const char *const OLD_REWRITTEN = "apiVersion: v1\n"
					 "clusters:\n"
					 "- cluster:\n"
					 "    certificate-authority-data: " CA_B64 "\n"
					 "    server: https://a.example\n"
					 "  name: a\n"
					 "- cluster:\n"
					 "    insecure-skip-tls-verify: true\n"
					 "    server: https://mine.example\n"
					 "  name: mine\n"
					 "contexts:\n"
					 "- context:\n"
					 "    cluster: a\n"
					 "    namespace: x\n"
					 "    user: a\n"
					 "  name: a\n"
					 "- context:\n"
					 "    cluster: mine\n"
					 "    user: mine\n"
					 "  name: mine\n"
					 "current-context: mine\n"
					 "kind: Config\n"
					 "preferences: {}\n"
					 "users:\n"
					 "- name: a\n"
					 "  user:\n"
					 "    token: OLD-TOKEN-A\n"
					 "- name: mine\n"
					 "  user:\n"
					 "    token: MY-OWN\n";

static void test_old_format_without_header_upgraded(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "team-a") };
	struct kc_buf text = { 0 };
	struct result r, lookalike;
	const char *user;

	(void)state;
	merge(&r, OLD_REWRITTEN, e, 1, NULL);
	assert_int_equal(r.rc, 0);
	assert_null(strstr(r.out.data, "OLD-TOKEN"));
	assert_true(marked(r.root, "clusters", "a", "cluster"));
	assert_true(marked(r.root, "contexts", "a", "context"));
	assert_true(marked(r.root, "users", "a", "user"));
	assert_string_equal(field(r.root, "users", "a", "user", "tokenFile"), "/run/pam_kubeconfig/1000/a.token");
	/* Not one of our names: someone else's, whatever its shape. */
	assert_string_equal(field(r.root, "users", "mine", "user", "token"), "MY-OWN");
	assert_non_null(entry(r.root, "clusters", "mine"));
	assert_string_equal(current(r.root), "mine");
	assert_int_equal(r.notes.len, 0);

	/* A file that holds a marker is not an old one: an unmarked entry of our
	 * name there is someone's, even in the old shape. */
	user = strstr(OLD_REWRITTEN, "users:\n");
	kc_buf_append(&text, OLD_REWRITTEN, (size_t)(user - OLD_REWRITTEN));
	kc_buf_puts(&text, "users:\n- name: b\n  user:\n    extensions:\n    - name: pam-kubeconfig\n"
			   "      extension: {}\n    tokenFile: /x\n");
	kc_buf_puts(&text, user + strlen("users:\n"));
	merge(&lookalike, text.data, e, 1, NULL);
	assert_string_equal(field(lookalike.root, "users", "a", "user", "token"), "OLD-TOKEN-A");
	assert_false(marked(lookalike.root, "users", "a", "user"));
	assert_null(entry(lookalike.root, "users", "b")); /* b is marked and not ours any more */
	assert_non_null(strstr(lookalike.notes.data, "user \"a\" has no pam-kubeconfig marker"));
	kc_buf_free(&text);
	done(&lookalike);
	done(&r);
}

static void test_inline_token_and_back(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "ns") };
	struct result file, inl, back;

	(void)state;
	merge(&file, NULL, e, 1, NULL);
	e[0].token_file = NULL;
	e[0].token = "eyJhbGciOi.J9.sig";
	merge(&inl, file.out.data, e, 1, NULL);
	assert_true(inl.out.secret);
	assert_string_equal(field(inl.root, "users", "a", "user", "token"), "eyJhbGciOi.J9.sig");
	assert_null(field(inl.root, "users", "a", "user", "tokenFile"));
	e[0].token = NULL;
	e[0].token_file = "/run/pam_kubeconfig/1000/a.token";
	merge(&back, inl.out.data, e, 1, NULL);
	assert_null(strstr(back.out.data, "eyJhbGciOi"));
	assert_string_equal(back.out.data, file.out.data);
	done(&file), done(&inl), done(&back);
}

static void test_insecure_and_back(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("a", "https://a.example", "ns") };
	struct result file, ins, back;

	(void)state;
	merge(&file, NULL, e, 1, NULL);
	e[0].ca_pem = NULL;
	e[0].ca_pem_len = 0;
	e[0].insecure_skip_tls_verify = true;
	merge(&ins, file.out.data, e, 1, NULL);
	assert_null(field(ins.root, "clusters", "a", "cluster", "certificate-authority-data"));
	assert_string_equal(field(ins.root, "clusters", "a", "cluster", "insecure-skip-tls-verify"), "true");
	assert_int_equal(
		kc_ytree_get(kc_ytree_get(entry(ins.root, "clusters", "a"), "cluster"), "insecure-skip-tls-verify")
			->style,
		KC_YPLAIN);
	e[0].ca_pem = CA;
	e[0].ca_pem_len = sizeof(CA) - 1;
	e[0].insecure_skip_tls_verify = false;
	merge(&back, ins.out.data, e, 1, NULL);
	assert_null(field(back.root, "clusters", "a", "cluster", "insecure-skip-tls-verify"));
	assert_string_equal(field(back.root, "clusters", "a", "cluster", "certificate-authority-data"), CA_B64);
	done(&file), done(&ins), done(&back);
}

static void test_names_that_yaml_would_retype(void **state)
{
	struct kc_merge_entry e[1] = { ENTRY("yes", "https://a.example", "0123") };
	struct result r;

	(void)state;
	merge(&r, NULL, e, 1, NULL);
	assert_non_null(strstr(r.out.data, "  name: 'yes'\n"));
	assert_non_null(strstr(r.out.data, "namespace: '0123'\n"));
	assert_string_equal(current(r.root), "yes");
	done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_login),
		cmocka_unit_test(test_second_login_unchanged),
		cmocka_unit_test(test_cluster_added_removed_updated),
		cmocka_unit_test(test_user_context_and_namespace_kept),
		cmocka_unit_test(test_other_tools_entries_kept),
		cmocka_unit_test(test_marker_removed_left_alone),
		cmocka_unit_test(test_clash_with_others),
		cmocka_unit_test(test_current_context_in_others_kept),
		cmocka_unit_test(test_remove_on_logout),
		cmocka_unit_test(test_unusable_input_refused),
		cmocka_unit_test(test_bad_entries_refused),
		cmocka_unit_test(test_old_format_upgraded),
		cmocka_unit_test(test_old_format_keeps_foreign_entries),
		cmocka_unit_test(test_old_format_without_header_upgraded),
		cmocka_unit_test(test_inline_token_and_back),
		cmocka_unit_test(test_insecure_and_back),
		cmocka_unit_test(test_names_that_yaml_would_retype),
		cmocka_unit_test(test_others_read_leniently),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

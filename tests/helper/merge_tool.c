/* For tests only: runs the kubeconfig merge on a real file, so the real kubectl
 * and awscli can be run against what it writes.
 *   kc-merge FILE [OTHERS] < entries.json
 * entries.json: [{"name", "server", "ca_file" | "insecure": true, "namespace",
 * "token_file" | "token"}]. Writes FILE when the bytes change (removes it when
 * the list is empty and nothing else is left), prints
 * {"changed": B, "empty": B, "notes": [...]} and exits 0; exits 1 with the
 * merge's error on stderr when it refuses the file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/fileio.h"
#include "asuser/kubeconfig_merge.h"
#include "asuser/kubeconfig_names.h"

#define MAX_ENTRIES 64

static int read_file(const char *path, struct kc_buf *out, bool *exists)
{
	char *copy = strdup(path), *copy2 = strdup(path);
	struct kc_err err;
	int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	rc = dir < 0 ? -1 : kc_read_at(dir, basename(copy2), 16 * 1024 * 1024, out, NULL, &err);
	if (rc < 0)
		fprintf(stderr, "kc-merge: %s: %s\n", path, dir < 0 ? strerror(errno) : err.msg);
	*exists = rc == 0;
	if (dir >= 0)
		close(dir);
	free(copy);
	free(copy2);
	return rc < 0 ? -1 : 0;
}

static int write_file(const char *path, const struct kc_buf *data, bool remove)
{
	char *copy = strdup(path), *copy2 = strdup(path);
	struct kc_write_opts o = { .mode = 0600, .uid = KC_KEEP_OWNER, .gid = (gid_t)-1 };
	struct kc_err err = { "" };
	int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1;

	if (dir >= 0 && remove)
		rc = unlinkat(dir, basename(copy2), 0) == 0 || errno == ENOENT ? 0 : -1;
	else if (dir >= 0)
		rc = kc_write_at(dir, basename(copy2), data->data, data->len, &o, &err);
	if (rc != 0)
		fprintf(stderr, "kc-merge: cannot write %s: %s\n", path, err.msg[0] ? err.msg : strerror(errno));
	if (dir >= 0)
		close(dir);
	free(copy);
	free(copy2);
	return rc;
}

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_entries(json_t *list, struct kc_merge_entry *e, struct kc_buf *cas, size_t *n)
{
	size_t i;
	json_t *o;

	if (!json_is_array(list) || json_array_size(list) > MAX_ENTRIES) {
		fprintf(stderr, "kc-merge: stdin: a JSON list of at most %d entries\n", MAX_ENTRIES);
		return -1;
	}
	json_array_foreach(list, i, o)
	{
		const char *ca = str(o, "ca_file");
		bool exists;

		e[i].name = str(o, "name");
		e[i].server = str(o, "server");
		e[i].sa_namespace = str(o, "namespace");
		e[i].token_file = str(o, "token_file");
		e[i].token = str(o, "token");
		e[i].insecure_skip_tls_verify = json_is_true(json_object_get(o, "insecure"));
		if (ca && (read_file(ca, &cas[i], &exists) < 0 || !exists))
			return -1;
		e[i].ca_pem = (const unsigned char *)cas[i].data;
		e[i].ca_pem_len = cas[i].len;
	}
	*n = json_array_size(list);
	return 0;
}

static int load_others(const char *path, struct kc_kubeconfig_names *names)
{
	struct kc_buf data = { 0 };
	struct kc_err err;
	bool exists = false;
	int rc = 0;

	memset(names, 0, sizeof(*names));
	if (path && read_file(path, &data, &exists) < 0)
		return -1;
	if (exists && kc_kubeconfig_names_parse(data.data, data.len, names, &err) < 0) {
		fprintf(stderr, "kc-merge: %s: %s\n", path, err.msg);
		rc = -1;
	}
	names->label = "~/.kube/config";
	kc_buf_free(&data);
	return rc;
}

static void report(bool changed, bool empty, const struct kc_buf *notes)
{
	json_t *o = json_pack("{s:b, s:b, s:[]}", "changed", changed, "empty", empty, "notes");
	const char *p = notes->data ? notes->data : "";

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		json_array_append_new(json_object_get(o, "notes"), json_stringn(p, len));
		p += len + (nl != NULL);
	}
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
}

int main(int argc, char **argv)
{
	struct kc_merge_entry entries[MAX_ENTRIES] = { 0 };
	struct kc_buf cas[MAX_ENTRIES] = { 0 }, data = { 0 }, out = { 0 }, notes = { 0 };
	struct kc_kubeconfig_names others = { 0 };
	struct kc_err err;
	json_error_t jerr;
	json_t *list;
	size_t n = 0;
	bool exists, changed, empty;
	int rc = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: kc-merge FILE [OTHERS] < entries.json\n");
		return 2;
	}
	list = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
	if (!list) {
		fprintf(stderr, "kc-merge: stdin: %s\n", jerr.text);
		return 2;
	}
	if (load_entries(list, entries, cas, &n) < 0 || load_others(argc == 3 ? argv[2] : NULL, &others) < 0 ||
	    read_file(argv[1], &data, &exists) < 0)
		goto out;
	if (kc_kubeconfig_merge(data.data, data.len, entries, n, &others, &out, &changed, &empty, &notes, &err) < 0) {
		fprintf(stderr, "kc-merge: %s: %s\n", argv[1], err.msg);
		goto out;
	}
	if ((changed || (empty && !n && exists)) && write_file(argv[1], &out, empty && !n) < 0)
		goto out;
	report(changed, empty, &notes);
	rc = 0;
out:
	for (size_t i = 0; i < MAX_ENTRIES; i++)
		kc_buf_free(&cas[i]);
	kc_buf_free(&data);
	kc_buf_free(&out);
	kc_buf_free(&notes);
	kc_kubeconfig_names_free(&others);
	json_decref(list);
	return rc;
}

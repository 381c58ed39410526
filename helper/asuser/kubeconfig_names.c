/* The names another kubeconfig file (the user's ~/.kube/config) defines: for
 * its clash notes and for a current-context that names a context of that file.
 *
 * That file is the user's, written by hand or by any tool, and never written
 * here: it is read as kubectl reads it, not with the merge's strict reader.
 * Anchors and aliases are fine (an alias where a name would be counts as no
 * name), and only the first document counts. The reader walks libyaml's
 * events with a depth counter, so it holds one name at a time, whatever the
 * file's size or nesting. */
#include "asuser/kubeconfig_names.h"
#include "asuser/kubeconfig_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* libyaml keeps a state per open level: a file of brackets must not grow it
 * without end (a kubeconfig's names sit 3 levels down). */
#define NAMES_MAX_DEPTH 64

struct names_reader {
	yaml_parser_t parser;
	yaml_event_t ev; /* the current event; ev_live when it must be deleted */
	bool ev_live;
	struct kc_err *err;
};

static int next_event(struct names_reader *r)
{
	if (r->ev_live)
		yaml_event_delete(&r->ev);
	r->ev_live = false;
	if (!yaml_parser_parse(&r->parser, &r->ev)) {
		kc_seterr(r->err, "line %zu: %s; kubectl will not read it either", r->parser.problem_mark.line + 1,
			  r->parser.problem ? r->parser.problem : "not YAML");
		return -1;
	}
	r->ev_live = true;
	return 0;
}

/* Consumes the node whose first event is current (a scalar, an alias, or a
 * whole mapping or sequence). */
static int skip_node(struct names_reader *r)
{
	size_t depth = 0;

	for (;;) {
		switch (r->ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (++depth > NAMES_MAX_DEPTH)
				return kc_seterr(r->err, "line %zu: nested more than %d levels",
						 r->ev.start_mark.line + 1, NAMES_MAX_DEPTH),
				       -1;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT: depth--; break;
		default: break;
		}
		if (depth == 0)
			return 0;
		if (next_event(r) < 0)
			return -1;
	}
}

/* The current event as a plain string: a scalar without NUL bytes (an
 * untagged null counts as none). NULL otherwise. */
static const char *scalar(const struct names_reader *r)
{
	const yaml_event_t *ev = &r->ev;
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->type != YAML_SCALAR_EVENT || strlen(v) != ev->data.scalar.length)
		return NULL;
	if (ev->data.scalar.plain_implicit && !ev->data.scalar.tag &&
	    (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")))
		return NULL;
	return v;
}

static int add_name(char ***names, size_t *n, const char *name)
{
	char **grown = reallocarray(*names, *n + 1, sizeof(**names));

	if (!grown)
		return -1;
	*names = grown;
	if (!((*names)[*n] = strdup(name)))
		return -1;
	(*n)++;
	return 0;
}

/* One entry of contexts:, clusters: or users: (current event: its first);
 * collects its name: when that is a string. */
static int read_entry(struct names_reader *r, char ***names, size_t *n)
{
	if (r->ev.type != YAML_MAPPING_START_EVENT)
		return skip_node(r);
	for (;;) {
		bool is_name;

		if (next_event(r) < 0)
			return -1;
		if (r->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		is_name = scalar(r) && !strcmp(scalar(r), "name");
		if (skip_node(r) < 0 || next_event(r) < 0)
			return -1;
		if (is_name && scalar(r)) {
			if (add_name(names, n, scalar(r)) < 0)
				return kc_seterr(r->err, "out of memory while reading it"), -1;
		} else if (skip_node(r) < 0) {
			return -1;
		}
	}
}

/* The value of a top-level key (current event: its first). */
static int read_value(struct names_reader *r, const char *key, struct kc_kubeconfig_names *out)
{
	char ***names = NULL;
	size_t *n = NULL;

	if (!strcmp(key, "current-context")) {
		free(out->current_context);
		out->current_context = NULL;
		if (scalar(r) && !(out->current_context = strdup(scalar(r))))
			return kc_seterr(r->err, "out of memory while reading it"), -1;
		return skip_node(r);
	}
	if (!strcmp(key, "contexts"))
		names = &out->contexts, n = &out->n_contexts;
	else if (!strcmp(key, "clusters"))
		names = &out->clusters, n = &out->n_clusters;
	else if (!strcmp(key, "users"))
		names = &out->users, n = &out->n_users;
	if (!names || r->ev.type != YAML_SEQUENCE_START_EVENT)
		return skip_node(r);
	for (;;) {
		if (next_event(r) < 0)
			return -1;
		if (r->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (read_entry(r, names, n) < 0)
			return -1;
	}
}

static int read_top(struct names_reader *r, struct kc_kubeconfig_names *out)
{
	do {
		if (next_event(r) < 0)
			return -1;
	} while (r->ev.type == YAML_STREAM_START_EVENT || r->ev.type == YAML_DOCUMENT_START_EVENT);
	if (r->ev.type == YAML_STREAM_END_EVENT || (r->ev.type == YAML_SCALAR_EVENT && !scalar(r)))
		return 0; /* no document, or only a null: no names */
	if (r->ev.type != YAML_MAPPING_START_EVENT)
		return kc_seterr(r->err, "it is not a kubeconfig (its top level is not a mapping)"), -1;
	for (;;) {
		char key[32] = "";

		if (next_event(r) < 0)
			return -1;
		if (r->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (scalar(r) && strlen(scalar(r)) < sizeof(key))
			snprintf(key, sizeof(key), "%s", scalar(r));
		if (skip_node(r) < 0 || next_event(r) < 0 || read_value(r, key, out) < 0)
			return -1;
	}
}

int kc_kubeconfig_names_parse(const char *data, size_t len, struct kc_kubeconfig_names *out, struct kc_err *err)
{
	struct names_reader r = { .err = err };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!data || len == 0)
		return 0;
	if (!yaml_parser_initialize(&r.parser))
		return kc_seterr(err, "out of memory while reading it"), -1;
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)data, len);
	rc = read_top(&r, out);
	if (r.ev_live)
		yaml_event_delete(&r.ev);
	yaml_parser_delete(&r.parser);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void kc_kubeconfig_names_free(struct kc_kubeconfig_names *names)
{
	free_names(names->contexts, names->n_contexts);
	free_names(names->clusters, names->n_clusters);
	free_names(names->users, names->n_users);
	free(names->current_context);
	memset(names, 0, sizeof(*names));
}

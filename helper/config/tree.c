/* The config's YAML, read strictly into a tree with marks (see tree.h). */
#include "config/tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 2000000u

void cfg_node_free(struct cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		cfg_node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

int cfg_fail_at(struct cfg_ctx *c, struct kc_mark m, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kc_seterr(c->err, "%s:%u:%u: %s", c->path, m.line, m.col, msg);
	return -1;
}

static struct kc_mark mark_of(yaml_mark_t m)
{
	struct kc_mark k = { (unsigned)m.line + 1, (unsigned)m.column + 1 };
	return k;
}

static int node_push(struct cfg_node *parent, struct cfg_node *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		/* an array of pointers to nodes */
		struct cfg_node **p = realloc(parent->items, cap * sizeof(*p)); // NOLINT(bugprone-sizeof-expression)

		if (!p)
			return -1;
		parent->items = p;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

static void syntax_error(struct cfg_ctx *c, const yaml_parser_t *p)
{
	cfg_fail_at(c, mark_of(p->problem_mark), "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown",
		    p->context ? " " : "", p->context ? p->context : "");
}

/* Reads one node (and its children) from the parser; the event that starts it
 * has been read into ev. */
static struct cfg_node *build(struct cfg_ctx *c, yaml_parser_t *p, yaml_event_t *ev, int depth)
{
	struct cfg_node *n;

	if (ev->type == YAML_ALIAS_EVENT) {
		cfg_fail_at(c, mark_of(ev->start_mark), "YAML aliases (*name) are not supported; write the value out");
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		cfg_fail_at(c, mark_of(ev->start_mark), "nested more than %d levels deep", MAX_DEPTH);
		return NULL;
	}
	if (++c->nodes > MAX_NODES) {
		cfg_fail_at(c, mark_of(ev->start_mark), "more than %u values in one file", MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		cfg_fail_at(c, mark_of(ev->start_mark), "out of memory");
		return NULL;
	}
	n->mark = mark_of(ev->start_mark);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = CFG_SCALAR;
		if (strlen((char *)ev->data.scalar.value) != ev->data.scalar.length) {
			cfg_fail_at(c, n->mark, "a value contains a NUL byte");
			goto fail;
		}
		n->value = strdup((char *)ev->data.scalar.value);
		n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (!n->value)
			goto fail;
		return n;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		yaml_event_type_t end =
			ev->type == YAML_MAPPING_START_EVENT ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

		n->kind = ev->type == YAML_MAPPING_START_EVENT ? CFG_MAP : CFG_SEQ;
		for (;;) {
			yaml_event_t child_ev;
			struct cfg_node *child;

			if (!yaml_parser_parse(p, &child_ev)) {
				syntax_error(c, p);
				goto fail;
			}
			if (child_ev.type == end) {
				yaml_event_delete(&child_ev);
				return n;
			}
			child = build(c, p, &child_ev, depth + 1);
			yaml_event_delete(&child_ev);
			if (!child)
				goto fail;
			if (node_push(n, child) < 0) {
				cfg_node_free(child);
				goto fail;
			}
		}
	}
	default: cfg_fail_at(c, n->mark, "unexpected YAML event"); goto fail;
	}
fail:
	cfg_node_free(n);
	return NULL;
}

struct cfg_node *cfg_tree_parse(struct cfg_ctx *c, const char *data, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct cfg_node *root = NULL;
	int state = 0; /* 0 before the document, 1 after its root */

	if (!yaml_parser_initialize(&p)) {
		kc_seterr(c->err, "%s: out of memory", c->path);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(c, &p);
			goto fail;
		}
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT: break;
		case YAML_DOCUMENT_START_EVENT:
			if (root) {
				cfg_fail_at(c, mark_of(ev.start_mark),
					    "a second YAML document; the config is one document");
				yaml_event_delete(&ev);
				goto fail;
			}
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			yaml_parser_delete(&p);
			if (!root) {
				struct kc_mark m = { 1, 1 };
				cfg_fail_at(c, m, "the file is empty; see pam_kubeconfig.yaml(5) for the format");
			}
			return root;
		default:
			if (state == 0) {
				root = build(c, &p, &ev, 0);
				state = 1;
				if (!root) {
					yaml_event_delete(&ev);
					goto fail;
				}
			}
			break;
		}
		yaml_event_delete(&ev);
	}
fail:
	yaml_parser_delete(&p);
	cfg_node_free(root);
	return NULL;
}

/* ---- typed access with strict checks ------------------------------------ */

const char *cfg_kind_name(enum cfg_kind k)
{
	return k == CFG_MAP ? "a mapping" : k == CFG_SEQ ? "a list" : "a single value";
}

int cfg_check_keys(struct cfg_ctx *c, const struct cfg_node *map, const char *what, const char *const allowed[])
{
	if (map->kind != CFG_MAP)
		return cfg_fail_at(c, map->mark, "%s must be a mapping of key: value, not %s", what,
				   cfg_kind_name(map->kind));
	for (size_t i = 0; i < map->n; i += 2) {
		const struct cfg_node *k = map->items[i];
		bool known = false;

		if (k->kind != CFG_SCALAR)
			return cfg_fail_at(c, k->mark, "keys in %s must be plain words", what);
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(map->items[j]->value, k->value) == 0)
				return cfg_fail_at(c, k->mark, "duplicate key '%s' in %s (first at line %u); keep one",
						   k->value, what, map->items[j]->mark.line);
		for (size_t j = 0; allowed[j]; j++)
			if (strcmp(allowed[j], k->value) == 0)
				known = true;
		if (!known) {
			char list[512] = "";
			size_t off = 0;

			for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "",
							allowed[j]);
			return cfg_fail_at(c, k->mark, "unknown key '%s' in %s; expected one of: %s", k->value, what,
					   list);
		}
	}
	return 0;
}

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->items[i]->value, key) == 0)
			return map->items[i + 1];
	return NULL;
}

struct kc_mark cfg_mark_of(const struct cfg_node *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->items[i]->value, key) == 0)
			return map->items[i + 1]->mark;
	return map->mark;
}

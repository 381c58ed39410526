/* A strict YAML reader into a tree that keeps every key, value, style and tag,
 * and a writer back through libyaml's emitter: what the kubeconfig merge edits
 * files of other tools with. Runs as the user; nothing here holds a secret of
 * the helper's, though a value read may be the user's token (wiped on free). */
#include "asuser/ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define MAX_NODES 100000

struct parse {
	yaml_parser_t parser;
	struct kc_err *err;
	size_t nodes;
};

static struct kc_ynode *node_new(enum kc_ynode_kind kind)
{
	struct kc_ynode *n = calloc(1, sizeof(*n));

	if (n)
		n->kind = kind;
	return n;
}

void kc_ytree_free(struct kc_ynode *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < node->n; i++)
		kc_ytree_free(node->items[i]);
	free(node->items);
	if (node->value)
		explicit_bzero(node->value, node->len);
	free(node->value);
	free(node->tag);
	free(node);
}

static int push_raw(struct kc_ynode *coll, struct kc_ynode *item)
{
	if (coll->n == coll->cap) {
		size_t cap = coll->cap ? coll->cap * 2 : 8;
		struct kc_ynode **items = reallocarray(coll->items, cap, sizeof(struct kc_ynode *));

		if (!items)
			return -1;
		coll->items = items;
		coll->cap = cap;
	}
	coll->items[coll->n++] = item;
	return 0;
}

/* Printable ASCII for a message: anything else becomes '?', long text is cut. */
void kc_ytree_printable(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 4 < size; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (o + 4 >= size && len > o)
		memcpy(out + o, "...", 3), o += 3;
	out[o] = '\0';
}

static int next(struct parse *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(&p->parser, ev))
		return 0;
	if (p->parser.error == YAML_MEMORY_ERROR)
		kc_seterr(p->err, "out of memory while reading it");
	else if (p->parser.error == YAML_READER_ERROR)
		kc_seterr(p->err, "byte %zu: not valid YAML text (%s)", p->parser.problem_offset,
			  p->parser.problem ? p->parser.problem : "unreadable");
	else
		kc_seterr(p->err, "line %zu, column %zu: not valid YAML (%s)", p->parser.problem_mark.line + 1,
			  p->parser.problem_mark.column + 1, p->parser.problem ? p->parser.problem : "syntax error");
	return -1;
}

static int key_cmp(const void *a, const void *b)
{
	const struct kc_ynode *x = *(struct kc_ynode *const *)a, *y = *(struct kc_ynode *const *)b;
	int c = memcmp(x->value, y->value, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* A key twice in one mapping is refused, as the project's config is: which one
 * a reader keeps differs between YAML libraries. */
static int check_duplicates(struct parse *p, const struct kc_ynode *map)
{
	size_t n = map->n / 2;
	struct kc_ynode **keys;
	int rc = 0;

	if (n < 2)
		return 0;
	keys = calloc(n, sizeof(struct kc_ynode *));
	if (!keys) {
		kc_seterr(p->err, "out of memory while reading it");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = map->items[2 * i];
	qsort(keys, n, sizeof(struct kc_ynode *), key_cmp);
	for (size_t i = 1; i < n && rc == 0; i++) {
		if (key_cmp(&keys[i - 1], &keys[i]) == 0) {
			char text[64];

			kc_ytree_printable(keys[i]->value, keys[i]->len, text, sizeof(text));
			kc_seterr(p->err, "line %u: the key \"%s\" appears twice in one mapping",
				  keys[i]->line > keys[i - 1]->line ? keys[i]->line : keys[i - 1]->line, text);
			rc = -1;
		}
	}
	free(keys);
	return rc;
}

static int check_key(struct parse *p, const struct kc_ynode *key)
{
	if (key->kind != KC_YSCALAR) {
		kc_seterr(p->err, "line %u: a mapping key that is not a string", key->line);
		return -1;
	}
	if (kc_ytree_is_null(key)) {
		kc_seterr(p->err, "line %u: an empty mapping key", key->line);
		return -1;
	}
	return 0;
}

static struct kc_ynode *parse_node(struct parse *p, yaml_event_t *ev, unsigned depth);

static int parse_items(struct parse *p, struct kc_ynode *coll, yaml_event_type_t end, unsigned depth)
{
	for (;;) {
		yaml_event_t ev;
		struct kc_ynode *item;

		if (next(p, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return coll->kind == KC_YMAP ? check_duplicates(p, coll) : 0;
		}
		item = parse_node(p, &ev, depth);
		if (!item)
			return -1;
		if (coll->kind == KC_YMAP && coll->n % 2 == 0 && check_key(p, item) < 0) {
			kc_ytree_free(item);
			return -1;
		}
		if (push_raw(coll, item) < 0) {
			kc_ytree_free(item);
			kc_seterr(p->err, "out of memory while reading it");
			return -1;
		}
	}
}

static struct kc_ynode *scalar_from(const yaml_event_t *ev)
{
	struct kc_ynode *n = node_new(KC_YSCALAR);

	if (!n)
		return NULL;
	n->len = ev->data.scalar.length;
	n->value = malloc(n->len + 1);
	n->style = (enum kc_ystyle)ev->data.scalar.style;
	if (ev->data.scalar.tag)
		n->tag = strdup((const char *)ev->data.scalar.tag);
	if (!n->value || (ev->data.scalar.tag && !n->tag)) {
		kc_ytree_free(n);
		return NULL;
	}
	memcpy(n->value, ev->data.scalar.value, n->len);
	n->value[n->len] = '\0';
	return n;
}

static struct kc_ynode *collection_from(struct parse *p, const yaml_event_t *ev, unsigned depth)
{
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	const yaml_char_t *tag = map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	struct kc_ynode *n;

	if (depth >= KC_YTREE_MAX_DEPTH) {
		kc_seterr(p->err, "line %zu: nested deeper than %d levels", ev->start_mark.line + 1,
			  KC_YTREE_MAX_DEPTH);
		return NULL;
	}
	n = node_new(map ? KC_YMAP : KC_YSEQ);
	if (n && tag && !(n->tag = strdup((const char *)tag))) {
		kc_ytree_free(n);
		n = NULL;
	}
	if (!n)
		kc_seterr(p->err, "out of memory while reading it");
	return n;
}

/* Takes ev (deletes it). */
static struct kc_ynode *parse_node(struct parse *p, yaml_event_t *ev, unsigned depth)
{
	struct kc_ynode *n = NULL;
	unsigned line = (unsigned)ev->start_mark.line + 1;

	if (++p->nodes > MAX_NODES) {
		kc_seterr(p->err, "line %u: more than %d values", line, MAX_NODES);
	} else if (ev->type == YAML_SCALAR_EVENT) {
		if (!(n = scalar_from(ev)))
			kc_seterr(p->err, "out of memory while reading it");
	} else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
		n = collection_from(p, ev, depth);
	} else if (ev->type == YAML_ALIAS_EVENT) {
		kc_seterr(p->err, "line %u: an alias (*name); kubeconfig files use none, write the value out in full",
			  line);
	} else {
		kc_seterr(p->err, "line %u: unexpected YAML structure", line);
	}
	if (n)
		n->line = line;
	if (n && n->kind != KC_YSCALAR) {
		yaml_event_type_t end = n->kind == KC_YMAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

		yaml_event_delete(ev);
		if (parse_items(p, n, end, depth + 1) < 0) {
			kc_ytree_free(n);
			return NULL;
		}
		return n;
	}
	yaml_event_delete(ev);
	return n;
}

/* Expects the next event to be of type want; a second document gets its own
 * message. */
static int expect(struct parse *p, yaml_event_type_t want)
{
	yaml_event_t ev;
	int rc = 0;

	if (next(p, &ev) < 0)
		return -1;
	if (ev.type != want) {
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			kc_seterr(p->err, "line %zu: a second YAML document; a kubeconfig holds one",
				  ev.start_mark.line + 1);
		else
			kc_seterr(p->err, "line %zu: unexpected YAML structure", ev.start_mark.line + 1);
		rc = -1;
	}
	yaml_event_delete(&ev);
	return rc;
}

static int parse_stream(struct parse *p, struct kc_ynode **root)
{
	yaml_event_t ev;

	if (expect(p, YAML_STREAM_START_EVENT) < 0 || next(p, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev); /* the document start */
	if (next(p, &ev) < 0)
		return -1;
	*root = parse_node(p, &ev, 0);
	if (!*root)
		return -1;
	if (expect(p, YAML_DOCUMENT_END_EVENT) < 0 || expect(p, YAML_STREAM_END_EVENT) < 0)
		return -1;
	return 0;
}

int kc_ytree_parse(const char *data, size_t len, struct kc_ynode **root, struct kc_err *err)
{
	struct parse p = { .err = err };
	int rc;

	*root = NULL;
	if (len > KC_YTREE_MAX_BYTES) {
		kc_seterr(err, "it is %zu bytes, more than the %d a kubeconfig may have here", len, KC_YTREE_MAX_BYTES);
		return -1;
	}
	if (!yaml_parser_initialize(&p.parser)) {
		kc_seterr(err, "out of memory while reading it");
		return -1;
	}
	yaml_parser_set_input_string(&p.parser, (const unsigned char *)(data ? data : ""), len);
	rc = parse_stream(&p, root);
	yaml_parser_delete(&p.parser);
	if (rc < 0) {
		kc_ytree_free(*root);
		*root = NULL;
		return -1;
	}
	if (*root && kc_ytree_is_null(*root)) {
		kc_ytree_free(*root);
		*root = NULL;
	}
	return 0;
}

bool kc_ytree_is(const struct kc_ynode *node, const char *s)
{
	return node && node->kind == KC_YSCALAR && node->len == strlen(s) && memcmp(node->value, s, node->len) == 0;
}

bool kc_ytree_is_null(const struct kc_ynode *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };

	if (!node || node->kind != KC_YSCALAR || node->tag || node->style != KC_YPLAIN)
		return false;
	for (size_t i = 0; nulls[i]; i++)
		if (kc_ytree_is(node, nulls[i]))
			return true;
	return false;
}

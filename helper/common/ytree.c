/* The one YAML reader (see ytree.h): libyaml's events into a tree with marks,
 * within the caller's limits. Nothing is followed or expanded: an alias is
 * refused, or kept as a node of its own where the caller allows it. */
#include "common/ytree.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

struct reader {
	yaml_parser_t parser;
	const struct kc_ytree_limits *lim;
	struct kc_ytree_error *e;
	size_t nodes;
};

static struct kc_mark mark_of(yaml_mark_t m)
{
	struct kc_mark k = { (unsigned)m.line + 1, (unsigned)m.column + 1 };

	return k;
}

static int fail(struct reader *r, enum kc_ytree_fault fault, struct kc_mark at)
{
	r->e->fault = fault;
	r->e->mark = at;
	return -1;
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

static int next(struct reader *r, yaml_event_t *ev)
{
	const yaml_parser_t *p = &r->parser;

	if (yaml_parser_parse(&r->parser, ev))
		return 0;
	r->e->problem = p->problem;
	r->e->context = p->context;
	r->e->offset = p->problem_offset;
	return fail(r,
		    p->error == YAML_MEMORY_ERROR   ? KC_YTREE_YAML_NOMEM
		    : p->error == YAML_READER_ERROR ? KC_YTREE_NOT_TEXT
						    : KC_YTREE_SYNTAX,
		    mark_of(p->problem_mark));
}

static int key_cmp(const void *a, const void *b)
{
	const struct kc_ynode *x = *(struct kc_ynode *const *)a, *y = *(struct kc_ynode *const *)b;
	int c = memcmp(x->value, y->value, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Which of two equal keys a reader keeps differs between YAML libraries. */
static int check_duplicates(struct reader *r, const struct kc_ynode *map)
{
	size_t n = map->n / 2;
	struct kc_ynode **keys;
	int rc = 0;

	if (n < 2)
		return 0;
	keys = calloc(n, sizeof(struct kc_ynode *));
	if (!keys)
		return fail(r, KC_YTREE_NOMEM, map->mark);
	for (size_t i = 0; i < n; i++)
		keys[i] = map->items[2 * i];
	qsort(keys, n, sizeof(struct kc_ynode *), key_cmp);
	for (size_t i = 1; i < n && rc == 0; i++) {
		if (key_cmp(&keys[i - 1], &keys[i]) == 0) {
			const struct kc_ynode *later =
				keys[i]->mark.line > keys[i - 1]->mark.line ? keys[i] : keys[i - 1];

			kc_ytree_printable(later->value, later->len, r->e->key, sizeof(r->e->key));
			rc = fail(r, KC_YTREE_KEY_TWICE, later->mark);
		}
	}
	free(keys);
	return rc;
}

static int check_key(struct reader *r, const struct kc_ynode *key)
{
	if (key->kind != KC_YSCALAR)
		return fail(r, KC_YTREE_KEY_NOT_STRING, key->mark);
	if (kc_ytree_is_null(key))
		return fail(r, KC_YTREE_KEY_EMPTY, key->mark);
	return 0;
}

static struct kc_ynode *read_node(struct reader *r, yaml_event_t *ev, unsigned depth);

static int read_items(struct reader *r, struct kc_ynode *coll, yaml_event_type_t end, unsigned depth)
{
	bool strict_keys = coll->kind == KC_YMAP && (r->lim->flags & KC_YTREE_STRING_KEYS);

	for (;;) {
		yaml_event_t ev;
		struct kc_ynode *item;

		if (next(r, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return strict_keys ? check_duplicates(r, coll) : 0;
		}
		item = read_node(r, &ev, depth);
		if (!item)
			return -1;
		if (strict_keys && coll->n % 2 == 0 && check_key(r, item) < 0) {
			kc_ytree_free(item);
			return -1;
		}
		if (push_raw(coll, item) < 0) {
			kc_ytree_free(item);
			return fail(r, KC_YTREE_NOMEM, coll->mark);
		}
	}
}

static struct kc_ynode *node_new(enum kc_ynode_kind kind, const yaml_char_t *tag)
{
	struct kc_ynode *n = calloc(1, sizeof(*n));

	if (n)
		n->kind = kind;
	if (n && tag && !(n->tag = strdup((const char *)tag))) {
		free(n);
		n = NULL;
	}
	return n;
}

static struct kc_ynode *scalar_from(struct reader *r, const yaml_event_t *ev, struct kc_mark at)
{
	struct kc_ynode *n;

	if ((r->lim->flags & KC_YTREE_NO_NUL) && strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
		return fail(r, KC_YTREE_NUL, at), NULL;
	n = node_new(KC_YSCALAR, ev->data.scalar.tag);
	if (n) {
		n->len = ev->data.scalar.length;
		n->style = (enum kc_ystyle)ev->data.scalar.style;
		n->value = malloc(n->len + 1);
	}
	if (!n || !n->value) {
		kc_ytree_free(n);
		return fail(r, KC_YTREE_NOMEM, at), NULL;
	}
	memcpy(n->value, ev->data.scalar.value, n->len);
	n->value[n->len] = '\0';
	return n;
}

static struct kc_ynode *node_from(struct reader *r, const yaml_event_t *ev, struct kc_mark at)
{
	struct kc_ynode *n = NULL;

	if (ev->type == YAML_SCALAR_EVENT)
		return scalar_from(r, ev, at);
	if (ev->type == YAML_MAPPING_START_EVENT)
		n = node_new(KC_YMAP, ev->data.mapping_start.tag);
	else if (ev->type == YAML_SEQUENCE_START_EVENT)
		n = node_new(KC_YSEQ, ev->data.sequence_start.tag);
	else if (ev->type == YAML_ALIAS_EVENT)
		n = node_new(KC_YALIAS, NULL);
	else
		return fail(r, KC_YTREE_STRUCTURE, at), NULL;
	if (!n)
		fail(r, KC_YTREE_NOMEM, at);
	return n;
}

/* Takes ev (deletes it). */
static struct kc_ynode *read_node(struct reader *r, yaml_event_t *ev, unsigned depth)
{
	const struct kc_ytree_limits *lim = r->lim;
	struct kc_mark at = mark_of(ev->start_mark);
	bool collection = ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;
	struct kc_ynode *n = NULL;

	if (++r->nodes > lim->max_nodes)
		fail(r, KC_YTREE_TOO_MANY, at);
	else if (ev->type == YAML_ALIAS_EVENT && !(lim->flags & KC_YTREE_ALIASES))
		fail(r, KC_YTREE_ALIAS, at);
	else if (depth > lim->max_depth || (collection && depth > lim->max_collection_depth))
		fail(r, KC_YTREE_TOO_DEEP, at);
	else if ((n = node_from(r, ev, at)))
		n->mark = at;
	yaml_event_delete(ev);
	if (n && collection &&
	    read_items(r, n, n->kind == KC_YMAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT, depth + 1) < 0) {
		kc_ytree_free(n);
		n = NULL;
	}
	return n;
}

/* Expects the next event to be of type want; a second document is named. */
static int expect(struct reader *r, yaml_event_type_t want)
{
	yaml_event_t ev;
	int rc = 0;

	if (next(r, &ev) < 0)
		return -1;
	if (ev.type != want)
		rc = fail(r, ev.type == YAML_DOCUMENT_START_EVENT ? KC_YTREE_SECOND_DOCUMENT : KC_YTREE_STRUCTURE,
			  mark_of(ev.start_mark));
	yaml_event_delete(&ev);
	return rc;
}

static int read_stream(struct reader *r, struct kc_ynode **root)
{
	yaml_event_t ev;

	if (expect(r, YAML_STREAM_START_EVENT) < 0 || next(r, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev); /* the document start */
	if (next(r, &ev) < 0)
		return -1;
	*root = read_node(r, &ev, 0);
	if (!*root)
		return -1;
	if (r->lim->flags & KC_YTREE_FIRST_DOCUMENT)
		return 0;
	return expect(r, YAML_DOCUMENT_END_EVENT) < 0 || expect(r, YAML_STREAM_END_EVENT) < 0 ? -1 : 0;
}

int kc_ytree_read(const char *data, size_t len, const struct kc_ytree_limits *lim, struct kc_ynode **root,
		  struct kc_ytree_error *e)
{
	struct reader r = { .lim = lim, .e = e };
	struct kc_mark start = { 0, 0 };
	int rc;

	*root = NULL;
	memset(e, 0, sizeof(*e));
	if (len > lim->max_bytes)
		return fail(&r, KC_YTREE_TOO_BIG, start);
	if (!yaml_parser_initialize(&r.parser))
		return fail(&r, KC_YTREE_NOMEM, start);
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)(data ? data : ""), len);
	rc = read_stream(&r, root);
	yaml_parser_delete(&r.parser);
	if (rc < 0) {
		kc_ytree_free(*root);
		*root = NULL;
	}
	return rc;
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

/* Building, editing, comparing and writing the YAML tree of ytree.h. */
#include "common/ytree.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

static struct kc_ynode *node_new(enum kc_ynode_kind kind)
{
	struct kc_ynode *n = calloc(1, sizeof(*n));

	if (n)
		n->kind = kind;
	return n;
}

struct kc_ynode *kc_ytree_map(void)
{
	return node_new(KC_YMAP);
}

struct kc_ynode *kc_ytree_seq(void)
{
	return node_new(KC_YSEQ);
}

struct kc_ynode *kc_ytree_flow_seq(void)
{
	struct kc_ynode *n = node_new(KC_YSEQ);

	if (n)
		n->flow = true;
	return n;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
 * libyaml's emitter lets some of those through and every reader then refuses
 * the file. */
bool kc_ytree_valid_utf8(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	while (*s) {
		unsigned c = *s++, more, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return false;
		for (unsigned i = 0; i < more; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* Would a YAML 1.1 or 1.2 reader (libyaml's users, Go's yaml.v2 behind kubectl,
 * PyYAML behind awscli) take this plain scalar for a bool, null or number? */
static bool reads_as_non_string(const char *s)
{
	static const char *const words[] = { "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~", NULL };

	if (!*s || strchr("0123456789+-.", *s))
		return true;
	for (size_t i = 0; words[i]; i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static struct kc_ynode *scalar_new(const char *s, enum kc_ystyle style)
{
	struct kc_ynode *n;

	if (!kc_ytree_valid_utf8(s))
		return NULL;
	n = node_new(KC_YSCALAR);
	if (!n)
		return NULL;
	n->len = strlen(s);
	n->value = strdup(s);
	n->style = style;
	if (!n->value) {
		free(n);
		return NULL;
	}
	return n;
}

struct kc_ynode *kc_ytree_str(const char *s)
{
	return scalar_new(s, reads_as_non_string(s) ? KC_YSINGLE : KC_YPLAIN);
}

struct kc_ynode *kc_ytree_plain(const char *s)
{
	return scalar_new(s, KC_YPLAIN);
}

int kc_ytree_push(struct kc_ynode *seq, struct kc_ynode *item)
{
	if (!item)
		return -1;
	if (seq->n == seq->cap) {
		size_t cap = seq->cap ? seq->cap * 2 : 8;
		struct kc_ynode **items = reallocarray(seq->items, cap, sizeof(struct kc_ynode *));

		if (!items) {
			kc_ytree_free(item);
			return -1;
		}
		seq->items = items;
		seq->cap = cap;
	}
	seq->items[seq->n++] = item;
	return 0;
}

void kc_ytree_remove_at(struct kc_ynode *seq, size_t i)
{
	if (i >= seq->n)
		return;
	kc_ytree_free(seq->items[i]);
	memmove(seq->items + i, seq->items + i + 1, (seq->n - i - 1) * sizeof(struct kc_ynode *));
	seq->n--;
}

static ssize_t key_index(const struct kc_ynode *map, const char *key)
{
	if (!map || map->kind != KC_YMAP)
		return -1;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (kc_ytree_is(map->items[i], key))
			return (ssize_t)i;
	return -1;
}

struct kc_ynode *kc_ytree_get(const struct kc_ynode *map, const char *key)
{
	ssize_t i = key_index(map, key);

	return i < 0 ? NULL : map->items[i + 1];
}

int kc_ytree_set(struct kc_ynode *map, const char *key, struct kc_ynode *value)
{
	ssize_t i = key_index(map, key);

	if (!value)
		return -1;
	if (i >= 0) {
		kc_ytree_free(map->items[i + 1]);
		map->items[i + 1] = value;
		return 0;
	}
	if (kc_ytree_push(map, kc_ytree_str(key)) < 0) {
		kc_ytree_free(value);
		return -1;
	}
	if (kc_ytree_push(map, value) < 0) {
		kc_ytree_remove_at(map, map->n - 1);
		return -1;
	}
	return 0;
}

int kc_ytree_set_str(struct kc_ynode *map, const char *key, const char *s)
{
	const struct kc_ynode *old = kc_ytree_get(map, key);

	if (old && !old->tag && kc_ytree_is(old, s) && (old->style != KC_YPLAIN || !reads_as_non_string(s)))
		return 0;
	return kc_ytree_set(map, key, kc_ytree_str(s));
}

void kc_ytree_del(struct kc_ynode *map, const char *key)
{
	ssize_t i = key_index(map, key);

	if (i < 0)
		return;
	kc_ytree_remove_at(map, (size_t)i + 1);
	kc_ytree_remove_at(map, (size_t)i);
}

/* Text the emitter cannot write as a plain scalar (then it quotes it): an
 * indicator first, a document marker, ": " or " #" inside, white space at an
 * end, a control or non-ASCII character. None of these reads as a number, bool
 * or null, so the quoted form means the same string. */
static bool plain_impossible(const char *s, size_t len)
{
	if (!len)
		return false;
	if (strchr("#,[]{}&*!|>'\"%@`", s[0]) || (strchr("?:-", s[0]) && (len == 1 || s[1] == ' ')))
		return true;
	if (len >= 3 && (!memcmp(s, "---", 3) || !memcmp(s, "...", 3)))
		return true;
	if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == ':')
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || (c == ':' && s[i + 1] == ' ') || (c == '#' && i && s[i - 1] == ' '))
			return true;
	}
	return false;
}

/* Plain against quoted is a difference of meaning only where the plain text
 * could be written plain (else the emitter had to quote it) and no tag says
 * what it is. */
static bool same_scalar(const struct kc_ynode *a, const struct kc_ynode *b)
{
	bool pa = a->style == KC_YPLAIN, pb = b->style == KC_YPLAIN;

	if (a->len != b->len || memcmp(a->value, b->value, a->len) != 0)
		return false;
	return pa == pb || a->tag || plain_impossible(a->value, a->len);
}

bool kc_ytree_equal(const struct kc_ynode *a, const struct kc_ynode *b)
{
	if (a->kind != b->kind || (!a->tag != !b->tag) || (a->tag && strcmp(a->tag, b->tag) != 0))
		return false;
	if (a->kind == KC_YSCALAR)
		return same_scalar(a, b);
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!kc_ytree_equal(a->items[i], b->items[i]))
			return false;
	return true;
}

struct emit {
	yaml_emitter_t emitter;
	struct kc_buf *out;
	size_t max; /* the most bytes out may hold */
	size_t limit; /* the most bytes this document may add */
	bool too_large;
};

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	struct emit *em = data;

	if (em->out->len + size > em->max) {
		em->too_large = true;
		return 0;
	}
	return kc_buf_append(em->out, buffer, size) == 0;
}

/* A plain scalar stays plain when the emitter can write it so (then it reads
 * back as the same number, bool or string); any other style may become another
 * quoted style, which reads back as the same string. */
static int emit_scalar(struct emit *em, const struct kc_ynode *n)
{
	yaml_event_t ev;
	int plain_implicit = !n->tag && n->style == KC_YPLAIN, quoted_implicit = !n->tag;

	if (n->len > em->limit || n->len > INT_MAX)
		return -1;
	if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)n->tag, (yaml_char_t *)n->value, (int)n->len,
					  plain_implicit, quoted_implicit, (yaml_scalar_style_t)n->style))
		return -1;
	return yaml_emitter_emit(&em->emitter, &ev) ? 0 : -1;
}

static int emit_node(struct emit *em, const struct kc_ynode *n)
{
	yaml_event_t ev;
	yaml_char_t *tag = (yaml_char_t *)n->tag;
	int ok;

	if (n->kind == KC_YSCALAR)
		return emit_scalar(em, n);
	if (n->kind == KC_YMAP)
		ok = yaml_mapping_start_event_initialize(&ev, NULL, tag, !tag,
							 n->flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
	else if (n->kind == KC_YSEQ)
		ok = yaml_sequence_start_event_initialize(
			&ev, NULL, tag, !tag, n->flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
	else
		return -1; /* an alias: never written */
	if (!ok || !yaml_emitter_emit(&em->emitter, &ev))
		return -1;
	for (size_t i = 0; i < n->n; i++)
		if (emit_node(em, n->items[i]) < 0)
			return -1;
	if (n->kind == KC_YMAP)
		ok = yaml_mapping_end_event_initialize(&ev);
	else
		ok = yaml_sequence_end_event_initialize(&ev);
	return ok && yaml_emitter_emit(&em->emitter, &ev) ? 0 : -1;
}

static int emit_document(struct emit *em, const struct kc_ynode *root)
{
	yaml_event_t ev;

	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(&em->emitter, &ev))
		return -1;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || !yaml_emitter_emit(&em->emitter, &ev))
		return -1;
	if (emit_node(em, root) < 0)
		return -1;
	if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em->emitter, &ev))
		return -1;
	if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em->emitter, &ev))
		return -1;
	return yaml_emitter_flush(&em->emitter) ? 0 : -1;
}

int kc_ytree_emit(const struct kc_ynode *root, size_t max, struct kc_buf *out, struct kc_err *err)
{
	struct emit em = { .out = out, .max = out->len + max, .limit = max };
	size_t start = out->len;
	int rc;

	if (!yaml_emitter_initialize(&em.emitter)) {
		kc_seterr(err, "out of memory while writing it");
		return -1;
	}
	yaml_emitter_set_output(&em.emitter, write_handler, &em);
	yaml_emitter_set_unicode(&em.emitter, 1);
	yaml_emitter_set_width(&em.emitter, -1); /* never fold a long value (a token, a CA) */
	rc = emit_document(&em, root);
	if (rc < 0) {
		if (em.too_large)
			kc_seterr(err, "the result would be over %zu bytes", max);
		else
			kc_seterr(err, "cannot write it as YAML (%s)",
				  em.emitter.problem ? em.emitter.problem : "a value YAML cannot hold");
		if (out->data)
			out->data[start] = '\0';
		out->len = start;
	}
	yaml_emitter_delete(&em.emitter);
	return rc;
}

/* A YAML document as a tree that keeps every key, value, scalar style and tag,
 * read strictly (one document, no aliases, no duplicate or non-string keys,
 * size and depth capped) and written back with libyaml's emitter. The user-side
 * kubeconfig merge edits files other tools write through it. */
#ifndef KC_YTREE_H
#define KC_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

#define KC_YTREE_MAX_BYTES (1024 * 1024)
#define KC_YTREE_MAX_DEPTH 32

enum kc_ynode_kind { KC_YSCALAR, KC_YMAP, KC_YSEQ };

/* Scalar styles, as libyaml's yaml_scalar_style_t numbers them. */
enum kc_ystyle { KC_YANY = 0, KC_YPLAIN = 1, KC_YSINGLE = 2, KC_YDOUBLE = 3, KC_YLITERAL = 4, KC_YFOLDED = 5 };

struct kc_ynode {
	enum kc_ynode_kind kind;
	char *tag; /* an explicit tag, NULL when the input had none */
	enum kc_ystyle style; /* scalars: as read; KC_YPLAIN reads as a number, bool or null too */
	char *value; /* scalars: NUL-terminated, may hold NUL bytes (len counts them) */
	size_t len;
	struct kc_ynode **items; /* a map: key, value, key, value...; a sequence: its items */
	size_t n; /* entries in items (twice the pairs of a map) */
	size_t cap;
	unsigned line; /* 1-based line in the input, 0 for a node made here */
};

/* Parses one document. *root is NULL when the stream holds none (an empty file,
 * only comments) or only a null scalar. Returns 0, or -1 with err a sentence
 * naming the line and what is wrong. Caller frees with kc_ytree_free(). */
int kc_ytree_parse(const char *data, size_t len, struct kc_ynode **root, struct kc_err *err);

/* Appends the document to out (block style, no line folding); fails when it
 * would exceed max bytes. */
int kc_ytree_emit(const struct kc_ynode *root, size_t max, struct kc_buf *out, struct kc_err *err);

/* Frees a node and everything below it, wiping scalar values first (a
 * kubeconfig may hold tokens). NULL is fine. */
void kc_ytree_free(struct kc_ynode *node);

/* New nodes (NULL when out of memory). A string is emitted plain when a YAML
 * reader would take it for a string, quoted otherwise; NULL for bytes that are
 * not valid UTF-8. kc_ytree_plain() is for true, false and numbers. */
struct kc_ynode *kc_ytree_map(void);
struct kc_ynode *kc_ytree_seq(void);
struct kc_ynode *kc_ytree_str(const char *s);
struct kc_ynode *kc_ytree_plain(const char *s);

/* Appends item to a sequence; takes item (freed on failure). */
int kc_ytree_push(struct kc_ynode *seq, struct kc_ynode *item);
/* Removes and frees a sequence's item i. */
void kc_ytree_remove_at(struct kc_ynode *seq, size_t i);

/* The value under key in a map, NULL when absent or when map is not a map. */
struct kc_ynode *kc_ytree_get(const struct kc_ynode *map, const char *key);
/* Puts value under key, in place when the key exists, else at the end; takes
 * value (freed on failure). */
int kc_ytree_set(struct kc_ynode *map, const char *key, struct kc_ynode *value);
/* Sets key to the string s unless it already holds exactly that untagged
 * string, so a value another tool wrote keeps its bytes. */
int kc_ytree_set_str(struct kc_ynode *map, const char *key, const char *s);
void kc_ytree_del(struct kc_ynode *map, const char *key);

/* A scalar holding exactly s (no NUL inside). */
bool kc_ytree_is(const struct kc_ynode *node, const char *s);
/* An untagged null: an empty plain scalar, ~ or null (any case YAML allows). */
bool kc_ytree_is_null(const struct kc_ynode *node);
/* Same kind, tag and bytes, all the way down, and the same meaning of every
 * scalar's style: plain (a number, bool, null or string) or quoted (a string). */
bool kc_ytree_equal(const struct kc_ynode *a, const struct kc_ynode *b);

/* Strict UTF-8 (no overlong forms, surrogates, or code points past U+10FFFF). */
bool kc_ytree_valid_utf8(const char *s);

/* Text for a message: printable ASCII, anything else as '?', cut to size. */
void kc_ytree_printable(const char *s, size_t len, char *out, size_t size);

#endif

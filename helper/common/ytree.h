/* The project's one YAML reader and one YAML writer: a document as a tree that
 * keeps every key, value, scalar style, tag and position, read through
 * libyaml's parser within the limits the caller gives (strictly for the config
 * and the kubeconfig merge, leniently for the user's own ~/.kube/config) and
 * written back through libyaml's emitter (the kubeconfig, the RBAC manifest).
 * A value may be a token: a tree wipes its scalars when freed. */
#ifndef KC_COMMON_YTREE_H
#define KC_COMMON_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

/* KC_YALIAS: an alias (*name) a lenient reader kept; it is never followed. */
enum kc_ynode_kind { KC_YSCALAR, KC_YMAP, KC_YSEQ, KC_YALIAS };

/* Scalar styles, as libyaml's yaml_scalar_style_t numbers them. */
enum kc_ystyle { KC_YANY = 0, KC_YPLAIN = 1, KC_YSINGLE = 2, KC_YDOUBLE = 3, KC_YLITERAL = 4, KC_YFOLDED = 5 };

struct kc_ynode {
	enum kc_ynode_kind kind;
	char *tag; /* an explicit tag, NULL when the input had none */
	enum kc_ystyle style; /* scalars: as read; KC_YPLAIN reads as a number, bool or null too */
	bool flow; /* a collection written [a, b] or {a: b}: made so here; what is read is written in block style */
	char *value; /* scalars: NUL-terminated, may hold NUL bytes (len counts them) */
	size_t len;
	struct kc_ynode **items; /* a map: key, value, key, value...; a sequence: its items */
	size_t n; /* entries in items (twice the pairs of a map) */
	size_t cap;
	struct kc_mark mark; /* 1-based line and column in the input; 0:0 for a node made here */
};

/* What a reader accepts. The root is at depth 0, its items at 1. */
struct kc_ytree_limits {
	size_t max_bytes;
	size_t max_nodes;
	unsigned max_depth; /* the deepest any node may sit */
	unsigned max_collection_depth; /* the deepest a mapping or sequence may start */
	unsigned flags; /* KC_YTREE_* below */
};
#define KC_YTREE_ALIASES 0x1u /* an alias becomes a KC_YALIAS node (else it is refused) */
#define KC_YTREE_FIRST_DOCUMENT 0x2u /* nothing after the first document is read (else a second is refused) */
#define KC_YTREE_NO_NUL 0x4u /* a scalar holding a NUL byte is refused */
#define KC_YTREE_STRING_KEYS 0x8u /* a mapping key is a non-null scalar, and appears once per mapping */

/* Why a read failed: the caller says it in its own words. */
enum kc_ytree_fault {
	KC_YTREE_NOMEM, /* out of memory here (mark 0:0 before the first node) */
	KC_YTREE_YAML_NOMEM, /* libyaml ran out of memory */
	KC_YTREE_NOT_TEXT, /* bytes that are not text libyaml reads (offset) */
	KC_YTREE_SYNTAX, /* not YAML */
	KC_YTREE_TOO_BIG, /* more than max_bytes */
	KC_YTREE_TOO_MANY, /* more than max_nodes */
	KC_YTREE_TOO_DEEP, /* a node deeper than the limits */
	KC_YTREE_ALIAS,
	KC_YTREE_NUL,
	KC_YTREE_SECOND_DOCUMENT,
	KC_YTREE_KEY_NOT_STRING,
	KC_YTREE_KEY_EMPTY,
	KC_YTREE_KEY_TWICE, /* key: the key; mark: the later of the two */
	KC_YTREE_STRUCTURE, /* an event libyaml should not give there */
};

struct kc_ytree_error {
	enum kc_ytree_fault fault;
	struct kc_mark mark; /* where: the node, or libyaml's problem mark */
	size_t offset; /* KC_YTREE_NOT_TEXT: the byte libyaml stopped at */
	const char *problem, *context; /* libyaml's words (static text), NULL when it gave none */
	char key[64]; /* KC_YTREE_KEY_TWICE: the key, printable (kc_ytree_printable) */
};

/* Reads one document within lim. *root is NULL when the stream holds none (an
 * empty file, only comments). Returns 0, or -1 with *e saying what and where.
 * Caller frees with kc_ytree_free(). */
int kc_ytree_read(const char *data, size_t len, const struct kc_ytree_limits *lim, struct kc_ynode **root,
		  struct kc_ytree_error *e);

/* Appends the document to out (collections in block style unless made flow,
 * no line folding); fails when it would add more than max bytes. */
int kc_ytree_emit(const struct kc_ynode *root, size_t max, struct kc_buf *out, struct kc_err *err);

/* Frees a node and everything below it, wiping scalar values first. NULL is fine. */
void kc_ytree_free(struct kc_ynode *node);

/* New nodes (NULL when out of memory). A string is emitted plain when a YAML
 * reader would take it for a string, quoted otherwise; NULL for bytes that are
 * not valid UTF-8. kc_ytree_plain() is for true, false and numbers. */
struct kc_ynode *kc_ytree_map(void);
struct kc_ynode *kc_ytree_seq(void);
struct kc_ynode *kc_ytree_flow_seq(void);
struct kc_ynode *kc_ytree_str(const char *s);
struct kc_ynode *kc_ytree_plain(const char *s);

/* Appends item to a sequence; takes item (freed on failure; NULL fails). */
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

/* One field list per config struct (schema.c): which YAML key fills which
 * member, its type, and what is checked on the way in. The same list drives
 * parsing (keys allowed, types, required keys, absolute paths), the parsed-config
 * cache's save and load, and freeing, so a key is written down once. What one
 * field means together with others (auth needs exactly one kind, and so on) is
 * config.c's. */
#ifndef KC_CONFIG_FIELDS_H
#define KC_CONFIG_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "config/tree.h"

enum cfg_type {
	CF_NONE, /* a key only: config.c reads it into other members */
	CF_STR, /* char * */
	CF_BOOL, /* bool */
	CF_DURATION, /* long seconds, from "90s", "10m", "1h30m" */
	CF_LONG, /* long */
	CF_ULONG, /* unsigned long */
	CF_INT, /* int (an enum, a percentage) */
	CF_MARK, /* struct kc_mark */
	CF_BYTES, /* unsigned char *, its length a size_t at aux */
	CF_STRLIST, /* char **, its count a size_t at aux */
	CF_STRUCT, /* a struct of sub's kind, in place */
	CF_ARRAY, /* an array of sub's kind, its count a size_t at aux */
};

#define CF_REQUIRED 1u /* "X needs 'key'" when absent */
#define CF_PATH 2u /* an absolute path; its mark (mark) is kept for the checks at every load */
#define CF_CUSTOM 4u /* config.c parses the value; the list still allows the key, stores and frees it */
#define CF_DISCOVERY 8u /* eks references: only under a cluster's eks: */
#define CF_AUTH 16u /* eks references: only under auth: eks: */
#define CF_NOMARK SIZE_MAX

struct cfg_desc;

struct cfg_field {
	const char *section; /* the sub-mapping holding the key (token:, auth:); NULL: the struct's own */
	const char *key; /* NULL: a member no key fills directly */
	enum cfg_type type;
	size_t off;
	size_t aux;
	const struct cfg_desc *sub;
	unsigned flags;
	size_t mark; /* where the value's mark goes, CF_NOMARK: nowhere */
};

struct cfg_desc {
	const char *what; /* "a cluster": for messages */
	size_t size;
	const struct cfg_field *f;
	size_t n;
};

extern const struct cfg_desc cfg_eks_desc, cfg_cluster_desc, cfg_mapping_desc, cfg_config_desc;

/* Checks map's keys against the fields of `section` (variant: CF_DISCOVERY or
 * CF_AUTH for eks references, 0 otherwise) and reads every plain field present
 * (strings, bools, durations) into obj; required keys must be there. */
int cfg_fields_parse(struct cfg_ctx *c, const struct cfg_desc *d, const char *section, const char *what,
		     const struct kc_ynode *map, void *obj, unsigned variant);

void cfg_fields_free(const struct cfg_desc *d, void *obj);

/* The cache's form: every member in list order; load checks every length. */
struct cfg_reader {
	const char *p, *end;
	bool bad;
};
void cfg_fields_save(const struct cfg_desc *d, const void *obj, struct kc_buf *b);
void cfg_fields_load(const struct cfg_desc *d, void *obj, struct cfg_reader *r);

#endif

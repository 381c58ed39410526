/* Parsing, freeing and the cache's save and load, all from the field lists. */
#include "config/fields.h"

#include <stdio.h>
#include <string.h>

#define NULL_LEN UINT32_MAX
#define LIST_MAX 10000000u

#define AT(obj, off, type) ((type *)((char *)(obj) + (off)))
#define AT_C(obj, off, type) ((const type *)((const char *)(obj) + (off)))

static bool in_section(const struct cfg_field *f, const char *section)
{
	return section ? f->section && strcmp(f->section, section) == 0 : !f->section;
}

static bool allowed_in(const struct cfg_field *f, unsigned variant)
{
	unsigned only = f->flags & (CF_DISCOVERY | CF_AUTH);

	return !only || (only & variant);
}

/* ---- parsing ------------------------------------------------------------------ */

static int parse_value(struct cfg_ctx *c, const struct cfg_field *f, const struct kc_ynode *v, void *obj)
{
	switch (f->type) {
	case CF_STR:
		if (v->kind != KC_YSCALAR)
			return cfg_fail_at(c, v->mark, "'%s' must be a single value, not %s", f->key,
					   cfg_kind_name(v->kind));
		free(*AT(obj, f->off, char *));
		if (!(*AT(obj, f->off, char *) = strdup(v->value)))
			return cfg_fail_at(c, v->mark, "out of memory");
		if ((f->flags & CF_PATH) && v->value[0] != '/')
			return cfg_fail_at(c, v->mark, "'%s' must be an absolute path (got '%s')", f->key, v->value);
		return 0;
	case CF_BOOL:
		if (cfg_plain(v) && strcmp(v->value, "true") == 0)
			*AT(obj, f->off, bool) = true;
		else if (cfg_plain(v) && strcmp(v->value, "false") == 0)
			*AT(obj, f->off, bool) = false;
		else
			return cfg_fail_at(c, v->mark, "'%s' must be true or false", f->key);
		return 0;
	case CF_DURATION:
		if (v->kind != KC_YSCALAR || kc_parse_duration(v->value, AT(obj, f->off, long)) < 0)
			return cfg_fail_at(c, v->mark, "'%s' must be a duration such as 90s, 10m, 8h or 1h30m%s%s%s",
					   f->key, v->kind == KC_YSCALAR ? " (got '" : "",
					   v->kind == KC_YSCALAR ? v->value : "", v->kind == KC_YSCALAR ? "')" : "");
		return 0;
	default: return 0;
	}
}

static size_t keys_of(const struct cfg_desc *d, const char *section, unsigned variant, const char **keys)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		if (d->f[i].key && in_section(&d->f[i], section) && allowed_in(&d->f[i], variant))
			keys[n++] = d->f[i].key;
	keys[n] = NULL;
	return n;
}

int cfg_fields_parse(struct cfg_ctx *c, const struct cfg_desc *d, const char *section, const char *what,
		     const struct kc_ynode *map, void *obj, unsigned variant)
{
	const char *keys[64];

	if (d->n >= sizeof(keys) / sizeof(keys[0]))
		return cfg_fail_at(c, map->mark, "internal: too many keys");
	keys_of(d, section, variant, keys);
	if (cfg_check_keys(c, map, what, keys) < 0)
		return -1;
	for (size_t i = 0; i < d->n; i++) {
		const struct cfg_field *f = &d->f[i];
		const struct kc_ynode *v;

		if (!f->key || !in_section(f, section) || !allowed_in(f, variant))
			continue;
		v = kc_ytree_get(map, f->key);
		if (!v) {
			if (f->flags & CF_REQUIRED)
				return cfg_fail_at(c, map->mark, "%s needs '%s'", what, f->key);
			continue;
		}
		if (f->mark != CF_NOMARK)
			*AT(obj, f->mark, struct kc_mark) = v->mark;
		if (!(f->flags & CF_CUSTOM) && parse_value(c, f, v, obj) < 0)
			return -1;
	}
	return 0;
}

/* ---- freeing -------------------------------------------------------------------- */

void cfg_fields_free(const struct cfg_desc *d, void *obj)
{
	for (size_t i = 0; obj && i < d->n; i++) {
		const struct cfg_field *f = &d->f[i];

		switch (f->type) {
		case CF_STR:
		case CF_BYTES: free(*AT(obj, f->off, void *)); break;
		case CF_STRLIST:
			for (size_t k = 0; k < *AT(obj, f->aux, size_t); k++)
				free((*AT(obj, f->off, char **))[k]);
			free(*AT(obj, f->off, char **));
			break;
		case CF_STRUCT: cfg_fields_free(f->sub, AT(obj, f->off, char)); break;
		case CF_ARRAY: {
			char *items = *AT(obj, f->off, char *);

			for (size_t k = 0; items && k < *AT(obj, f->aux, size_t); k++)
				cfg_fields_free(f->sub, items + k * f->sub->size);
			free(items);
			break;
		}
		default: break;
		}
	}
}

/* ---- the cache's form ------------------------------------------------------------ */

static void put_u64(struct kc_buf *b, uint64_t v)
{
	kc_buf_append(b, &v, sizeof(v));
}

static void put_bytes(struct kc_buf *b, const void *data, size_t len)
{
	uint32_t n = data ? (uint32_t)len : NULL_LEN;

	kc_buf_append(b, &n, sizeof(n));
	if (data)
		kc_buf_append(b, data, len);
}

static void put_str(struct kc_buf *b, const char *s)
{
	put_bytes(b, s, s ? strlen(s) : 0);
}

static uint64_t number_of(const struct cfg_field *f, const void *obj)
{
	switch (f->type) {
	case CF_BOOL: return *AT_C(obj, f->off, bool);
	case CF_DURATION:
	case CF_LONG: return (uint64_t)*AT_C(obj, f->off, long);
	case CF_ULONG: return *AT_C(obj, f->off, unsigned long);
	case CF_INT: return (uint64_t)(int64_t)*AT_C(obj, f->off, int);
	case CF_MARK: {
		const struct kc_mark *m = AT_C(obj, f->off, struct kc_mark);

		return (uint64_t)m->line << 32 | m->col;
	}
	default: return 0;
	}
}

void cfg_fields_save(const struct cfg_desc *d, const void *obj, struct kc_buf *b)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct cfg_field *f = &d->f[i];

		switch (f->type) {
		case CF_NONE: break;
		case CF_STR: put_str(b, *AT_C(obj, f->off, char *)); break;
		case CF_BYTES: put_bytes(b, *AT_C(obj, f->off, void *), *AT_C(obj, f->aux, size_t)); break;
		case CF_STRLIST:
			put_u64(b, *AT_C(obj, f->aux, size_t));
			for (size_t k = 0; k < *AT_C(obj, f->aux, size_t); k++)
				put_str(b, (*AT_C(obj, f->off, char **))[k]);
			break;
		case CF_STRUCT: cfg_fields_save(f->sub, AT_C(obj, f->off, char), b); break;
		case CF_ARRAY:
			put_u64(b, *AT_C(obj, f->aux, size_t));
			for (size_t k = 0; k < *AT_C(obj, f->aux, size_t); k++)
				cfg_fields_save(f->sub, *AT_C(obj, f->off, char *) + k * f->sub->size, b);
			break;
		default: put_u64(b, number_of(f, obj)); break;
		}
	}
}

static uint64_t get_u64(struct cfg_reader *r)
{
	uint64_t v = 0;

	if (r->bad || r->end - r->p < (ptrdiff_t)sizeof(v)) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p, sizeof(v));
	r->p += sizeof(v);
	return v;
}

/* NUL-terminated; NULL for an absent value (and when r goes bad). */
static char *get_bytes(struct cfg_reader *r, size_t *len)
{
	uint32_t n;
	char *out;

	*len = 0;
	if (r->bad || r->end - r->p < (ptrdiff_t)sizeof(n)) {
		r->bad = true;
		return NULL;
	}
	memcpy(&n, r->p, sizeof(n));
	r->p += sizeof(n);
	if (n == NULL_LEN)
		return NULL;
	if ((size_t)(r->end - r->p) < n || !(out = malloc((size_t)n + 1))) {
		r->bad = true;
		return NULL;
	}
	memcpy(out, r->p, n);
	out[n] = '\0';
	r->p += n;
	*len = n;
	return out;
}

static void set_number(const struct cfg_field *f, void *obj, uint64_t v)
{
	switch (f->type) {
	case CF_BOOL: *AT(obj, f->off, bool) = v != 0; break;
	case CF_DURATION:
	case CF_LONG: *AT(obj, f->off, long) = (long)v; break;
	case CF_ULONG: *AT(obj, f->off, unsigned long) = (unsigned long)v; break;
	case CF_INT: *AT(obj, f->off, int) = (int)(int64_t)v; break;
	case CF_MARK: *AT(obj, f->off, struct kc_mark) = (struct kc_mark){ (unsigned)(v >> 32), (unsigned)v }; break;
	default: break;
	}
}

void cfg_fields_load(const struct cfg_desc *d, void *obj, struct cfg_reader *r)
{
	for (size_t i = 0; i < d->n && !r->bad; i++) {
		const struct cfg_field *f = &d->f[i];
		size_t len, n;

		switch (f->type) {
		case CF_NONE: break;
		case CF_STR: *AT(obj, f->off, char *) = get_bytes(r, &len); break;
		case CF_BYTES:
			*AT(obj, f->off, char *) = get_bytes(r, &len);
			*AT(obj, f->aux, size_t) = len;
			break;
		case CF_STRLIST:
			n = (size_t)get_u64(r);
			if (r->bad || n > LIST_MAX || !(*AT(obj, f->off, char **) = calloc(n + 1, sizeof(char *)))) {
				r->bad = true;
				break;
			}
			for (size_t k = 0; k < n && !r->bad; k++, (*AT(obj, f->aux, size_t))++)
				(*AT(obj, f->off, char **))[k] = get_bytes(r, &len);
			break;
		case CF_STRUCT: cfg_fields_load(f->sub, AT(obj, f->off, char), r); break;
		case CF_ARRAY:
			n = (size_t)get_u64(r);
			if (r->bad || n > LIST_MAX || !(*AT(obj, f->off, char *) = calloc(n ? n : 1, f->sub->size))) {
				r->bad = true;
				break;
			}
			for (size_t k = 0; k < n && !r->bad; k++, (*AT(obj, f->aux, size_t))++)
				cfg_fields_load(f->sub, *AT(obj, f->off, char *) + k * f->sub->size, r);
			break;
		default: set_number(f, obj, get_u64(r)); break;
		}
	}
}

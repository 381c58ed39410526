/* A zeroing allocator for jansson: each block remembers its size so free() can
 * wipe it. */
#include "common/json_alloc.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define HEADER (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

static void *secure_malloc(size_t size)
{
	unsigned char *p;

	if (size > (size_t)-1 - HEADER)
		return NULL;
	p = malloc(size + HEADER);
	if (!p)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + HEADER;
}

static void secure_free(void *ptr)
{
	unsigned char *p;
	size_t size;

	if (!ptr)
		return;
	p = (unsigned char *)ptr - HEADER;
	memcpy(&size, p, sizeof(size));
	explicit_bzero(p, size + HEADER);
	free(p);
}

void kc_json_secure_init(void)
{
	json_set_alloc_funcs(secure_malloc, secure_free);
}

void kc_json_free(void *p)
{
	json_free_t f = NULL;

	json_get_alloc_funcs(NULL, &f);
	if (f)
		f(p);
	else
		free(p);
}

/* libFuzzer: the kubeconfig emitter round trip. The input, split at NUL bytes,
 * gives context, server, namespace, token, host and user; what we emit must
 * parse back (libyaml) to exactly those values, whatever they hold. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "kc_kubeconfig.h"

/* The n-th scalar value under key, from a real parser. */
static char *value_of(const char *text, size_t len, const char *key, int nth)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char *found = NULL;
	int seen = 0, take = 0, done = 0, depth = 0, key_next = 0;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev))
			__builtin_trap(); /* what we emit always parses */
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
			depth++;
			key_next = 1;
			break;
		case YAML_MAPPING_END_EVENT: depth--; break;
		case YAML_SCALAR_EVENT:
			if (take) {
				found = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
				done = 1;
			} else if (key_next && strcmp((const char *)ev.data.scalar.value, key) == 0 && seen++ == nth) {
				take = 1;
			}
			key_next = !key_next;
			break;
		case YAML_STREAM_END_EVENT: done = 1; break;
		default:
			if (take)
				done = 1;
			key_next = 1;
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return found;
}

static void expect(const char *text, size_t len, const char *key, int nth, const char *want)
{
	char *got = value_of(text, len, key, nth);

	if (!got || strcmp(got, want) != 0)
		__builtin_trap();
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *f[6];
	const char *p;
	struct kc_buf out = { 0 };
	size_t n = 0;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy; n < 6 && p <= copy + size; p += strlen(p) + 1)
		f[n++] = (char *)p;
	while (n < 6)
		f[n++] = (char *)"x";
	{
		/* YAML cannot carry every byte (control characters, invalid UTF-8): the
		 * emitter refuses those, and a refusal is a fine outcome. */
		struct kc_kubeconfig_entry e = {
			f[0], f[1],	 (const unsigned char *)"-----BEGIN CERTIFICATE-----\n", 28, f[2], "sa",
			f[3], 1795942539
		};

		if (kc_kubeconfig_emit(f[4], "host-id", f[5], &e, 1, &out) == 0) {
			char host[128];

			expect(out.data, out.len, "current-context", 0, f[0]);
			expect(out.data, out.len, "server", 0, f[1]);
			expect(out.data, out.len, "namespace", 0, f[2]);
			expect(out.data, out.len, "token", 0, f[3]);
			if (kc_kubeconfig_host_id(out.data, out.len, host, sizeof(host)) < 0 || strcmp(host, "host-id"))
				__builtin_trap();
		}
	}
	kc_buf_free(&out);
	free(copy);
	return 0;
}

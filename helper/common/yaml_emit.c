/* libyaml's emitter writing into a kc_buf. */
#include "common/yaml_emit.h"

#include <string.h>
#include <strings.h>

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	struct kc_yaml *y = data;

	return kc_buf_append(y->out, buffer, size) == 0;
}

/* The emitter owns an event once given it; an event we do not give it (after a
 * failure) is ours to delete. */
static void emit(struct kc_yaml *y, yaml_event_t *ev, int made)
{
	if (!made) {
		y->failed = true;
		return;
	}
	if (y->failed) {
		yaml_event_delete(ev);
		return;
	}
	if (!yaml_emitter_emit(&y->emitter, ev))
		y->failed = true;
}

int kc_yaml_begin(struct kc_yaml *y, struct kc_buf *out)
{
	yaml_event_t ev;

	memset(y, 0, sizeof(*y));
	y->out = out;
	if (!yaml_emitter_initialize(&y->emitter))
		return -1;
	yaml_emitter_set_output(&y->emitter, write_handler, y);
	yaml_emitter_set_unicode(&y->emitter, 1);
	yaml_emitter_set_width(&y->emitter, -1); /* never fold long values such as tokens */
	emit(y, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	emit(y, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	return y->failed ? -1 : 0;
}

int kc_yaml_end(struct kc_yaml *y)
{
	yaml_event_t ev;
	bool failed;

	emit(y, &ev, yaml_document_end_event_initialize(&ev, 1));
	emit(y, &ev, yaml_stream_end_event_initialize(&ev));
	if (!y->failed && !yaml_emitter_flush(&y->emitter))
		y->failed = true;
	failed = y->failed;
	yaml_emitter_delete(&y->emitter);
	return failed ? -1 : 0;
}

void kc_yaml_map_start(struct kc_yaml *y)
{
	yaml_event_t ev;

	emit(y, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

void kc_yaml_map_end(struct kc_yaml *y)
{
	yaml_event_t ev;

	emit(y, &ev, yaml_mapping_end_event_initialize(&ev));
}

void kc_yaml_seq_start(struct kc_yaml *y)
{
	yaml_event_t ev;

	emit(y, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

void kc_yaml_flow_seq_start(struct kc_yaml *y)
{
	yaml_event_t ev;

	emit(y, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE));
}

void kc_yaml_seq_end(struct kc_yaml *y)
{
	yaml_event_t ev;

	emit(y, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void scalar(struct kc_yaml *y, const char *s, int plain_implicit, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	emit(y, &ev,
	     yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain_implicit, 1, style));
}

/* Would a YAML 1.1 or 1.2 reader take this plain scalar for something other
 * than a string (bool, null, number)? Then it must be quoted. */
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

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
 * libyaml's emitter lets some of these through; its parser (and kubectl's)
 * would then refuse the file. */
static bool valid_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s++, n, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		for (unsigned i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

void kc_yaml_str(struct kc_yaml *y, const char *s)
{
	if (!valid_utf8((const unsigned char *)s)) {
		y->failed = true;
		return;
	}
	/* plain_implicit=0 makes the emitter quote; otherwise it picks plain when the
	 * characters allow it. */
	scalar(y, s, !reads_as_non_string(s), YAML_ANY_SCALAR_STYLE);
}

void kc_yaml_plain(struct kc_yaml *y, const char *s)
{
	scalar(y, s, 1, YAML_PLAIN_SCALAR_STYLE);
}

void kc_yaml_kv(struct kc_yaml *y, const char *key, const char *value)
{
	kc_yaml_plain(y, key);
	kc_yaml_str(y, value);
}

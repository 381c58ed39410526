/* A thin layer over libyaml's emitter, so every YAML the project writes (the
 * user's kubeconfig, the RBAC manifest) is produced by a real emitter, never by
 * pasting strings. Output goes to a kc_buf; a secret buffer stays secret. */
#ifndef KC_YAML_H
#define KC_YAML_H

#include <stdbool.h>

#include <yaml.h>

#include "common/util.h"

struct kc_yaml {
	yaml_emitter_t emitter;
	struct kc_buf *out;
	bool failed;
};

/* Starts a stream with one document; end with kc_yaml_end(). */
int kc_yaml_begin(struct kc_yaml *y, struct kc_buf *out);
int kc_yaml_end(struct kc_yaml *y);

void kc_yaml_map_start(struct kc_yaml *y);
void kc_yaml_map_end(struct kc_yaml *y);
void kc_yaml_seq_start(struct kc_yaml *y);
void kc_yaml_flow_seq_start(struct kc_yaml *y);
void kc_yaml_seq_end(struct kc_yaml *y);
void kc_yaml_str(struct kc_yaml *y, const char *s); /* quoted when YAML would read it otherwise */
void kc_yaml_plain(struct kc_yaml *y, const char *s); /* true, false, numbers */
void kc_yaml_kv(struct kc_yaml *y, const char *key, const char *value);

#endif

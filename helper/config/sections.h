/* The config's optional sections and a rule's ssh_certificate (sections.c). */
#ifndef KC_CONFIG_SECTIONS_H
#define KC_CONFIG_SECTIONS_H

#include "config/config.h"
#include "config/tree.h"

/* ssh_certificates, fleet and metrics: read and checked (absent: unset). */
int cfg_parse_sections(struct cfg_ctx *c, const struct kc_ynode *root, struct kc_config *cfg);
/* A rule's ssh_certificate: { principal, key_id }, after the sections. */
int cfg_parse_rule_certificate(struct cfg_ctx *c, const struct kc_config *cfg, const struct kc_ynode *rule,
			       struct kc_mapping *m);

#endif

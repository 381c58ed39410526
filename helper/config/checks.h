/* The config room's checks of other files, and check's warnings (checks.c). */
#ifndef KC_CONFIG_CHECKS_H
#define KC_CONFIG_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/tree.h"

/* Holds a PEM certificate. */
bool cfg_holds_pem(const unsigned char *data, size_t len);
/* Reads the CA files, checks every credential file's owner and mode. */
int cfg_check_files(struct cfg_ctx *c, struct kc_config *cfg);

#endif

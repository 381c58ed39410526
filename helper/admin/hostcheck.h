/* What `check` says about this host rather than the config: the token files'
 * filesystem, whether connections can be cut at logout, whether the refresh
 * timer runs, and what records of clusters no longer configured are left. */
#ifndef KC_HOSTCHECK_H
#define KC_HOSTCHECK_H

#include <stdio.h>

#include "config/config.h"

/* Prints one line per finding to out; returns how many are warnings. */
int kc_check_host(const struct kc_config *cfg, FILE *out);

#endif

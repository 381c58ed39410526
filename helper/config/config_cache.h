/* A cache of parsed configs under KC_CACHE_DIR, so a login does not parse a
 * large unchanged config again. Keyed by the build of the program (its GNU
 * build id, else a hash of its file: a parser or validation fix applies at
 * once after an upgrade) and by the file's identity: path, device, inode, size,
 * mtime and ctime (which nobody can set back), owner and mode. Writing an entry
 * prunes the entries of other builds and of configs that no longer exist. The
 * cache holds no secret; what depends on other files is checked at every load. */
#ifndef KC_CONFIG_CACHE_H
#define KC_CONFIG_CACHE_H

#include <sys/stat.h>

#include "config/config.h"

/* The cached config for this file identity, or NULL. Caller frees. */
struct kc_config *kc_config_cache_get(const char *path, const struct stat *st);
/* Stores cfg for this identity (best effort: a failure only costs a parse). */
void kc_config_cache_put(const char *path, const struct stat *st, const struct kc_config *cfg);

#endif

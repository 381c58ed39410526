/* The root-only cache store under /var/cache/pam_kubeconfig: every cached thing
 * (cluster health, reconcile marks, EKS discovery, AWS credentials, the IMDS
 * probe, the refresh heartbeat) is an entry named by a kind and a key. Entries
 * are written whole (kc_write_at: random temporary, O_EXCL, fsync, renameat),
 * read with a size cap and only when root-owned and private, and expire by age.
 * Losing the cache costs time, never correctness. */
#ifndef KC_CACHE_H
#define KC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/util.h"

#define KC_CACHE_DIR "/var/cache/pam_kubeconfig"
#define KC_CACHE_ENTRY_MAX (64u << 20) /* a parsed 40,000-rule config fits */

/* The entry holds a secret: the buffer read is wiped when freed. */
#define KC_CACHE_SECRET 1u

/* The entry for (kind, key) if it is at most max_age seconds old (0: any age),
 * appended to out. *stored (optional) is when it was written. Returns 0 found,
 * 1 missing or expired, -1 unusable (err set; the entry is ignored). */
int kc_cache_get(const char *kind, const char *key, long max_age, unsigned flags, struct kc_buf *out, time_t *stored,
		 struct kc_err *err);
/* Replaces the entry for (kind, key). Readers see the old entry or the new one,
 * never a part. */
int kc_cache_put(const char *kind, const char *key, const void *data, size_t len, struct kc_err *err);
/* When the entry was written, or 0 when there is none. */
time_t kc_cache_stored(const char *kind, const char *key);
void kc_cache_drop(const char *kind, const char *key);
/* An exclusive, non-blocking lock beside the entry (for "one caller probes").
 * Returns the fd holding it (close it to release) or -1 when someone else has it. */
int kc_cache_trylock(const char *kind, const char *key);

/* Removes the entries of a kind that stale() calls stale, given each one's
 * bytes (the entry named keep_key stays). For a store whose keys change with
 * what they describe (the parsed config's, keyed by file identity and build). */
void kc_cache_prune(const char *kind, const char *keep_key, bool (*stale)(const char *data, size_t len));

/* How many entries of a kind there are. */
size_t kc_cache_count(const char *kind);

/* Tests only: keep the store somewhere else. */
void kc_cache_use_dir(const char *dir);

#endif

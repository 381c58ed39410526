/* Reading the root ledger back, with its rotations (the ledger's format is in
 * lifecycle/ledger.h): what `audit` trusts by default. */
#ifndef KC_LEDGER_READ_H
#define KC_LEDGER_READ_H

#include <stddef.h>

#include "common/util.h"
#include "lifecycle/ledger.h"

#define KC_LEDGER_GZ_MAX (256u << 20) /* a rotated .gz decompresses to at most this */

/* Where a record was read, for messages. */
struct kc_ledger_where {
	const char *file; /* the file's name in the ledger directory */
	size_t line; /* 1-based */
};

/* What a read saw. */
struct kc_ledger_stats {
	size_t files; /* files read: the rotations and the ledger */
	size_t records; /* lines handed to the callback */
	size_t skipped; /* torn, too long, not JSON, or not a record */
};

/* Returns 0 to go on; anything else stops the read, which returns it. */
typedef int (*kc_ledger_visit)(const struct kc_ledger_entry *e, const struct kc_ledger_where *w, void *arg);

/* Every record of the ledger at path (NULL: the one appends go to) and of its
 * rotations beside it, oldest first: PATH-DATE[.gz] (logrotate's dateext) by
 * date, then PATH.N[.gz] from the highest N, then PATH itself (a missing one
 * holds no records). When both PATH.N and PATH.N.gz exist (gzip at work) the
 * first is read.
 * .gz files go through /bin/gzip -dc. The directory and every file must be
 * root-owned and not group/world-writable; a file that is not is an error. A
 * line that is torn (no '\n' at its end), longer than KC_LEDGER_LINE_MAX, or not
 * a record (not a JSON object, duplicate keys, no valid time, host and event,
 * sessions not a list of {id, rhost}) is skipped and counted. Returns 0, -1
 * (err set), or what fn returned. */
int kc_ledger_read(const char *path, kc_ledger_visit fn, void *arg, struct kc_ledger_stats *stats, struct kc_err *err);

#endif

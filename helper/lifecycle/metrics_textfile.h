/* Where the metrics go: node_exporter's textfile directory (config
 * `metrics: { textfile_dir: ... }`; Debian's collector reads
 * /var/lib/prometheus/node-exporter, root's, inside a /var/lib/prometheus the
 * prometheus user owns). Root writes a world-readable file there, so the
 * directory is reached without following a symlink and checked on its fd, and
 * the file is written and renamed relative to that fd. */
#ifndef KC_METRICS_TEXTFILE_H
#define KC_METRICS_TEXTFILE_H

#include <stddef.h>

#include "common/util.h"

#define KC_METRICS_TEXTFILE "pam_kubeconfig.prom"

/* Opens path (absolute, no . or .. components) walking from / one component
 * at a time with O_NOFOLLOW | O_DIRECTORY: no component may be a symbolic
 * link; every parent must be writable by its owner alone (root, or a user such
 * as Debian's prometheus); the directory itself, checked on the open fd, must
 * be root's and not group/world-writable. Returns the directory's fd
 * (O_CLOEXEC), or -1 with err saying what is wrong and how to fix it (what
 * `check` prints). */
int kc_metrics_textfile_open_dir(const char *path, struct kc_err *err);

/* Writes data as path/pam_kubeconfig.prom, root 0644, whole: a temporary name
 * that does not end in .prom (the collector reads *.prom only), fsync,
 * renameat, all relative to the fd above. 0, or -1 (err set) with the old file
 * as it was. */
int kc_metrics_textfile_write(const char *path, const void *data, size_t len, struct kc_err *err);

#endif

/* The user-side wing's walk through the home (helper/asuser/home.c). */
#ifndef KC_ASUSER_HOME_H
#define KC_ASUSER_HOME_H

#include <stdbool.h>
#include <sys/types.h>

#include "asuser/drop.h"
#include "common/util.h"

/* The home directory, when it is an absolute path of its own, the user's, and
 * not writable by others. Returns an O_DIRECTORY fd or -1. */
int kc_home_open(const struct kc_user *u, struct kc_err *err);
/* Walks to the directory holding HOME/relpath (creating missing ones 0700 with
 * create). Returns its fd with *leaf pointing at the file name, KC_ABSENT when a
 * directory on the way is missing and create is unset, -1 on refusal. */
int kc_home_parent(int home_fd, uid_t uid, const char *relpath, bool create, const char **leaf, struct kc_err *err);

#endif

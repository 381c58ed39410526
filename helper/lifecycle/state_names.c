/* What a uid's state directory keeps about the account (see state.h): the
 * name that names the user's Secrets once the account is deleted, a former
 * owner's when the uid is given to a new account, and the digest of the
 * entries last written to the user's file. */
#include "lifecycle/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

/* ---- the account's name ----------------------------------------------------- */

static void name_file(const char *prefix, const char *name, char *out, size_t len)
{
	size_t n = strlen(name), at = (size_t)snprintf(out, len, "%s", prefix);

	for (size_t i = 0; i < n && at + 3 <= len; i++, at += 2)
		snprintf(out + at, 3, "%02x", (unsigned char)name[i]);
}

void kc_state_note_user(int dir, const char *name)
{
	char file[16 + 2 * 128 + 1], before[256], former[16 + 2 * 255 + 1];
	size_t n = strlen(name);
	int fd;

	if (n == 0 || n > 128)
		return;
	name_file("user-", name, file, sizeof(file));
	fd = openat(dir, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return; /* kept already: the common case, one syscall */
	close(fd);
	/* A uid given to a new account: the former one's name is kept aside (its
	 * grant files still name its Secrets, which go as any revocation does). */
	while (kc_state_user_name_other(dir, name, before, sizeof(before)) == 0) {
		char old[16 + 2 * 255 + 1];

		name_file("user-", before, old, sizeof(old));
		name_file("former-", before, former, sizeof(former));
		if (renameat(dir, old, dir, former) < 0 && unlinkat(dir, old, 0) < 0)
			break;
	}
}

bool kc_state_was_user(int dir, const char *name)
{
	char former[16 + 2 * 128 + 1];
	struct stat st;

	if (strlen(name) > 128)
		return false;
	name_file("former-", name, former, sizeof(former));
	return fstatat(dir, former, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int kc_state_user_name(int dir, char *out, size_t len)
{
	return kc_state_user_name_other(dir, NULL, out, len);
}

int kc_state_user_name_other(int dir, const char *but, char *out, size_t len)
{
	int dup_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *de;
	int rc = 1;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return 1;
	}
	while (rc == 1 && (de = readdir(d))) {
		const char *hex = de->d_name + 5;
		size_t n = strlen(hex) / 2, i;

		if (strncmp(de->d_name, "user-", 5) != 0 || strlen(hex) % 2 || n == 0 || n >= len)
			continue;
		for (i = 0; i < n && sscanf(hex + 2 * i, "%2hhx", (unsigned char *)&out[i]) == 1 && out[i]; i++)
			;
		out[i] = '\0';
		rc = i == n && !(but && strcmp(out, but) == 0) ? 0 : 1;
	}
	closedir(d);
	return rc;
}

int kc_state_get_digest(int dir, char out[65])
{
	char buf[80];
	int fd = openat(dir, "kubeconfig.digest", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	out[0] = '\0';
	if (fd < 0)
		return -1;
	n = kc_read_all(fd, buf, 64);
	close(fd);
	if (n != 64)
		return -1;
	memcpy(out, buf, 64);
	out[64] = '\0';
	return 0;
}

void kc_state_put_digest(int dir, const char *digest)
{
	struct kc_err e;
	/* Not synced: lost, the next refresh writes the file again. */
	const struct kc_write_opts o = { .mode = 0600, .uid = 0, .gid = 0, .sync = KC_SYNC_NONE };
	char have[65];

	/* The same entries as last time (most logins): a rename over the file
	 * would cost a login ~0.4 ms for nothing. */
	if (kc_state_get_digest(dir, have) == 0 && strcmp(have, digest) == 0)
		return;
	kc_write_at(dir, "kubeconfig.digest", digest, strlen(digest), &o, &e);
}

int kc_state_root(void)
{
	return open(KC_STATE_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

bool kc_state_stat(int root, uid_t uid, struct stat *st)
{
	char name[64];

	/* Without root, by the whole path, as kc_state_open() does. */
	snprintf(name, sizeof(name), "%s%u", root >= 0 ? "" : KC_STATE_DIR "/", (unsigned)uid);
	return fstatat(root >= 0 ? root : AT_FDCWD, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st->st_mode);
}

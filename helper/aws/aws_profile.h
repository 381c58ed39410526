/* The shared AWS config and credentials files (~/.aws/config, ~/.aws/credentials
 * and the helper's root-only ones), read as botocore reads them. */
#ifndef KC_AWS_PROFILE_H
#define KC_AWS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/aws_sigv4.h"
#include "common/util.h"

struct kc_aws_profile_entry {
	char *profile, *key, *value; /* value may be a secret: wiped when freed */
	bool from_credentials_file;
};
struct kc_aws_profiles {
	struct kc_aws_profile_entry *e;
	size_t n;
};

#define KC_AWS_FILES_ROOT_ONLY 1u /* the helper's: root-owned, readable by root alone */
/* Loads ~/.aws/config style ([profile NAME], [default]) and credentials style
 * ([NAME]) files; either path may be NULL, a missing file is empty. */
int kc_aws_profiles_load(struct kc_aws_profiles *p, const char *config_file, const char *credentials_file,
			 unsigned flags, struct kc_err *err);
/* A key of a profile; the credentials file wins over the config file.
 * from: 0 either, 1 config file only, 2 credentials file only. */
const char *kc_aws_profile_get(const struct kc_aws_profiles *p, const char *profile, const char *key, int from);
bool kc_aws_profile_exists(const struct kc_aws_profiles *p, const char *profile);
void kc_aws_profiles_free(struct kc_aws_profiles *p);
/* A user's file (symlinks followed, as awscli), a regular file of at most max
 * bytes, appended to out. Returns 0, 1 when it does not exist, -1 (err set). */
int kc_aws_read_user_file(const char *path, size_t max, struct kc_buf *out, struct kc_err *err);
/* aws_access_key_id and aws_secret_access_key (+ aws_session_token) of a
 * profile in one file (from as above). Returns 0, 1 when the profile has none,
 * -1 when only half of them (err set). */
int kc_aws_profile_keys(const struct kc_aws_profiles *p, const char *profile, int from, struct kc_aws_credentials *out,
			struct kc_err *err);

#endif

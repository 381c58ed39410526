/* The claims of the user's own token (a JWT), read as the user for
 * `pam-kubeconfig status`: who it is, its id and when it ends. The token
 * itself is never kept or shown. */
#ifndef KC_ASUSER_TOKEN_CLAIMS_H
#define KC_ASUSER_TOKEN_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/util.h"

#define KC_TOKEN_FILE_MAX (64u << 10)

/* What the token file's JWT says (never the token). */
struct kc_token_claims {
	bool read; /* the file was there and its payload parsed */
	char subject[512];
	char jti[128];
	time_t exp, iat, nbf;
};

/* The claims of the JWT in data (the token; not kept). 0, or -1 (err). */
int kc_token_claims_parse(const char *data, size_t len, struct kc_token_claims *out, struct kc_err *err);

/* The claims of the token in the file at path (read as the caller, not
 * following a link); c->read is false when there is none to read. */
void kc_token_claims_read(const char *path, struct kc_token_claims *c);

#endif

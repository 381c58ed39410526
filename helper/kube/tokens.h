/* TokenRequest: a short-lived token for a ServiceAccount, bound to the
 * revocation Secret, and what its answer says. */
#ifndef KC_KUBE_TOKENS_H
#define KC_KUBE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "common/util.h"
#include "kube/kubeapi.h"

struct kc_minted {
	char *token; /* secret: kc_kube_minted_clear() wipes it */
	time_t expiry; /* on our clock: the time we asked + lifetime */
	long lifetime; /* what the server granted (spec.expirationSeconds) */
	bool shortened; /* the server gave less than asked */
	char jti[128]; /* from the JWT, for audit only; "" if absent */
	char secret_uid[64]; /* the uid of the Secret the server bound it to; "" if unbound */
};
void kc_kube_minted_clear(struct kc_minted *m);

/* A TokenRequest answer: status.token and status.expirationTimestamp (which must
 * lie ahead), spec.expirationSeconds; jti and the bound uid from the JWT. */
int kc_kube_token_response_parse(const char *cluster, const char *ns, const char *name, json_t *resp, long ttl,
				 time_t asked, struct kc_minted *out, struct kc_err *err);

struct kc_token_spec {
	const char *sa_namespace;
	const char *sa_name;
	long ttl;
	char *const *audiences;
	size_t n_audiences;
	const char *secret; /* bound to this Secret in the same namespace; NULL or "": unbound */
	const char *secret_uid; /* and to this incarnation of it; "": whichever exists */
};

enum { KC_MINT_OK = 0, KC_MINT_SA_MISSING = 1, KC_MINT_SECRET_MISSING = 2, KC_MINT_FAILED = -1 };
/* TokenRequest. SECRET_MISSING: the bound Secret is gone or is another
 * incarnation (409). */
int kc_kube_token_request(struct kc_kube *k, const struct kc_token_spec *t, struct kc_minted *out, struct kc_err *err);

#endif

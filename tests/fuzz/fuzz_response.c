/* libFuzzer: API server answers. The first two bytes choose the HTTP status;
 * the rest is the body, parsed as the client parses it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/json_alloc.h"
#include "kube/kubeapi.h"
#include "kube/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct kc_action what = { "create", "serviceaccounts/token", "team-a", "alice" };
	struct kc_minted minted;
	struct kc_err err;
	json_t *resp;
	long status;

	if (!init) {
		kc_json_secure_init();
		init = 1;
	}
	if (size < 2)
		return 0;
	status = 100 + ((data[0] << 8 | data[1]) % 500);
	resp = json_loadb((const char *)data + 2, size - 2, JSON_REJECT_DUPLICATES, NULL);
	if (status == 200 || status == 201) {
		if (kc_kube_token_response_parse("fuzz", "team-a", "alice", resp, 28800, time(NULL), &minted, &err) ==
		    0) {
			if (!minted.token || minted.expiry <= 0)
				__builtin_trap();
			kc_kube_minted_clear(&minted);
		}
	} else {
		kc_kube_status_error_for("fuzz", status, resp, &what, &err);
		if (!err.msg[0] || !strstr(err.msg, "cluster fuzz: "))
			__builtin_trap();
	}
	json_decref(resp);
	return 0;
}

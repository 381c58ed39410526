/* libFuzzer: OpenSSH certificates on arbitrary bytes (no file is opened): the
 * parser and the judge, with the certificate's own CA trusted so that the
 * signature check runs on every blob that parses; the same bytes as
 * SSH_AUTH_INFO_0, each certificate in it parsed too, and as trusted_ca_keys. */
#include <stddef.h>
#include <stdint.h>

#include "config/sshcert.h"
#include "config/sshcert_check.h"

#define NOW 1577880000 /* inside the seeds' validity window */

static void judge(const uint8_t *data, size_t size)
{
	struct kc_sshcert *cert;
	struct kc_err err;

	if (kc_sshcert_parse(data, size, &cert, &err) == 0) {
		struct kc_sshcert_ca ca = { (unsigned char *)cert->ca_key, cert->ca_key_len, 1 };
		struct kc_sshcert_cas cas = { &ca, 1 };
		struct kc_sshcert_policy policy = { &cas, NULL, NULL };
		struct kc_sshcert_verdict verdict;
		char fp[KC_SSHKEY_FP_LEN];

		kc_sshcert_key_fingerprint(cert, fp);
		kc_sshcert_ca_fingerprint(cert, fp);
		if (kc_sshcert_check(cert, &policy, NOW, "alice", &verdict, &err) == 0) {
			(void)kc_sshcert_authorized(&verdict, "k8s-admin");
			kc_sshcert_verdict_free(&verdict);
		}
		kc_sshcert_free(cert);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_sshcert_blob *blobs;
	struct kc_sshcert_cas cas;
	struct kc_buf warnings = { 0 };
	struct kc_err err;
	size_t n;

	judge(data, size);
	if (kc_sshcert_authinfo((const char *)data, size, &blobs, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			judge(blobs[i].data, blobs[i].len);
		kc_sshcert_blobs_free(blobs, n);
	}
	if (kc_sshcert_cas_parse("fuzz.pub", (const char *)data, size, &cas, &warnings, &err) == 0)
		kc_sshcert_cas_free(&cas);
	kc_buf_free(&warnings);
	return 0;
}

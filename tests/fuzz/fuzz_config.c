/* libFuzzer: the config loader, on arbitrary bytes (no file is opened). */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_err err;
	struct kc_config *cfg = kc_config_parse("fuzz.yaml", (const char *)data, size, KC_LOAD_NO_FILES, &err);

	if (cfg) {
		/* and map a few users through whatever it says */
		static char *groups[] = { (char *)"ops", (char *)"k8s-admins" };
		struct kc_identity id = { (char *)"First.Last", 1000, 1000, (char *)"/home/x", groups, 2 };
		struct kc_target *t = calloc(cfg->n_clusters, sizeof(*t));
		struct kc_buf warnings = { 0 };

		if (t)
			kc_map_user(cfg, &id, t);
		free(t);
		kc_config_warnings(cfg, &warnings);
		kc_buf_free(&warnings);
		kc_config_free(cfg);
	}
	return 0;
}

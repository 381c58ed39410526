/* kc-sockcut: the tests' handle on kc_sockcut() (root).
 *   kc-sockcut UID URL...   cut UID's connections to each URL's current addresses
 *   kc-sockcut --supported  whether this host can cut connections at all */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifecycle/sockcut.h"

static int supported(void)
{
	struct kc_err why = { { 0 } };

	if (kc_sockcut_supported(&why) == 0) {
		printf("supported\n");
		return 0;
	}
	printf("unsupported (%s): %s\n",
	       errno == EOPNOTSUPP ? "EOPNOTSUPP"
	       : errno == EPERM	   ? "EPERM"
				   : "other",
	       why.msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct kc_endpoint_addr all[KC_SOCKCUT_MAX_ADDRS];
	struct kc_err err = { { 0 } };
	struct timespec t0, t1;
	size_t n = 0;
	unsigned cut = 0;
	char *end;
	long uid;

	if (argc == 2 && strcmp(argv[1], "--supported") == 0)
		return supported();
	if (argc < 3) {
		fprintf(stderr, "usage: kc-sockcut UID URL... | kc-sockcut --supported\n");
		return 2;
	}
	uid = strtol(argv[1], &end, 10);
	if (*end || uid < 0) {
		fprintf(stderr, "kc-sockcut: '%s' is not a uid\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		struct kc_endpoint_addr *a;
		size_t k;

		if (kc_endpoint_resolve(argv[i], &a, &k, &err) < 0) {
			fprintf(stderr, "kc-sockcut: %s\n", err.msg);
			return 1;
		}
		for (size_t j = 0; j < k && n < KC_SOCKCUT_MAX_ADDRS; j++)
			all[n++] = a[j];
		free(a);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (kc_sockcut((uid_t)uid, all, n, kc_now_ms() + 30000, &cut, &err) < 0) {
		fprintf(stderr, "kc-sockcut: %s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("cut %u in %ld us\n", cut, (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	return 0;
}

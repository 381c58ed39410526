/* Hardening the helper's own process (see process.h). */
#include "common/process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static void sane_limits(void)
{
	struct rlimit fsize = { RLIM_INFINITY, RLIM_INFINITY }, nofile;

	if (setrlimit(RLIMIT_FSIZE, &fsize) < 0 && getrlimit(RLIMIT_FSIZE, &fsize) == 0) {
		fsize.rlim_cur = fsize.rlim_max;
		setrlimit(RLIMIT_FSIZE, &fsize);
	}
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 1024) {
		struct rlimit want = { 1024, nofile.rlim_max < 1024 ? 1024 : nofile.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
			nofile.rlim_cur = nofile.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
	}
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

void kc_process_harden(void)
{
	struct rlimit none = { 0, 0 };

	prctl(PR_SET_DUMPABLE, 0);
	setrlimit(RLIMIT_CORE, &none);
	sane_limits();
}

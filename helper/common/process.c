/* Hardening the helper's own process (see process.h). */
#include "common/process.h"

#include <signal.h>
#include <string.h>
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

static char *title;
static size_t title_len;

void kc_process_title_area(int argc, char **argv)
{
	char *end;

	if (argc < 1 || !argv[0])
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	title = argv[0];
	title_len = (size_t)(end - argv[0]);
}

void kc_process_set_title(const char *const *words)
{
	size_t at = 0;

	if (!title)
		return;
	memset(title, 0, title_len);
	for (; *words; words++) {
		size_t n = strlen(*words);

		if (at + n + 1 > title_len)
			break;
		memcpy(title + at, *words, n);
		at += n + 1;
	}
}

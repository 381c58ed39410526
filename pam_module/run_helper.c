/* Starting the helper from inside sshd: nothing inherited but fds 0-2 and a
 * fixed environment, and never waiting past the deadline. */
#include "run_helper.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/subprocess.h"

int kc_run_helper(const char *path, const char *const argv[], const char *input, int timeout_ms,
		  struct kc_helper_result *res)
{
	/* execve() takes char *const[]; it does not write through them. The
	 * environment is the runner's fixed one. */
	const struct kc_subprocess p = { .path = path,
					 .argv = (char *const *)argv,
					 .input = input,
					 .input_len = input ? strlen(input) : 0,
					 .timeout_ms = timeout_ms };
	struct kc_subprocess_output o = {
		.out = res->out, .out_cap = sizeof(res->out), .err = res->err, .err_cap = sizeof(res->err)
	};
	struct kc_subprocess_result r;

	res->exit_status = -1;
	res->timed_out = false;
	res->out[0] = res->err[0] = '\0';
	if (kc_subprocess_run(&p, &o, &r) < 0) {
		snprintf(res->err, sizeof(res->err), "cannot start it: %s", strerror(r.error));
		return -1;
	}
	res->exit_status = r.exit_status;
	res->timed_out = r.timed_out;
	return 0;
}

static int check_owner(const char *path, bool is_file, char *why, size_t len)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(why, len, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (is_file && !S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s is not a regular file", path);
		return -1;
	}
	if (st.st_uid != 0 || (st.st_mode & 022)) {
		snprintf(why, len, "%s must be owned by root and not writable by group or others", path);
		return -1;
	}
	return 0;
}

int kc_safe_helper_path(const char *path, char *why, size_t len)
{
	char real[PATH_MAX];
	char *slash;

	if (path[0] != '/') {
		snprintf(why, len, "helper path %s is not absolute", path);
		return -1;
	}
	if (!realpath(path, real)) {
		snprintf(why, len, "helper %s: %s", path, strerror(errno));
		return -1;
	}
	if (check_owner(real, true, why, len) < 0)
		return -1;
	while ((slash = strrchr(real, '/'))) {
		if (slash == real) {
			real[1] = '\0';
			return check_owner(real, false, why, len);
		}
		*slash = '\0';
		if (check_owner(real, false, why, len) < 0)
			return -1;
	}
	return 0;
}

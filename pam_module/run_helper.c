/* Starting the helper from inside sshd: nothing inherited but fds 0-2 and a
 * fixed environment, and never waiting past the deadline. */
#include "run_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_from(int lowfd)
{
	long max = sysconf(_SC_OPEN_MAX);

#ifdef SYS_close_range
	if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0)
		return;
#endif
	if (max < 0 || max > 1 << 20)
		max = 1 << 20;
	for (int fd = lowfd; fd < max; fd++)
		close(fd);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void exec_child(const char *path, const char *const argv[], int out_fd, int err_fd)
{
	static const char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };
	sigset_t none;
	int null_fd;

	setsid(); /* its own process group: the deadline kills all of it */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	close_from(3);
	/* execve() takes char *const[]; it does not write through them. */
	execve(path, (char *const *)argv, (char *const *)envp);
	_exit(127);
}

static void append(char *buf, size_t *len, const char *data, size_t n)
{
	if (*len + n > KC_HELPER_OUTPUT_MAX)
		n = KC_HELPER_OUTPUT_MAX - *len;
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

/* Reads what is ready on one of the helper's pipes; closes it at its end. */
static void read_ready(int *fd, char *buf, size_t *len)
{
	char chunk[4096];
	ssize_t r = read(*fd, chunk, sizeof(chunk));

	if (r < 0 && errno == EINTR)
		return;
	if (r <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	append(buf, len, chunk, (size_t)r);
}

/* Collects stdout and stderr until both end or the deadline comes. Returns
 * false at the deadline. */
static bool collect(int *out_fd, int *err_fd, long long deadline, struct kc_helper_result *res)
{
	size_t out_len = 0, err_len = 0;

	while (*out_fd >= 0 || *err_fd >= 0) {
		struct pollfd p[2] = { { *out_fd, POLLIN, 0 }, { *err_fd, POLLIN, 0 } };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return false;
		n = poll(p, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (*out_fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			read_ready(out_fd, res->out, &out_len);
		if (*err_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			read_ready(err_fd, res->err, &err_len);
	}
	return true;
}

/* Output is closed; the helper should be exiting. Waits, but not past the
 * deadline; then kills its whole process group and reaps it. */
static void reap(pid_t pid, long long deadline, struct kc_helper_result *res)
{
	int status = 0;

	while (!res->timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			if (WIFEXITED(status))
				res->exit_status = WEXITSTATUS(status);
			return;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (now_ms() >= deadline) {
			res->timed_out = true;
			break;
		}
		usleep(2000);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int kc_run_helper(const char *path, const char *const argv[], int timeout_ms, struct kc_helper_result *res)
{
	struct sigaction dfl, saved;
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	long long deadline = now_ms() + timeout_ms;
	pid_t pid;
	int rc = -1;

	res->exit_status = -1;
	res->timed_out = false;
	res->out[0] = res->err[0] = '\0';
	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
		snprintf(res->err, sizeof(res->err), "pipe: %s", strerror(errno));
		goto out;
	}
	/* The application may ignore SIGCHLD (children reaped behind our back) or
	 * catch it; while we wait, the default holds. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &saved);
	pid = fork();
	if (pid < 0) {
		snprintf(res->err, sizeof(res->err), "fork: %s", strerror(errno));
		sigaction(SIGCHLD, &saved, NULL);
		goto out;
	}
	if (pid == 0)
		exec_child(path, argv, out_pipe[1], err_pipe[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	res->timed_out = !collect(&out_pipe[0], &err_pipe[0], deadline, res);
	reap(pid, deadline, res);
	sigaction(SIGCHLD, &saved, NULL);
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	return rc;
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

/* Running a program with a deadline (see subprocess.h). */
#include "common/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INPUT_MAX (64u << 10)

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
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

/* In the child, between fork and exec: async-signal-safe calls only (the
 * helper forks from threads). fds[0..2] become its stdin, stdout, stderr. */
static void exec_child(const struct kc_subprocess *p, const int fds[3])
{
	static char path_var[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin", lang_var[] = "LANG=C";
	char *const plain_env[] = { path_var, lang_var, NULL };
	struct sigaction dfl;
	sigset_t none;
	int high[3];

	setsid(); /* its own session and process group: the deadline kills all of it */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Above 2 first: a caller with fd 0, 1 or 2 closed may have had one of
	 * these pipes land there. */
	for (int i = 0; i < 3; i++)
		high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < 3; i++)
		if (high[i] < 0 || dup2(high[i], i) < 0)
			_exit(127);
	close_from(3);
	execve(p->path, p->argv, p->envp ? p->envp : plain_env);
	_exit(127);
}

static void append(char *buf, size_t cap, size_t *len, bool *overflow, const char *data, size_t n)
{
	if (!buf || cap == 0) {
		*overflow |= n > 0;
		return;
	}
	if (*len + n > cap - 1) {
		*overflow = true;
		n = cap - 1 - *len;
	}
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

struct pipes {
	int in, out, err; /* our ends; -1 once closed */
};

/* write() to the child's stdin without SIGPIPE: the caller (a PAM
 * application, maybe not ignoring it) must not die when the child exits
 * before reading. EPIPE is an error like another; a SIGPIPE it raised is
 * taken off this thread before the mask comes back. */
static ssize_t write_quiet(int fd, const void *buf, size_t len)
{
	sigset_t pipe_only, saved, pending;
	bool was_pending;
	ssize_t w;
	int e;

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &saved);
	w = write(fd, buf, len);
	e = errno;
	if (w < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };

		while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	errno = e;
	return w;
}

/* Feeds stdin and collects stdout and stderr until both end or the deadline
 * comes. Returns false at the deadline. */
static bool exchange(const struct kc_subprocess *p, struct pipes *io, long long deadline,
		     struct kc_subprocess_output *o)
{
	const char *input = p->input;
	size_t sent = 0;
	char chunk[4096];

	while (io->out >= 0 || io->err >= 0) {
		struct pollfd fds[3] = { { io->out, POLLIN, 0 }, { io->err, POLLIN, 0 }, { io->in, POLLOUT, 0 } };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return false;
		n = poll(fds, 3, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (io->in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write_quiet(io->in, input + sent, p->input_len - sent);

			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EINTR && errno != EAGAIN) || sent == p->input_len)
				close_fd(&io->in);
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &io->out : &io->err;
			ssize_t r;

			if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(*fd, chunk, sizeof(chunk));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0)
				close_fd(fd);
			else if (i == 0)
				append(o->out, o->out_cap, &o->out_len, &o->out_overflow, chunk, (size_t)r);
			else
				append(o->err, o->err_cap, &o->err_len, &o->err_overflow, chunk, (size_t)r);
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	return true;
}

int kc_subprocess_wait(pid_t pid, long long deadline_ms, int *status)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st = 0;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		long long left = deadline_ms - now_ms();

		if (w == pid || (w < 0 && errno != EINTR)) {
			if (fd >= 0)
				close(fd);
			if (status)
				*status = st;
			return w == pid ? 0 : -1;
		}
		if (left <= 0)
			break;
		if (fd >= 0) {
			struct pollfd p = { fd, POLLIN, 0 };

			poll(&p, 1, left > 60000 ? 60000 : (int)left);
		} else {
			usleep(1000); /* no pidfd (Linux < 5.3): a short tick */
		}
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Its output is closed; it should be exiting. Waits, but not past the
 * deadline; then kills its whole process group and reaps it. */
static void reap(pid_t pid, long long deadline, struct kc_subprocess_result *res)
{
	int status = 0;

	if (!res->timed_out && kc_subprocess_wait(pid, deadline, &status) == 0) {
		if (WIFEXITED(status))
			res->exit_status = WEXITSTATUS(status);
		return;
	}
	res->timed_out = true;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* Our ends of the pipes and the child's: stdin, stdout, stderr. */
static int open_pipes(const struct kc_subprocess *p, struct pipes *io, int child[3])
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };

	child[0] = child[1] = child[2] = -1;
	if (!p->input) {
		child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (child[0] < 0)
			return -1;
	} else if (pipe2(in, O_CLOEXEC) < 0) {
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;

		close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]), close_fd(&child[0]);
		errno = e;
		return -1;
	}
	if (p->input) {
		child[0] = in[0];
		io->in = in[1];
		fcntl(io->in, F_SETFL, O_NONBLOCK);
	}
	child[1] = out[1];
	child[2] = err[1];
	io->out = out[0];
	io->err = err[0];
	return 0;
}

static void close_child_ends(int child[3])
{
	if (child[1] != child[0])
		close_fd(&child[1]);
	if (child[2] != child[0])
		close_fd(&child[2]);
	close_fd(&child[0]);
}

int kc_subprocess_run(const struct kc_subprocess *p, struct kc_subprocess_output *o, struct kc_subprocess_result *res)
{
	struct kc_subprocess_output none = { 0 };
	struct pipes io = { -1, -1, -1 };
	struct sigaction dfl, saved;
	long long deadline = now_ms() + p->timeout_ms;
	int child[3];
	pid_t pid;

	*res = (struct kc_subprocess_result){ .exit_status = -1 };
	if (!o)
		o = &none;
	if (o->out && o->out_cap)
		o->out[0] = '\0';
	if (o->err && o->err_cap)
		o->err[0] = '\0';
	o->out_len = o->err_len = 0;
	o->out_overflow = o->err_overflow = false;
	if (p->input_len > INPUT_MAX) {
		res->error = E2BIG;
		return -1;
	}
	if (open_pipes(p, &io, child) < 0) {
		res->error = errno;
		return -1;
	}
	/* The caller may ignore SIGCHLD (children reaped behind our back) or catch
	 * it; while we wait, the default holds. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &saved);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		exec_child(p, child);
	res->error = pid < 0 ? errno : 0;
	close_child_ends(child);
	if (pid > 0) {
		res->timed_out = !exchange(p, &io, deadline, o);
		reap(pid, deadline, res);
	}
	sigaction(SIGCHLD, &saved, NULL);
	close_fd(&io.in);
	close_fd(&io.out);
	close_fd(&io.err);
	return pid < 0 ? -1 : 0;
}

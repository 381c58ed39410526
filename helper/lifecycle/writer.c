/* The writer's root side: fork, requests, answers, all bounded by deadlines. */
#include "lifecycle/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asuser/frame.h"
#include "common/subprocess.h"
#include "asuser/writer.h"

#define FINISH_GRACE_MS 100

/* The answer: status, changed, removed, message, notes. */
static int read_answer(struct kc_writer *w, long long deadline_ms, struct kc_writer_result *res, struct kc_err *err)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_frame_reader r;
	char *f[5] = { 0 };
	int rc = -1;

	if (kc_frame_recv(w->from_child, &b, deadline_ms) < 0) {
		kc_seterr(err, "the writer (running as the user) did not answer in time or ended");
		kc_writer_finish(w);
		return -1;
	}
	r = (struct kc_frame_reader){ b.data, b.data + b.len, false };
	for (int i = 0; i < 5; i++)
		f[i] = kc_frame_strdup(&r);
	if (f[4]) {
		res->status = strcmp(f[0], "ok") == 0	  ? KC_WRITE_OK
			      : strcmp(f[0], "left") == 0 ? KC_WRITE_LEFT
							  : KC_WRITE_ERROR;
		res->changed = f[1][0] == '1';
		res->removed = f[2][0] == '1';
		snprintf(res->message, sizeof(res->message), "%s", f[3]);
		kc_buf_puts(&res->notes, f[4]);
		rc = 0;
	} else {
		kc_seterr(err, "the writer answered nonsense");
	}
	for (int i = 0; i < 5; i++)
		free(f[i]);
	return rc;
}

int kc_writer_spawn(const struct kc_user *u, struct kc_writer *w, struct kc_err *err)
{
	int down[2], up[2];

	*w = (struct kc_writer)KC_WRITER_NONE;
	if (u->uid == 0)
		return kc_seterr(err, "refusing to write for root"), -1;
	if (pipe2(down, O_CLOEXEC) < 0)
		return kc_seterr(err, "pipe: %s", strerror(errno)), -1;
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]), close(down[1]);
		return kc_seterr(err, "pipe: %s", strerror(errno)), -1;
	}
	fflush(NULL);
	w->pid = fork();
	if (w->pid < 0) {
		kc_seterr(err, "fork: %s", strerror(errno));
		close(down[0]), close(down[1]), close(up[0]), close(up[1]);
		return -1;
	}
	if (w->pid == 0) {
		close(down[1]);
		close(up[0]);
		kc_asuser_writer(u, down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	w->to_child = down[1];
	w->from_child = up[0];
	fcntl(w->to_child, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Waits for the writer's first word: it has dropped to the user, or why not. */
static int greet(struct kc_writer *w, long long deadline_ms, struct kc_err *err)
{
	struct kc_writer_result hello = { .status = KC_WRITE_ERROR };

	if (read_answer(w, deadline_ms, &hello, err) < 0 || hello.status != KC_WRITE_OK) {
		if (hello.message[0])
			kc_seterr(err, "%s", hello.message);
		kc_buf_free(&hello.notes);
		kc_writer_finish(w);
		return -1;
	}
	kc_buf_free(&hello.notes);
	w->greeted = true;
	return 0;
}

int kc_writer_ready(struct kc_writer *w, long long deadline_ms, struct kc_err *err)
{
	if (w->pid <= 0)
		return kc_seterr(err, "no writer process"), -1;
	return w->greeted ? 0 : greet(w, deadline_ms, err);
}

static void put_entry(struct kc_buf *b, const struct kc_merge_entry *e)
{
	kc_frame_puts(b, e->name);
	kc_frame_puts(b, e->server);
	kc_frame_put(b, e->ca_pem ? (const char *)e->ca_pem : "", e->ca_pem ? e->ca_pem_len : 0);
	kc_frame_puts(b, e->insecure_skip_tls_verify ? "1" : "0");
	kc_frame_puts(b, e->sa_namespace);
	kc_frame_puts(b, e->token_file);
	kc_frame_puts(b, e->token);
}

int kc_writer_merge(struct kc_writer *w, const char *relpath, const char *others, bool remove_if_empty,
		    const struct kc_merge_entry *e, size_t n, long long deadline_ms, struct kc_writer_result *res,
		    struct kc_err *err)
{
	kc_autobuf struct kc_buf b = { .secret = true };
	char count[24];

	memset(res, 0, sizeof(*res));
	if (w->pid <= 0)
		return kc_seterr(err, "no writer process"), -1;
	if (!w->greeted && greet(w, deadline_ms, err) < 0)
		return -1;
	snprintf(count, sizeof(count), "%zu", n);
	kc_frame_puts(&b, "merge");
	kc_frame_puts(&b, relpath);
	kc_frame_puts(&b, others);
	kc_frame_puts(&b, remove_if_empty ? "1" : "0");
	kc_frame_puts(&b, count);
	for (size_t i = 0; i < n; i++)
		put_entry(&b, &e[i]);
	if (kc_frame_send(w->to_child, &b, deadline_ms) < 0) {
		kc_seterr(err, "the writer (running as the user) did not take the request in time or ended");
		kc_writer_finish(w);
		return -1;
	}
	return read_answer(w, deadline_ms, res, err);
}

static bool reap_within(pid_t pid, int ms)
{
	return kc_subprocess_wait(pid, kc_now_ms() + ms, NULL) == 0;
}

void kc_writer_hangup(struct kc_writer *w)
{
	if (w->to_child >= 0)
		close(w->to_child);
	if (w->from_child >= 0)
		close(w->from_child);
	w->to_child = w->from_child = -1;
}

void kc_writer_finish(struct kc_writer *w)
{
	kc_writer_hangup(w);
	if (w->pid > 0 && !reap_within(w->pid, FINISH_GRACE_MS)) {
		/* Stopped or stuck: it is the user's process, we do not wait for it. */
		kill(w->pid, SIGKILL);
		reap_within(w->pid, FINISH_GRACE_MS);
	}
	w->pid = -1;
}

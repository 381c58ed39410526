/* The writer process: drops to the user, then merges our entries into the
 * user's kubeconfig on request, fd-relative, under kubectl's own lock, writing
 * only when the bytes change and only over the file it read. */
#include "asuser/writer.h"
#include "asuser/drop.h"
#include "asuser/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asuser/home.h"
#include "common/fileio.h"
#include "asuser/kubeconfig_merge.h"
#include "asuser/kubeconfig_names.h"

#define FILE_MAX (1u << 20) /* a kubeconfig larger than this is left alone */
#define LOCK_WAIT_MS 1000
#define LOCK_POLL_MS 50

struct merge_req {
	char *relpath, *others, *remove_if_empty;
	struct kc_merge_entry *e;
	char **fields; /* KC_ENTRY_FIELDS per entry, owned */
	size_t n;
};

static void req_free(struct merge_req *q)
{
	free(q->relpath);
	free(q->others);
	free(q->remove_if_empty);
	for (size_t i = 0; q->fields && i < q->n * KC_ENTRY_FIELDS; i++)
		kc_free_secret(q->fields[i]); /* an inline token may be among them */
	free(q->fields);
	free(q->e);
}

static int req_parse(struct kc_frame_reader *r, struct merge_req *q)
{
	char *count;

	memset(q, 0, sizeof(*q));
	q->relpath = kc_frame_strdup(r);
	q->others = kc_frame_strdup(r);
	q->remove_if_empty = kc_frame_strdup(r);
	count = kc_frame_strdup(r);
	if (!q->relpath || !q->others || !q->remove_if_empty || !count) {
		free(count);
		return -1;
	}
	q->n = strtoul(count, NULL, 10);
	free(count);
	if (q->n > 1000)
		return -1;
	q->fields = calloc(q->n * KC_ENTRY_FIELDS + 1, sizeof(char *));
	q->e = calloc(q->n + 1, sizeof(*q->e));
	if (!q->fields || !q->e)
		return -1;
	for (size_t i = 0; i < q->n * KC_ENTRY_FIELDS; i++)
		if (!(q->fields[i] = kc_frame_strdup(r)))
			return -1;
	for (size_t i = 0; i < q->n; i++) {
		char **f = &q->fields[i * KC_ENTRY_FIELDS];

		for (size_t k = 0; k < KC_ENTRY_FIELDS; k++)
			if (!f[k])
				return -1;

		q->e[i] = (struct kc_merge_entry){ .name = f[0],
						   .server = f[1],
						   .ca_pem = (const unsigned char *)f[2],
						   .ca_pem_len = strlen(f[2]),
						   .insecure_skip_tls_verify = f[3][0] == '1',
						   .sa_namespace = f[4],
						   .token_file = f[5][0] ? f[5] : NULL,
						   .token = f[6][0] ? f[6] : NULL };
		if (!f[2][0])
			q->e[i].ca_pem = NULL;
	}
	return 0;
}

/* kubectl's lock (client-go: FILE.lock made with O_EXCL, removed after): we
 * take it too, so neither rewrites the file under the other. */
static int take_lock(int dir, const char *leaf, char *lock, size_t len)
{
	snprintf(lock, len, "%.200s.lock", leaf);
	for (int waited = 0;; waited += LOCK_POLL_MS) {
		int fd = openat(dir, lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST || waited >= LOCK_WAIT_MS)
			return -1;
		usleep(LOCK_POLL_MS * 1000);
	}
}

/* The names ~/.kube/config defines, when it is there and readable. */
/* The user's own ~/.kube/config is read as kubectl reads it: through a
 * symbolic link (dotfile managers leave one; this process is the user, so it
 * reads only what the user may), up to 8 MiB (600 clusters with their CAs
 * take 1.2 MiB). A file there that cannot be read whole may name any
 * context: the merge then keeps the current-context as it is. */
#define OTHERS_MAX (8u << 20)

static void read_others(int home, const char *relpath, struct kc_kubeconfig_names *names)
{
	kc_autobuf struct kc_buf data = { 0 };
	kc_autoclose int fd = openat(home, relpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	struct kc_err e;

	memset(names, 0, sizeof(*names));
	if (fd < 0 && errno == ENOENT)
		goto out;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || kc_read_fd(fd, OTHERS_MAX, &data, &e) < 0 ||
	    kc_kubeconfig_names_parse(data.data, data.len, names, &e) < 0)
		names->unreadable = true;
out:
	names->label = "~/.kube/config";
}

struct merge_out {
	const char *status; /* "ok", "left", "error" */
	bool changed, removed;
	struct kc_err err;
	struct kc_buf notes;
};

static void merge_at(int dir, const char *leaf, const struct merge_req *q, const struct kc_kubeconfig_names *others,
		     struct merge_out *o)
{
	kc_autobuf struct kc_buf old = { .secret = true }, out = { .secret = true };
	struct stat st = { 0 };
	bool empty = false;
	int rc = kc_read_at(dir, leaf, FILE_MAX, &old, &st, &o->err);

	if (rc < 0) {
		o->status = "left";
		return;
	}
	if (kc_kubeconfig_merge(old.data, old.len, q->e, q->n, others, &out, &o->changed, &empty, &o->notes, &o->err) <
	    0) {
		o->status = "left";
		return;
	}
	o->status = "ok";
	if (!o->changed && !(empty && q->remove_if_empty[0] == '1' && rc == 0))
		return;
	if (empty && q->remove_if_empty[0] == '1') {
		if (rc == 0 && unlinkat(dir, leaf, 0) < 0)
			kc_seterr(&o->err, "cannot remove ~/%s: %s", q->relpath, strerror(errno)), o->status = "error";
		o->removed = rc == 0;
		return;
	}
	{
		const struct kc_write_opts w = { .mode = 0600, .uid = KC_KEEP_OWNER, .expect = &st };

		rc = kc_write_at(dir, leaf, out.data, out.len, &w, &o->err);
		if (rc != 0)
			o->status = rc == 1 ? "left" : "error";
	}
}

static void op_merge(const struct kc_user *u, struct kc_frame_reader *r, struct merge_out *o)
{
	struct merge_req q;
	struct kc_kubeconfig_names others = { 0 };
	const char *leaf = NULL;
	char lock[256];
	kc_autoclose int home = -1, dir = -1;

	o->status = "error";
	if (req_parse(r, &q) < 0) {
		kc_seterr(&o->err, "bad request");
		goto out;
	}
	home = kc_home_open(u, &o->err);
	if (home < 0)
		goto out;
	dir = kc_home_parent(home, u->uid, q.relpath, q.n > 0, &leaf, &o->err);
	if (dir == KC_ABSENT) {
		o->status = "ok"; /* nothing there, nothing to remove */
		goto out;
	}
	if (dir < 0)
		goto out;
	/* The user's own file first: the lock guards config-eks alone, and a slow
	 * read (a link into NFS, a huge file) must not leave it behind. */
	read_others(home, q.others, &others);
	if (take_lock(dir, leaf, lock, sizeof(lock)) < 0) {
		kc_seterr(&o->err,
			  "~/%s.lock exists (kubectl is changing the file, or left the lock behind); the "
			  "file was left as it was",
			  q.relpath);
		o->status = "left";
		goto out;
	}
	merge_at(dir, leaf, &q, &others, o);
	unlinkat(dir, lock, 0);
out:
	kc_kubeconfig_names_free(&others);
	req_free(&q);
}

/* ---- the process ------------------------------------------------------------ */

static int reply(int out, const char *status, bool changed, bool removed, const char *msg, const char *notes)
{
	kc_autobuf struct kc_buf b = { 0 };

	kc_frame_puts(&b, status);
	kc_frame_puts(&b, changed ? "1" : "0");
	kc_frame_puts(&b, removed ? "1" : "0");
	kc_frame_puts(&b, msg);
	kc_frame_puts(&b, notes);
	return kc_frame_send(out, &b, 0);
}

/* Nothing the helper had open reaches the user's process: only the two pipes
 * and stderr stay. */
static void close_inherited(int in, int out)
{
	int lo = in < out ? in : out, hi = in < out ? out : in;

	close_range(3, (unsigned)lo - 1, 0);
	close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

void kc_asuser_writer(const struct kc_user *u, int in, int out)
{
	struct kc_buf req = { .secret = true };
	pid_t parent = getppid();
	int null_fd;

	close_inherited(in, out);
	umask(077);
	/* stdout belongs to the helper's answer to the module; the writer has none. */
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, STDOUT_FILENO);
		close(null_fd);
	}
	if (kc_asuser_drop(u) < 0) {
		reply(out, "error", false, false, "cannot drop privileges to the user; nothing written", "");
		_exit(1);
	}
	/* After the drop: a change of credentials clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (reply(out, "ok", false, false, "", "") < 0)
		_exit(1);
	while (kc_frame_recv(in, &req, 0) == 0) {
		struct kc_frame_reader r = { req.data, req.data + req.len, false };
		struct merge_out o = { 0 };
		size_t oplen;
		const char *op = kc_frame_get(&r, &oplen);

		if (op && oplen == 5 && memcmp(op, "merge", 5) == 0)
			op_merge(u, &r, &o);
		else
			o.status = "error", kc_seterr(&o.err, "bad request");
		if (reply(out, o.status, o.changed, o.removed, o.err.msg, o.notes.data ? o.notes.data : "") < 0)
			break;
		kc_buf_free(&o.notes);
		kc_buf_free(&req);
		req.secret = true;
	}
	kc_buf_free(&req);
	_exit(0);
}

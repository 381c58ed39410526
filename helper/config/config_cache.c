/* Parsed configs, serialised into the root-only cache directory. */
#include "kc_config_cache.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kc_cache.h"

#define MAGIC "KCCACHE3"
#define HEADER_MAX (8 + 64 + 4 + 128 + 4 + 4096)
#define NULL_STR UINT32_MAX
#define CACHE_MAX (64u << 20)

/* ---- writing ------------------------------------------------------------------ */

static void put_u64(struct kc_buf *b, uint64_t v)
{
	kc_buf_append(b, &v, sizeof(v));
}

static void put_bytes(struct kc_buf *b, const void *data, size_t len, bool present)
{
	uint32_t n = present ? (uint32_t)len : NULL_STR;

	kc_buf_append(b, &n, sizeof(n));
	if (present)
		kc_buf_append(b, data, len);
}

static void put_str(struct kc_buf *b, const char *s)
{
	put_bytes(b, s, s ? strlen(s) : 0, s != NULL);
}

static void put_mark(struct kc_buf *b, struct kc_mark m)
{
	put_u64(b, (uint64_t)m.line << 32 | m.col);
}

static void put_eks(struct kc_buf *b, const struct kc_eks_ref *e)
{
	const char *s[] = { e->cluster_name,
			    e->cluster_id,
			    e->region,
			    e->role_arn,
			    e->credentials_file,
			    e->profile,
			    e->web_identity_token_file,
			    e->credential_process,
			    e->container_uri,
			    e->container_token_file,
			    e->endpoint,
			    e->sts_endpoint,
			    e->imds_endpoint,
			    e->endpoint_ca };
	const struct kc_mark m[] = { e->credentials_mark, e->endpoint_ca_mark, e->web_identity_mark,
				     e->container_token_mark, e->process_mark };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		put_str(b, s[i]);
	put_u64(b, (uint64_t)e->use_fips_endpoint << 1 | e->use_dualstack_endpoint);
	put_u64(b, (uint64_t)e->discovery_ttl);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		put_mark(b, m[i]);
}

static void put_cluster(struct kc_buf *b, const struct kc_cluster *cl)
{
	put_str(b, cl->name);
	put_str(b, cl->context);
	put_str(b, cl->server);
	put_str(b, cl->ca_file);
	/* certificate_authority_data only: a CA file is read at every load */
	put_bytes(b, cl->ca_pem, cl->ca_pem_len, cl->ca_pem && !cl->ca_file);
	put_str(b, cl->proxy);
	put_u64(b, (uint64_t)cl->context_given << 2 | (uint64_t)cl->insecure_skip_tls_verify << 1 | cl->has_eks);
	put_eks(b, &cl->eks);
	put_u64(b, (uint64_t)cl->auth);
	put_str(b, cl->token_file);
	put_str(b, cl->client_certificate);
	put_str(b, cl->client_key);
	put_eks(b, &cl->auth_eks);
	put_mark(b, cl->mark);
	put_mark(b, cl->auth_mark);
	put_mark(b, cl->insecure_mark);
	put_mark(b, cl->ca_mark);
	put_mark(b, cl->token_mark);
	put_mark(b, cl->cert_mark);
	put_mark(b, cl->key_mark);
}

static void put_mapping(struct kc_buf *b, const struct kc_mapping *m)
{
	put_str(b, m->user);
	put_str(b, m->group);
	put_str(b, m->cluster);
	put_str(b, m->sa_namespace);
	put_str(b, m->sa_name);
	put_str(b, m->clusterrole);
	put_u64(b, (uint64_t)m->create << 1 | m->cluster_wide);
	put_mark(b, m->mark);
	put_mark(b, m->sa_mark);
}

/* ---- reading, every length checked ------------------------------------------------ */

struct reader {
	const char *p, *end;
	bool bad;
};

static uint64_t get_u64(struct reader *r)
{
	uint64_t v = 0;

	if (r->end - r->p < (ptrdiff_t)sizeof(v)) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p, sizeof(v));
	r->p += sizeof(v);
	return v;
}

static void *get_bytes(struct reader *r, size_t *len)
{
	uint32_t n;
	char *out;

	*len = 0;
	if (r->bad || r->end - r->p < (ptrdiff_t)sizeof(n)) {
		r->bad = true;
		return NULL;
	}
	memcpy(&n, r->p, sizeof(n));
	r->p += sizeof(n);
	if (n == NULL_STR)
		return NULL;
	if ((size_t)(r->end - r->p) < n || !(out = malloc((size_t)n + 1))) {
		r->bad = true;
		return NULL;
	}
	memcpy(out, r->p, n);
	out[n] = '\0';
	r->p += n;
	*len = n;
	return out;
}

static char *get_str(struct reader *r)
{
	size_t n;
	char *s = get_bytes(r, &n);

	if (s && strlen(s) != n) /* no NUL inside a string */
		r->bad = true;
	return s;
}

static struct kc_mark get_mark(struct reader *r)
{
	uint64_t v = get_u64(r);
	struct kc_mark m = { (unsigned)(v >> 32), (unsigned)(v & 0xffffffffu) };

	return m;
}

static void get_eks(struct reader *r, struct kc_eks_ref *e)
{
	char **s[] = { &e->cluster_name,
		       &e->cluster_id,
		       &e->region,
		       &e->role_arn,
		       &e->credentials_file,
		       &e->profile,
		       &e->web_identity_token_file,
		       &e->credential_process,
		       &e->container_uri,
		       &e->container_token_file,
		       &e->endpoint,
		       &e->sts_endpoint,
		       &e->imds_endpoint,
		       &e->endpoint_ca };
	struct kc_mark *m[] = { &e->credentials_mark, &e->endpoint_ca_mark, &e->web_identity_mark,
				&e->container_token_mark, &e->process_mark };
	uint64_t flags;

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		*s[i] = get_str(r);
	flags = get_u64(r);
	e->use_fips_endpoint = flags >> 1 & 1;
	e->use_dualstack_endpoint = flags & 1;
	e->discovery_ttl = (long)get_u64(r);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		*m[i] = get_mark(r);
}

/* The top-level settings, up to the clusters. */
static int get_settings(struct reader *r, struct kc_config *cfg)
{
	uint64_t flags, n;

	cfg->min_uid = get_u64(r);
	cfg->host_id = get_str(r);
	cfg->kubeconfig_path = get_str(r);
	flags = get_u64(r);
	cfg->inline_token = flags >> 3 & 1;
	cfg->cut_on_logout = flags >> 2 & 1;
	cfg->set_env = flags >> 1 & 1;
	cfg->remove_on_logout = flags & 1;
	cfg->ttl = (long)get_u64(r);
	n = get_u64(r);
	if (n > 4096 || !(cfg->audiences = calloc(n + 1, sizeof(char *))))
		return -1;
	for (; cfg->n_audiences < n && !r->bad; cfg->n_audiences++)
		cfg->audiences[cfg->n_audiences] = get_str(r);
	cfg->revoke_on_logout = get_u64(r) & 1;
	cfg->refresh_before = (int)get_u64(r);
	cfg->connect_timeout_ms = (long)get_u64(r);
	cfg->request_timeout_ms = (long)get_u64(r);
	cfg->after_failure = (long)get_u64(r);
	return 0;
}

static void get_cluster(struct reader *r, struct kc_cluster *cl)
{
	size_t len;
	uint64_t flags;

	cl->name = get_str(r);
	cl->context = get_str(r);
	cl->server = get_str(r);
	cl->ca_file = get_str(r);
	cl->ca_pem = get_bytes(r, &len);
	cl->ca_pem_len = len;
	cl->proxy = get_str(r);
	flags = get_u64(r);
	cl->context_given = flags >> 2 & 1;
	cl->insecure_skip_tls_verify = flags >> 1 & 1;
	cl->has_eks = flags & 1;
	get_eks(r, &cl->eks);
	cl->auth = (enum kc_auth_kind)get_u64(r);
	cl->token_file = get_str(r);
	cl->client_certificate = get_str(r);
	cl->client_key = get_str(r);
	get_eks(r, &cl->auth_eks);
	cl->mark = get_mark(r);
	cl->auth_mark = get_mark(r);
	cl->insecure_mark = get_mark(r);
	cl->ca_mark = get_mark(r);
	cl->token_mark = get_mark(r);
	cl->cert_mark = get_mark(r);
	cl->key_mark = get_mark(r);
	if (!cl->name || !cl->context || cl->auth > KC_AUTH_EKS)
		r->bad = true;
}

static void get_mapping(struct reader *r, struct kc_mapping *m)
{
	uint64_t flags;

	m->user = get_str(r);
	m->group = get_str(r);
	m->cluster = get_str(r);
	m->sa_namespace = get_str(r);
	m->sa_name = get_str(r);
	m->clusterrole = get_str(r);
	flags = get_u64(r);
	m->create = flags >> 1 & 1;
	m->cluster_wide = flags & 1;
	m->mark = get_mark(r);
	m->sa_mark = get_mark(r);
	if (!m->cluster || !m->sa_namespace || !m->sa_name || !m->user == !m->group)
		r->bad = true;
}

/* ---- the build ------------------------------------------------------------------ */

struct build_id {
	unsigned char id[64];
	size_t len;
};

/* The GNU build id of the program (the first object dl_iterate_phdr reports):
 * the linker hashes the whole output into it, so any change of code gives
 * another one. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
	struct build_id *b = data;

	for (int i = 0; i < info->dlpi_phnum && !b->len; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		size_t align = ph->p_align == 8 ? 8 : 4;
		const char *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *nh = (const void *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + align - 1) & ~(align - 1));

			if (desc > end || (size_t)(end - desc) < nh->n_descsz)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
			    nh->n_descsz > 0 && nh->n_descsz <= sizeof(b->id)) {
				memcpy(b->id, desc, nh->n_descsz);
				b->len = nh->n_descsz;
				break;
			}
			p = desc + ((nh->n_descsz + align - 1) & ~(align - 1));
		}
	}
	return 1; /* the program only, never the libraries */
}

/* Hex of the build id; without one (linked with --build-id=none), a hash of
 * the program's file. "" if neither can be had: then nothing is cached. */
static const char *build_id(void)
{
	static char hex[129];
	static bool done;
	struct build_id b = { { 0 }, 0 };

	if (done)
		return hex;
	done = true;
	dl_iterate_phdr(find_build_id, &b);
	if (b.len) {
		for (size_t i = 0; i < b.len; i++)
			snprintf(hex + 2 * i, 3, "%02x", b.id[i]);
	} else {
		kc_autobuf struct kc_buf exe = { 0 };
		kc_autoclose int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		struct kc_err e;

		if (fd >= 0 && kc_read_fd(fd, 256u << 20, &exe, &e) == 0 && exe.len)
			kc_sha256_hex(exe.data, exe.len, hex);
	}
	return hex;
}

/* ---- the file ------------------------------------------------------------------------- */

static void key_of(const char *path, const struct stat *st, char name[80], char key[65])
{
	kc_autobuf struct kc_buf k = { 0 };
	char hex[65];

	kc_sha256_hex(path, strlen(path), hex);
	snprintf(name, 80, "config-%.24s.cache", hex);
	/* The build is part of the key: a parser or validation fix in an upgrade
	 * applies to an unchanged config at once. */
	kc_buf_printf(&k, "%s|%s|%s|%ju|%ju|%jd|%ld.%09ld|%ld.%09ld|%u|%o|%zu.%zu.%zu.%zu", MAGIC, build_id(), path,
		      (uintmax_t)st->st_dev, (uintmax_t)st->st_ino, (intmax_t)st->st_size, (long)st->st_mtim.tv_sec,
		      st->st_mtim.tv_nsec, (long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, (unsigned)st->st_uid,
		      (unsigned)st->st_mode, sizeof(struct kc_config), sizeof(struct kc_cluster),
		      sizeof(struct kc_mapping), sizeof(struct kc_eks_ref));
	kc_sha256_hex(k.data, k.len, key);
}

/* Is this cache file stale: another build's (or an older format's), or made
 * for a config that no longer exists? */
static bool stale(int dir, const char *name)
{
	kc_autoclose int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	char head[HEADER_MAX];
	struct reader r;
	struct stat st;
	char *build, *path;
	ssize_t n;
	bool old;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	n = read(fd, head, sizeof(head));
	if (n < 72 || memcmp(head, MAGIC, 8) != 0)
		return true;
	r = (struct reader){ head + 72, head + n, false };
	build = get_str(&r);
	path = get_str(&r);
	old = r.bad || !build || !path || strcmp(build, build_id()) != 0 || (lstat(path, &st) < 0 && errno == ENOENT);
	free(build);
	free(path);
	return old;
}

/* Removes the stale entries beside the one being written. Runs only when a
 * config was parsed (a cache miss), so a login that hits the cache pays nothing. */
static void prune(int dir, const char *keep)
{
	int fd = dup(dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, "config-", 7) != 0 || len < 13 || strcmp(de->d_name + len - 6, ".cache") != 0 ||
		    strcmp(de->d_name, keep) == 0)
			continue;
		if (stale(dir, de->d_name))
			unlinkat(dir, de->d_name, 0);
	}
	closedir(d);
}

void kc_config_cache_put(const char *path, const struct stat *st, const struct kc_config *cfg)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_err e;
	char name[80], key[65], tmp[128];
	kc_autoclose int dir = -1, fd = -1;

	if (geteuid() != 0 || !*build_id())
		return;
	key_of(path, st, name, key);
	kc_buf_append(&b, MAGIC, 8);
	kc_buf_append(&b, key, 64);
	put_str(&b, build_id());
	put_str(&b, path);
	put_u64(&b, cfg->min_uid);
	put_str(&b, cfg->host_id);
	put_str(&b, cfg->kubeconfig_path);
	put_u64(&b, (uint64_t)cfg->inline_token << 3 | (uint64_t)cfg->cut_on_logout << 2 | (uint64_t)cfg->set_env << 1 |
			    cfg->remove_on_logout);
	put_u64(&b, (uint64_t)cfg->ttl);
	put_u64(&b, cfg->n_audiences);
	for (size_t i = 0; i < cfg->n_audiences; i++)
		put_str(&b, cfg->audiences[i]);
	put_u64(&b, cfg->revoke_on_logout);
	put_u64(&b, (uint64_t)cfg->refresh_before);
	put_u64(&b, (uint64_t)cfg->connect_timeout_ms);
	put_u64(&b, (uint64_t)cfg->request_timeout_ms);
	put_u64(&b, (uint64_t)cfg->after_failure);
	put_u64(&b, cfg->n_clusters);
	for (size_t i = 0; i < cfg->n_clusters; i++)
		put_cluster(&b, &cfg->clusters[i]);
	put_u64(&b, cfg->n_mappings);
	for (size_t i = 0; i < cfg->n_mappings; i++)
		put_mapping(&b, &cfg->mappings[i]);
	if (!b.data || (dir = kc_open_state_dir(KC_CACHE_DIR, &e)) < 0)
		return;
	prune(dir, name);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && kc_write_all(fd, b.data, b.len) == 0)
		renameat(dir, tmp, dir, name);
	else
		unlinkat(dir, tmp, 0);
}

/* The bytes of this build's entry for this file identity. */
static int read_entry(const char *path, const struct stat *st, struct kc_buf *b)
{
	struct kc_err e;
	char name[80], key[65];
	kc_autoclose int dir = -1, fd = -1;

	if (!*build_id())
		return -1;
	key_of(path, st, name, key);
	if ((dir = kc_open_state_dir(KC_CACHE_DIR, &e)) < 0 ||
	    (fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || kc_read_fd(fd, CACHE_MAX, b, &e) < 0)
		return -1;
	return b->len >= 72 && memcmp(b->data, MAGIC, 8) == 0 && memcmp(b->data + 8, key, 64) == 0 ? 0 : -1;
}

struct kc_config *kc_config_cache_get(const char *path, const struct stat *st)
{
	kc_autobuf struct kc_buf b = { 0 };
	struct kc_config *cfg;
	struct reader r;
	uint64_t n;

	if (read_entry(path, st, &b) < 0)
		return NULL;
	r = (struct reader){ b.data + 72, b.data + b.len, false };
	free(get_str(&r)); /* the build and the path: for pruning; the key holds both */
	free(get_str(&r));
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path)))
		goto bad;
	if (get_settings(&r, cfg) < 0)
		goto bad;
	n = get_u64(&r);
	if (r.bad || n == 0 || n > 100000 || !(cfg->clusters = calloc(n, sizeof(*cfg->clusters))))
		goto bad;
	for (; cfg->n_clusters < n && !r.bad; cfg->n_clusters++)
		get_cluster(&r, &cfg->clusters[cfg->n_clusters]);
	n = get_u64(&r);
	if (r.bad || n > 10000000 || !(cfg->mappings = calloc(n ? n : 1, sizeof(*cfg->mappings))))
		goto bad;
	for (; cfg->n_mappings < n && !r.bad; cfg->n_mappings++)
		get_mapping(&r, &cfg->mappings[cfg->n_mappings]);
	if (r.bad || r.p != r.end || !cfg->host_id || !cfg->kubeconfig_path)
		goto bad;
	return cfg;
bad:
	kc_config_free(cfg);
	return NULL;
}

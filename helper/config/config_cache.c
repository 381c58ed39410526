/* Parsed configs in the cache store, so a login does not parse a large
 * unchanged config again. An entry is the config's field lists' form
 * (cfg_fields_save), keyed by the file's identity and the program's build. */
#include "config/config_cache.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/fields.h"
#include "common/fileio.h"
#include "common/cache.h"

#define MAGIC "KCCACHE4"
#define KIND "config"

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

/* ---- the entry ------------------------------------------------------------------------ */

/* path, device, inode, size, mtime and ctime (which nobody can set back),
 * owner and mode, and the build: a parser or validation fix in an upgrade
 * applies to an unchanged config at once. */
static void key_of(const char *path, const struct stat *st, struct kc_buf *k)
{
	kc_buf_printf(k, "%s|%s|%s|%ju|%ju|%jd|%ld.%09ld|%ld.%09ld|%u|%o", MAGIC, build_id(), path,
		      (uintmax_t)st->st_dev, (uintmax_t)st->st_ino, (intmax_t)st->st_size, (long)st->st_mtim.tv_sec,
		      st->st_mtim.tv_nsec, (long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, (unsigned)st->st_uid,
		      (unsigned)st->st_mode);
}

static void put_str(struct kc_buf *b, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);

	kc_buf_append(b, &n, sizeof(n));
	kc_buf_append(b, s, n);
}

/* The header: MAGIC, the build and the config's path (for pruning). */
static bool read_header(struct cfg_reader *r, char *build, size_t blen, char *path, size_t plen)
{
	char *out[2] = { build, path };
	size_t cap[2] = { blen, plen };

	if (r->end - r->p < 8 || memcmp(r->p, MAGIC, 8) != 0)
		return false;
	r->p += 8;
	for (int i = 0; i < 2; i++) {
		uint32_t n;

		if (r->end - r->p < (ptrdiff_t)sizeof(n))
			return false;
		memcpy(&n, r->p, sizeof(n));
		r->p += sizeof(n);
		if ((size_t)(r->end - r->p) < n || n >= cap[i])
			return false;
		memcpy(out[i], r->p, n);
		out[i][n] = '\0';
		r->p += n;
	}
	return true;
}

/* Another build's entry, an older format's, or one for a config that is gone. */
static bool stale(const char *data, size_t len)
{
	struct cfg_reader r = { data, data + len, false };
	char build[160], path[4096];
	struct stat st;

	return !read_header(&r, build, sizeof(build), path, sizeof(path)) || strcmp(build, build_id()) != 0 ||
	       (lstat(path, &st) < 0 && errno == ENOENT);
}

void kc_config_cache_put(const char *path, const struct stat *st, const struct kc_config *cfg)
{
	kc_autobuf struct kc_buf b = { 0 }, key = { 0 };
	struct kc_err e;

	if (geteuid() != 0 || !*build_id())
		return;
	key_of(path, st, &key);
	kc_buf_append(&b, MAGIC, 8);
	put_str(&b, build_id());
	put_str(&b, path);
	cfg_fields_save(&cfg_config_desc, cfg, &b);
	if (!b.data || !key.data || kc_cache_put(KIND, key.data, b.data, b.len, &e) < 0)
		return;
	/* Only after a parse (a miss): a login that hits the cache pays nothing. */
	kc_cache_prune(KIND, key.data, stale);
}

struct kc_config *kc_config_cache_get(const char *path, const struct stat *st)
{
	kc_autobuf struct kc_buf b = { 0 }, key = { 0 };
	char build[160], from[4096];
	struct kc_config *cfg;
	struct cfg_reader r;
	struct kc_err e;

	if (!*build_id())
		return NULL;
	key_of(path, st, &key);
	if (!key.data || kc_cache_get(KIND, key.data, 0, 0, &b, NULL, &e) != 0)
		return NULL;
	r = (struct cfg_reader){ b.data, b.data + b.len, false };
	if (!read_header(&r, build, sizeof(build), from, sizeof(from)) || strcmp(from, path) != 0)
		return NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	cfg_fields_load(&cfg_config_desc, cfg, &r);
	if (r.bad || r.p != r.end || !cfg->path || strcmp(cfg->path, path) != 0 || !cfg->host_id ||
	    !cfg->kubeconfig_path || cfg->n_clusters == 0) {
		cfg_fields_free(&cfg_config_desc, cfg);
		free(cfg);
		return NULL;
	}
	return cfg;
}

# pam_kubeconfig: `make` builds into build/; `make test` and `make demo` install
# what a fresh Debian machine lacks first (as root). See README.md.

PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/pam-kubeconfig
UNITDIR    ?= /lib/systemd/system
TMPFILESDIR ?= /usr/lib/tmpfiles.d
STATEDIR   ?= /var/lib/pam_kubeconfig
CACHEDIR   ?= /var/cache/pam_kubeconfig
LOGDIR     ?= /var/log/pam_kubeconfig
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)
PAMDIR     ?= $(or $(shell pkg-config --variable=securedir pam 2>/dev/null),/lib/$(MULTIARCH)/security)
HELPER_PATH = $(SBINDIR)/pam-kubeconfig

# SAN=1 builds everything with ASan+UBSan into build/san/.
ifeq ($(SAN),1)
B          := build/san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TIERS      ?= unit pam fuzz
else
B          := build
SANFLAGS   :=
endif

PKGS       := libcurl jansson yaml-0.1 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread

WARN       := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -Wno-unused-parameter -Wvla -Wwrite-strings
ifeq ($(CI),true)
WARN       += -Werror
endif
HARDEN     := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
override CFLAGS := -std=gnu11 -O2 -g $(WARN) $(HARDEN) $(SANFLAGS) -D_GNU_SOURCE -Ihelper -Iinclude $(CFLAGS)
override LDFLAGS := -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)

LIB_SRCS   := $(filter-out helper/main.c,$(wildcard helper/*.c helper/*/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(B)/obj/%.o)
# The module links its own sources and the subprocess runner it shares with the helper.
MOD_SRCS   := $(wildcard pam_module/*.c) helper/common/subprocess.c
MOD_OBJS   := $(MOD_SRCS:%.c=$(B)/obj/%.pic.o)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)

.PHONY: all deps test test-unit soak chaos demo clean lint format format-check fuzz fuzzers bench cluster-up cluster-down \
	install uninstall FORCE
all: $(B)/pam-kubeconfig $(B)/pam_kubeconfig.so $(B)/tests/kc-session-driver $(B)/tests/failsyscall.so \
	$(B)/tests/kc-argv0 $(B)/tests/kc-sockcut $(B)/tests/kc-merge

$(B)/obj/%.o: %.c $(wildcard include/*.h helper/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE $(PKG_CFLAGS) -c $< -o $@

# The helper's path is compiled into the module: a change of SBINDIR rebuilds it.
$(B)/helper-path.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define KC_HELPER_PATH "$(HELPER_PATH)"' | cmp -s - $@ || \
		echo '#define KC_HELPER_PATH "$(HELPER_PATH)"' > $@
FORCE:

$(B)/obj/%.pic.o: %.c $(wildcard include/*.h) $(wildcard pam_module/*.h) helper/common/subprocess.h $(B)/helper-path.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -include $(B)/helper-path.h -c $< -o $@

# The convenience library the binary, the unit tests and the fuzzers all link.
$(B)/libkc.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/pam-kubeconfig: $(B)/obj/helper/main.o $(B)/libkc.a
	$(CC) -pie $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The module links libpam and libc only, and exports its two entry points alone.
$(B)/pam_kubeconfig.so: $(MOD_OBJS) pam_module/pam_kubeconfig.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=pam_module/pam_kubeconfig.map -o $@ $(MOD_OBJS) -lpam

$(B)/tests/kc-session-driver: tests/pam/session_driver.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE -pie $(LDFLAGS) -o $@ $< -lpam

$(B)/tests/failsyscall.so: tests/hardening/failsyscall.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

$(B)/tests/kc-argv0: tests/hardening/argv0.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE -pie $(LDFLAGS) -o $@ $<

# kc_sockcut() on its own, for the end-to-end test with a real kubectl watch and
# for make bench's cut against `ss -K`: linked with only what it uses
# (--as-needed), as `ss` is, so that the two processes compare the mechanisms.
$(B)/tests/kc-sockcut: tests/hardening/sockcut_driver.c $(B)/libkc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE $(PKG_CFLAGS) -pie $(LDFLAGS) -o $@ $< $(B)/libkc.a -Wl,--as-needed $(PKG_LIBS)

# The kubeconfig merge on a real file, for the tests that run kubectl and awscli on it.
$(B)/tests/kc-merge: tests/helper/merge_tool.c $(B)/libkc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE $(PKG_CFLAGS) -pie $(LDFLAGS) -o $@ $< $(B)/libkc.a $(PKG_LIBS)

$(B)/tests/unit/%: tests/unit/%.c $(B)/libkc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE $(PKG_CFLAGS) -pie $(LDFLAGS) -o $@ $< $(B)/libkc.a $(PKG_LIBS) -lcmocka

# libFuzzer targets (clang, ASan+UBSan): the library rebuilt with coverage.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS  := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
FUZZERS    := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

build/fuzz/obj/%.o: %.c $(wildcard include/*.h helper/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -D_GNU_SOURCE -Ihelper -Iinclude $(PKG_CFLAGS) -c $< -o $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) -std=gnu11 $(FUZZ_FLAGS) -fsanitize=fuzzer -D_GNU_SOURCE -Ihelper -Iinclude $(PKG_CFLAGS) -o $@ $< \
		$(FUZZ_OBJS) $(PKG_LIBS)

fuzzers: $(FUZZERS)

# A long run that grows the committed corpus: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 300
fuzz: fuzzers
	@for f in $(FUZZERS); do t=$$(basename $$f | sed 's/^fuzz_//'); \
		echo "== $$t ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -artifact_prefix=build/fuzz/ \
			tests/fuzz/corpus/$$t || exit 1; \
		rm -rf build/fuzz/min-$$t && mkdir -p build/fuzz/min-$$t && \
		$$f -merge=1 build/fuzz/min-$$t tests/fuzz/corpus/$$t >/dev/null 2>&1 && \
		rm -rf tests/fuzz/corpus/$$t && mv build/fuzz/min-$$t tests/fuzz/corpus/$$t; \
	done

$(B)/bench/cpu_bench: bench/cpu_bench.c $(B)/libkc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIE $(PKG_CFLAGS) -pie $(LDFLAGS) -o $@ $< $(B)/libkc.a $(PKG_LIBS)

# make bench: against the real test cluster; writes docs/benchmarks.md.
bench: deps all $(B)/bench/cpu_bench
	@B=$(B) bench/run

# Static checks: the banned-function list, the user-side wing's include rule, no loop between
# modules, the size limits (lizard), cppcheck, clang-tidy (.clang-tidy).
LINT_SRCS := $(wildcard helper/*.c helper/*/*.c pam_module/*.c)
lint: $(LIB_OBJS)
	@tests/lint/banned-functions
	@tests/lint/layers
	@tests/lint/module-loops $(B)
	@tests/lint/size-limits
	@cppcheck -q --enable=warning,portability,performance --error-exitcode=1 --inline-suppr -Ihelper -Iinclude \
		--std=c11 -D_GNU_SOURCE --suppress=missingIncludeSystem --suppress=missingInclude helper pam_module
	@echo "cppcheck: clean"
	@printf '%s\n' $(LINT_SRCS) | xargs -P "$$(nproc)" -n 8 sh -c \
		'clang-tidy -quiet "$$@" -- -std=gnu11 -D_GNU_SOURCE -Ihelper -Iinclude $(PKG_CFLAGS) 2>/dev/null' clang-tidy
	@echo "clang-tidy: clean"

FORMAT_SRCS = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	@clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "clang-format: clean"

# make install DESTDIR=... PREFIX=/usr SBINDIR=... PAMDIR=... SYSCONFDIR=/etc
install: $(B)/pam-kubeconfig $(B)/pam_kubeconfig.so
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SYSCONFDIR)/pam_kubeconfig \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(LOGROTATEDIR)
	install -m 0755 $(B)/pam-kubeconfig $(DESTDIR)$(SBINDIR)/pam-kubeconfig
	install -m 0644 $(B)/pam_kubeconfig.so $(DESTDIR)$(PAMDIR)/pam_kubeconfig.so
	install -m 0644 config/config.yaml $(DESTDIR)$(SYSCONFDIR)/pam_kubeconfig/config.yaml.example
	install -m 0644 man/pam_kubeconfig.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/pam_kubeconfig.8 man/pam-kubeconfig.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 config/rbac/minter.yaml config/firewall/imds.nft config/prometheus/pam_kubeconfig.rules.yml \
		README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 config/pam.d/sshd $(DESTDIR)$(DOCDIR)/pam.d-sshd
	install -m 0755 config/firewall/imds.iptables $(DESTDIR)$(DOCDIR)/
	for u in config/systemd/*; do \
		sed 's|/usr/sbin/pam-kubeconfig|$(SBINDIR)/pam-kubeconfig|' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -m 0644 config/tmpfiles.d/pam-kubeconfig.conf $(DESTDIR)$(TMPFILESDIR)/pam-kubeconfig.conf
	install -m 0644 config/logrotate/pam-kubeconfig $(DESTDIR)$(LOGROTATEDIR)/pam-kubeconfig
	install -d -m 0700 $(DESTDIR)$(STATEDIR) $(DESTDIR)$(CACHEDIR) $(DESTDIR)$(LOGDIR)

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/pam-kubeconfig $(DESTDIR)$(PAMDIR)/pam_kubeconfig.so \
		$(DESTDIR)$(SYSCONFDIR)/pam_kubeconfig/config.yaml.example \
		$(DESTDIR)$(MANDIR)/man5/pam_kubeconfig.yaml.5 $(DESTDIR)$(MANDIR)/man8/pam_kubeconfig.8 \
		$(DESTDIR)$(MANDIR)/man8/pam-kubeconfig.8
	rm -rf $(DESTDIR)$(DOCDIR)
	for u in config/systemd/*; do rm -f $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	rm -f $(DESTDIR)$(TMPFILESDIR)/pam-kubeconfig.conf $(DESTDIR)$(LOGROTATEDIR)/pam-kubeconfig
	-rmdir $(DESTDIR)$(SYSCONFDIR)/pam_kubeconfig 2>/dev/null

# Installs the Debian packages the build and tests need (root; skipped when present).
deps:
	@tests/install-deps

test-unit: $(UNIT_BINS)
	@B=$(B) tests/run unit

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) fuzzers
	@B=$(B) SAN=$(SAN) tests/run $(if $(TIERS),$(TIERS),all)

# make soak: the slow tests (tests/soak/, minutes each), not part of make test.
soak: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) tests/run soak

# make chaos SCHEDULES=N [SEED=S]: N random schedules against the real test
# cluster (tests/schedule); SEED= replays one run and prints its schedules.
chaos: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) SCHEDULES=$(or $(SCHEDULES),200) SEED=$(SEED) SCHEDULE_VERBOSE=$(if $(SEED),1,) tests/run schedule

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo

cluster-up:
	@tests/cluster/up
cluster-down:
	@tests/cluster/down

clean:
	rm -rf build

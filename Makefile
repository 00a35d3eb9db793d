# slawatch - build, test, run, install.
#
#   make            build/slawatchd and build/slawatchctl
#   make run        private redis-server + webhook receiver + daemon + demo events
#   make test       every unit and integration test (SANITIZE=1: ASan+UBSan)
#   make fuzz       libFuzzer targets into build-fuzz/, FUZZ_SECONDS each
#   make bench      benchmarks against a private redis-server
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
DOCDIR     ?= $(PREFIX)/share/doc/slawatch
CC         ?= cc
PKGS       := libevent hiredis yaml-0.1 libsystemd libcurl libcrypto jansson

ifeq ($(SANITIZE),1)
BUILD      ?= build-san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPTFLAGS   := -O1 -g
else ifeq ($(SANITIZE),fuzz)
# The libFuzzer build (clang; `make fuzz` sets it up): every object is
# instrumented for coverage, ASan and UBSan; the targets link -fsanitize=fuzzer.
BUILD      ?= build-fuzz
SANFLAGS   := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPTFLAGS   := -O1 -g
else
BUILD      ?= build
SANFLAGS   :=
OPTFLAGS   := -O2 -g
endif

WARNFLAGS  := -Wall -Wextra -Wshadow -Wmissing-prototypes -Werror
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS     ?=
BASE_CFLAGS = -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) $(SANFLAGS) -Iinclude $(CFLAGS)
ALL_CFLAGS  = $(BASE_CFLAGS) -MMD -MP $(PKG_CFLAGS)
LDLIBS_ALL  = $(PKG_LIBS) -lm
TEST_LIBS   = $(shell pkg-config --libs cmocka 2>/dev/null)

# The layers, each its own folder (README "Source layout"):
#   daemon/core    pure: no I/O library, built without any pkg-config flags
#                  into libslawcore.a; -MD lists every header a core object
#                  read, and one from hiredis, libevent, libcurl, libyaml,
#                  libsystemd, jansson or OpenSSL fails its build
#   daemon/config  YAML into the model (libyaml)          -> libslawcfg.a
#   daemon/io      Redis, the stream, checkpoints, HTTP, systemd, logs
#   daemon/out     the sinks: records, compliance, escalations, delivery
#                  (io and out)                           -> libslawatch.a
#   daemon/slawatchd.c, daemon/ctl/*.c (slawatchctl): the wiring
# tests/layers/check.sh reads the objects with nm and fails on a call that
# goes up a layer, into the wiring, or round a cycle between files.
CORE_CFLAGS = $(BASE_CFLAGS) -MD -MP
CORE_FORBIDDEN := /usr/include/([a-z0-9_-]+/)?((hiredis|event2|curl|systemd|openssl)/|(yaml|jansson|event|evhttp|evdns|evrpc|evutil)\.h)
# $(call core_cc,SRC,OBJ): compile one core source and check what it read.
define core_cc
	@mkdir -p $(dir $(2))
	$(CC) $(CORE_CFLAGS) -c -o $(2) $(1)
	@if grep -Eq '$(CORE_FORBIDDEN)' $(2:.o=.d); then \
	    echo "$(1): the pure core must not include an I/O library header:" >&2; \
	    grep -Eo '[^ ]*($(CORE_FORBIDDEN))[^ ]*' $(2:.o=.d) | sort -u >&2; \
	    rm -f $(2); exit 1; \
	fi
endef

CTL_SRCS   := $(wildcard daemon/ctl/*.c)
CTL_OBJS   := $(CTL_SRCS:%.c=$(BUILD)/%.o)
CORE_SRCS  := $(wildcard daemon/core/*.c)
CORE_OBJS  := $(CORE_SRCS:%.c=$(BUILD)/%.o)
CORE_LIB   := $(BUILD)/libslawcore.a
CFG_SRCS   := $(wildcard daemon/config/*.c)
CFG_OBJS   := $(CFG_SRCS:%.c=$(BUILD)/%.o)
CFG_LIB    := $(BUILD)/libslawcfg.a
LIB_SRCS   := $(wildcard daemon/io/*.c daemon/out/*.c)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libslawatch.a
LIBS       := $(LIB) $(CFG_LIB) $(CORE_LIB)

# Unit tests of the pure core: compiled like it, linked with libslawcore.a,
# -lm and cmocka only. The core tests that build their fixtures from YAML
# also link the loader (libslawcfg.a, -lyaml) and nothing else.
PURE_UNITS := heap event cal cal_crosscheck wire
CFG_UNITS  := core state time config config_docs man_keys policy config_diff lifecycle objective
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
PURE_BINS  := $(addprefix $(BUILD)/tests/unit/test_,$(PURE_UNITS))
CFG_BINS   := $(addprefix $(BUILD)/tests/unit/test_,$(CFG_UNITS))
FULL_BINS  := $(filter-out $(PURE_BINS) $(CFG_BINS),$(UNIT_BINS))
ITEST_SRCS := $(wildcard tests/integration/test_*.c)
ITEST_BINS := $(ITEST_SRCS:%.c=$(BUILD)/%)
ITEST_HELP := $(filter-out $(ITEST_SRCS),$(wildcard tests/integration/*.c))
ITEST_HOBJ := $(ITEST_HELP:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
BENCH_HELP := $(filter-out $(BENCH_SRCS),$(wildcard tests/bench/*.c))
BENCH_HOBJ := $(BENCH_HELP:%.c=$(BUILD)/%.o)

# Fuzz targets (fuzz/fuzz_*.c, docs/fuzzing.md): one LLVMFuzzerTestOneInput
# each, linked either with libFuzzer (make fuzz: clang, into
# build-fuzz/fuzz/fuzz_<target>) or with tests/fuzz_replay.c (make test:
# any compiler, $(BUILD)/tests/fuzz_replay_<target>, which replays
# fuzz/corpus/<target>/ and fuzz/regress/<target>/). The webhook target
# needs the whole library; the others the core and the loader (for the
# fixed configs of fuzz/harness.c).
FUZZ_ALL    := event config state hook util cal
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_HOBJ   := $(BUILD)/fuzz/harness.o
FUZZ_BINS   := $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
REPLAY_BINS := $(addprefix $(BUILD)/tests/fuzz_replay_,$(FUZZ_ALL))
fuzz_libs    = $(if $(filter hook,$*),$(LIBS) $(LDLIBS_ALL),$(CFG_LIB) $(CORE_LIB) -lyaml -lm)
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang

.PHONY: all deps test-deps fuzz-deps run test unit integration bench install \
        uninstall clean format format-check tests-build core-probe fuzz \
        fuzz-build fuzz-corpus
all: deps $(BUILD)/slawatchd $(BUILD)/slawatchctl

# Installs missing Debian packages when run as root; otherwise says what is
# missing. Skipped with NODEPS=1.
deps:
	@[ "$(NODEPS)" = 1 ] || scripts/deps.sh build

test-deps:
	@[ "$(NODEPS)" = 1 ] || scripts/deps.sh test

fuzz-deps:
	@[ "$(NODEPS)" = 1 ] || scripts/deps.sh fuzz

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/daemon/core/%.o: daemon/core/%.c
	$(call core_cc,$<,$@)

$(addprefix $(BUILD)/tests/unit/test_,$(addsuffix .o,$(PURE_UNITS))): $(BUILD)/tests/unit/%.o: tests/unit/%.c
	$(call core_cc,$<,$@)

# Compiles tests/layers/PROBE.c as a core file (tests/layers/check.sh).
core-probe:
	$(call core_cc,tests/layers/$(PROBE).c,$(BUILD)/tests/layers/$(PROBE).o)

$(CORE_LIB): $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

# Every object of the core linked on its own with libc and libm: a call out
# of the core fails here.
$(BUILD)/core-alone: tests/layers/core_alone.c $(CORE_LIB)
	$(CC) $(BASE_CFLAGS) -o $@ $< -Wl,--whole-archive $(CORE_LIB) -Wl,--no-whole-archive -lm

$(CFG_LIB): $(CFG_OBJS)
	rm -f $@ && ar rcs $@ $^

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/slawatchd: $(BUILD)/daemon/slawatchd.o $(LIBS) $(BUILD)/core-alone
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBS) $(LDLIBS_ALL)

$(BUILD)/slawatchctl: $(CTL_OBJS) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(PURE_BINS): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(CORE_LIB)
	$(CC) $(BASE_CFLAGS) -o $@ $^ -lm $(TEST_LIBS)

$(CFG_BINS): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(CFG_LIB) $(CORE_LIB)
	$(CC) $(BASE_CFLAGS) -o $@ $^ -lyaml -lm $(TEST_LIBS)

$(FULL_BINS): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TEST_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(ITEST_HOBJ) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TEST_LIBS)

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(BENCH_HOBJ) $(ITEST_HOBJ) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

# A static pattern: a plain one would also match the .d files make tries
# to remake (build/tests/fuzz_replay_event.d.o from tests/fuzz_replay.c).
$(REPLAY_BINS:=.o): $(BUILD)/tests/fuzz_replay_%.o: tests/fuzz_replay.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -MMD -MP -DFUZZ_TARGET='"$*"' -c -o $@ $<

$(REPLAY_BINS): $(BUILD)/tests/fuzz_replay_%: $(BUILD)/tests/fuzz_replay_%.o $(BUILD)/fuzz/fuzz_%.o $(FUZZ_HOBJ) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(fuzz_libs)

$(FUZZ_BINS): $(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/fuzz_%.o $(FUZZ_HOBJ) $(LIBS)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(fuzz_libs)

$(BUILD)/fuzz/gen_corpus: $(BUILD)/fuzz/gen_corpus.o $(FUZZ_HOBJ) $(LIBS)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS_ALL)

tests-build: $(BUILD)/slawatchd $(BUILD)/slawatchctl $(UNIT_BINS) $(ITEST_BINS) $(REPLAY_BINS)

# The demo's webhook receiver (make run): not part of slawatch.
DEMO_RX    := $(BUILD)/slawatch-demo-receiver
$(DEMO_RX): $(BUILD)/contrib/demo/receiver.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

tests-build: $(BUILD)/slawatchd $(BUILD)/slawatchctl $(DEMO_RX) $(UNIT_BINS) $(ITEST_BINS)

run: all $(DEMO_RX)
	@scripts/run-demo.sh $(BUILD)

# The pure core's unit tests also run under valgrind (not with SANITIZE=1:
# ASan and valgrind do not mix).
VG_UNITS   := heap event core state compliance kpi time wire lifecycle objective
VALGRIND_BINS = $(if $(filter 1,$(SANITIZE)),,$(filter $(addprefix $(BUILD)/tests/unit/test_,$(VG_UNITS)),$(UNIT_BINS)))

test: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 tests-build
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) VALGRIND_BINS="$(VALGRIND_BINS)" tests/run.sh tests/layers/check.sh $(REPLAY_BINS) $(UNIT_BINS) $(ITEST_BINS)

unit: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 $(UNIT_BINS) $(REPLAY_BINS)
	@BUILD=$(BUILD) tests/run.sh tests/layers/check.sh $(REPLAY_BINS) $(UNIT_BINS)

# Builds the libFuzzer targets with clang into build-fuzz/ and runs each for
# FUZZ_SECONDS (scripts/fuzz.sh: corpus fuzz/corpus/<target>, new inputs
# and crashes under build-fuzz/fuzz/; FUZZ_FLAGS adds libFuzzer flags,
# FUZZ_TARGETS="state hook" picks some).
fuzz: deps fuzz-deps
	@$(MAKE) --no-print-directory NODEPS=1 SANITIZE=fuzz CC=$(FUZZ_CC) fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

# Rewrites the generated seeds (fuzz/gen_corpus.c) in fuzz/corpus/.
fuzz-corpus: deps
	@$(MAKE) --no-print-directory NODEPS=1 $(BUILD)/fuzz/gen_corpus
	$(BUILD)/fuzz/gen_corpus fuzz/corpus

integration: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 tests-build
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh $(ITEST_BINS)

bench: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 $(BUILD)/slawatchd $(BUILD)/slawatchctl $(BENCH_BINS)
	@BUILD=$(BUILD) tests/bench/run.sh $(BENCH_BINS) tests/bench/lateness.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/slawatchd $(DESTDIR)$(PREFIX)/sbin/slawatchd
	install -m 0755 $(BUILD)/slawatchctl $(DESTDIR)$(PREFIX)/bin/slawatchctl
	install -d $(DESTDIR)$(SYSCONFDIR)/slawatch
	[ -e $(DESTDIR)$(SYSCONFDIR)/slawatch/slawatch.yaml ] || \
	    install -m 0644 conf/slawatch.yaml $(DESTDIR)$(SYSCONFDIR)/slawatch/slawatch.yaml
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    contrib/systemd/slawatchd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/slawatchd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/slawatchd.service
	if [ -d docs/man ]; then \
	    for m in docs/man/*.[0-9]; do \
	        s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
	        install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	    done; \
	fi
	install -d $(DESTDIR)$(DOCDIR)/prometheus
	install -m 0644 contrib/prometheus/* $(DESTDIR)$(DOCDIR)/prometheus/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/slawatchd $(DESTDIR)$(PREFIX)/bin/slawatchctl
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/slawatchd.service
	if [ -d docs/man ]; then \
	    for m in docs/man/*.[0-9]; do \
	        s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/}; \
	    done; \
	fi
	for f in contrib/prometheus/*; do rm -f $(DESTDIR)$(DOCDIR)/prometheus/$${f##*/}; done
	-rmdir $(DESTDIR)$(DOCDIR)/prometheus $(DESTDIR)$(DOCDIR) 2>/dev/null

format:
	clang-format -i daemon/*.c daemon/*/*.c include/slawatch/*.h

format-check:
	clang-format --dry-run --Werror daemon/*.c daemon/*/*.c include/slawatch/*.h

clean:
	rm -rf build build-san build-fuzz

.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

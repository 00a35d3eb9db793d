# slawatch - build, test, run, install.
#
#   make            build/slawatchd and build/slawatchctl
#   make run        private redis-server + daemon + demo events
#   make test       every unit and integration test (SANITIZE=1: ASan+UBSan)
#   make bench      benchmarks against a private redis-server
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
CC         ?= cc
PKGS       := libevent hiredis yaml-0.1 libsystemd libcurl libcrypto jansson

ifeq ($(SANITIZE),1)
BUILD      ?= build-san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
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
ALL_CFLAGS  = -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) $(SANFLAGS) -Iinclude -MMD -MP $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL  = $(PKG_LIBS) -lm
TEST_LIBS   = $(shell pkg-config --libs cmocka 2>/dev/null)

MAINS      := daemon/slawatchd.c daemon/slawatchctl.c
LIB_SRCS   := $(filter-out $(MAINS),$(wildcard daemon/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libslawatch.a

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
ITEST_SRCS := $(wildcard tests/integration/test_*.c)
ITEST_BINS := $(ITEST_SRCS:%.c=$(BUILD)/%)
ITEST_HELP := $(filter-out $(ITEST_SRCS),$(wildcard tests/integration/*.c))
ITEST_HOBJ := $(ITEST_HELP:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
BENCH_HELP := $(filter-out $(BENCH_SRCS),$(wildcard tests/bench/*.c))
BENCH_HOBJ := $(BENCH_HELP:%.c=$(BUILD)/%.o)

.PHONY: all deps test-deps run test unit integration bench install uninstall \
        clean format format-check tests-build
all: deps $(BUILD)/slawatchd $(BUILD)/slawatchctl

# Installs missing Debian packages when run as root; otherwise says what is
# missing. Skipped with NODEPS=1.
deps:
	@[ "$(NODEPS)" = 1 ] || scripts/deps.sh build

test-deps:
	@[ "$(NODEPS)" = 1 ] || scripts/deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/slawatchd: $(BUILD)/daemon/slawatchd.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/slawatchctl: $(BUILD)/daemon/slawatchctl.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TEST_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(ITEST_HOBJ) $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(TEST_LIBS)

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(BENCH_HOBJ) $(ITEST_HOBJ) $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

tests-build: $(BUILD)/slawatchd $(BUILD)/slawatchctl $(UNIT_BINS) $(ITEST_BINS)

run: all
	@scripts/run-demo.sh $(BUILD)

# The pure core's unit tests also run under valgrind (not with SANITIZE=1:
# ASan and valgrind do not mix).
VG_UNITS   := heap event core state table compliance
VALGRIND_BINS = $(if $(filter 1,$(SANITIZE)),,$(filter $(addprefix $(BUILD)/tests/unit/test_,$(VG_UNITS)),$(UNIT_BINS)))

test: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 tests-build
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) VALGRIND_BINS="$(VALGRIND_BINS)" tests/run.sh $(UNIT_BINS) $(ITEST_BINS)

unit: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 $(UNIT_BINS)
	@BUILD=$(BUILD) tests/run.sh $(UNIT_BINS)

integration: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 tests-build
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh $(ITEST_BINS)

bench: deps test-deps
	@$(MAKE) --no-print-directory NODEPS=1 $(BUILD)/slawatchd $(BUILD)/slawatchctl $(BENCH_BINS)
	@BUILD=$(BUILD) tests/bench/run.sh $(BENCH_BINS)

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

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/slawatchd $(DESTDIR)$(PREFIX)/bin/slawatchctl
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/slawatchd.service
	if [ -d docs/man ]; then \
	    for m in docs/man/*.[0-9]; do \
	        s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/}; \
	    done; \
	fi

format:
	clang-format -i daemon/*.c include/slawatch/*.h

format-check:
	clang-format --dry-run --Werror daemon/*.c include/slawatch/*.h

clean:
	rm -rf build build-san

.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

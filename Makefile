# clubd - one non-recursive Makefile.
#   make            build build/clubd (and clubctl when it lands)
#   make run        install missing packages, start a private redis-server and clubd
#   make check      install missing packages, build with -Werror, unit + integration
#                   tests, then the same suite under ASan+UBSan, a short fuzz run;
#                   ends with "N passed, N failed"
#   make fuzz       the libFuzzer targets in tests/fuzz/ (FUZZ_SECONDS each, clang)
#   make check-style  clang-format check and banned functions
#   make asan       the sanitizer build in build-asan/
#   make bench      the benchmarks in bench/ (figures go to docs/benchmarks.md)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR  ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

B       ?= build
CC      ?= cc
PKGS    := libuv hiredis libcurl jansson libmicrohttpd libsystemd inih libesmtp-1.0 icu-uc icu-i18n libssl libcrypto libsodium gmime-3.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wstrict-prototypes -Wmissing-prototypes
OPT     ?= -O2 -g
CFLAGS  ?=
CPPFLAGS += -D_GNU_SOURCE -iquote daemon -iquote channels -I$(B)/gen
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP
LDLIBS  += $(PKG_LIBS) -lm -lpthread

LIB_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/club/*.c)) $(wildcard channels/*.c)
LUA_SRC := $(sort $(wildcard daemon/lua/*.lua))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/lua_scripts.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC := $(wildcard bench/*.c)
TOOL_BIN := $(TOOL_SRC:bench/%.c=$(B)/bench/%)

CLUBCTL_SRC := $(wildcard tools/clubctl/*.c)
CLUBCTL_OBJ := $(CLUBCTL_SRC:%.c=$(B)/%.o) $(B)/daemon/util.o $(B)/daemon/text.o

.PHONY: all run check check-unit check-integration check-style asan bench install deps clean fuzz
all: $(B)/clubd $(B)/clubctl $(B)/clubd-draw-verify $(UNIT_BIN) $(TOOL_BIN)

V ?= 0
ifeq ($(V),0)
Q := @
E := @echo
else
Q :=
E := @:
endif

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/gen/lua_scripts.c: $(LUA_SRC) $(wildcard daemon/lua/lib/*.lua) tools/embed-lua.sh
	@mkdir -p $(dir $@)
	sh tools/embed-lua.sh $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(B)/gen/lua_scripts.o: $(B)/gen/lua_scripts.c
	$(E) "  CC    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libclubd.a: $(LIB_OBJ)
	$(Q)rm -f $@
	$(E) "  AR    $@"
	$(Q)ar rcs $@ $^

$(B)/clubd: $(B)/daemon/main.o $(B)/libclubd.a
	$(E) "  LINK  $@"
	$(Q)$(CC) $(OPT) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tools/clubctl/%.o: tools/clubctl/%.c
	@mkdir -p $(dir $@)
	$(E) "  CC    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -iquote tools/clubctl -c $< -o $@

$(B)/clubctl: $(CLUBCTL_OBJ)
	$(E) "  LINK  $@"
	$(Q)$(CC) $(OPT) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcurl jansson) -lm

$(B)/tools/draw-verify.o: tools/draw-verify.c
	@mkdir -p $(dir $@)
	$(E) "  CC    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/clubd-draw-verify: $(B)/tools/draw-verify.o $(B)/daemon/draw.o $(B)/daemon/util.o
	$(E) "  LINK  $@"
	$(Q)$(CC) $(OPT) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcrypto)

$(UNIT_BIN): $(B)/tests/%: tests/unit/%.c $(B)/tests/unit/testlib.o $(B)/libclubd.a
	@mkdir -p $(dir $@)
	$(E) "  TEST  $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/tests/unit/testlib.o $(B)/libclubd.a $(LDFLAGS) $(LDLIBS) $(CMOCKA_LIBS)

$(B)/bench/%: bench/%.c $(B)/libclubd.a
	@mkdir -p $(dir $@)
	$(E) "  LINK  $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libclubd.a $(LDFLAGS) $(LDLIBS)

deps:
	sh tools/deps

run: deps
	$(MAKE) $(B)/clubd $(B)/clubctl
	sh tools/devrun

# The suite: normal build first, then the ASan+UBSan build, then one summary.
check: deps
	@rm -f build/.results build-asan/.results
	$(MAKE) all
	$(MAKE) check-style
	sh tests/run-suite $(B)
	$(MAKE) asan
	sh tests/run-suite build-asan
	$(MAKE) fuzz FUZZ_SECONDS=10
	sh tests/summary build/.results build-asan/.results

check-unit: all
	sh tests/run-suite $(B) unit

check-integration: all
	sh tests/run-suite $(B) integration

asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" LDFLAGS="-fsanitize=address,undefined" all

check-style:
	sh tools/check-style

# libFuzzer targets (clang): every tests/fuzz/fuzz_NAME.c runs FUZZ_SECONDS from its seeds.
FUZZ_SECONDS ?= 30
FUZZ_SRC := daemon/template.c daemon/jalali.c daemon/tz.c daemon/util.c daemon/text.c daemon/log.c \
	daemon/inbound.c daemon/addr.c channels/twilio_sig.c daemon/hmac_key.c daemon/mail_parse.c \
	channels/mime.c
fuzz:
	@mkdir -p build/fuzz
	@for f in tests/fuzz/fuzz_*.c; do \
		n=$$(basename $$f .c); \
		echo "  FUZZ  $$n ($(FUZZ_SECONDS)s)"; \
		clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
			-D_GNU_SOURCE -iquote daemon -iquote channels $$f $(FUZZ_SRC) \
			$$(pkg-config --cflags --libs jansson icu-uc icu-i18n libcrypto gmime-3.0) -o build/fuzz/$$n || exit 1; \
		mkdir -p build/fuzz/corpus-$$n; \
		build/fuzz/$$n build/fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -artifact_prefix=build/fuzz/ \
			-print_final_stats=1 2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; \
		grep -E "stat::number_of_executed_units" build/fuzz/$$n.log; \
	done

bench: all
	sh bench/run

install: $(B)/clubd $(B)/clubctl $(B)/clubd-draw-verify
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/clubd \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(B)/clubd $(DESTDIR)$(SBINDIR)/clubd
	install -m 0755 $(B)/clubctl $(DESTDIR)$(BINDIR)/clubctl
	install -m 0755 $(B)/clubd-draw-verify $(DESTDIR)$(BINDIR)/clubd-draw-verify
	install -m 0644 man/clubctl.1 $(DESTDIR)$(MANDIR)/man1/clubctl.1
	install -m 0644 man/clubd.conf.5 $(DESTDIR)$(MANDIR)/man5/clubd.conf.5
	install -m 0644 man/clubd.8 $(DESTDIR)$(MANDIR)/man8/clubd.8
	install -m 0644 tools/clubctl/clubctl.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/clubctl
	# an operator's edited configuration is never overwritten
	[ -e $(DESTDIR)$(SYSCONFDIR)/clubd/clubd.conf ] || \
		install -m 0640 config/clubd.conf $(DESTDIR)$(SYSCONFDIR)/clubd/clubd.conf
	install -m 0640 config/tokens.example $(DESTDIR)$(SYSCONFDIR)/clubd/tokens.example
	sed 's|@SBINDIR@|$(SBINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/clubd.service.in \
		> $(DESTDIR)$(UNITDIR)/clubd.service
	install -m 0644 systemd/clubd.sysusers $(DESTDIR)$(SYSUSERSDIR)/clubd.conf
	install -m 0644 systemd/clubd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/clubd.conf

# The Debian package: ../clubd_<version>_<arch>.deb (debian/rules builds in
# debian/build, never in $(B), and runs no tests).
.PHONY: deb
deb:
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf build build-asan

-include $(shell find $(B) -name '*.d' 2>/dev/null)

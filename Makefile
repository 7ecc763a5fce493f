# roigate: secure release-of-information gateway.
#
#   make                build roigated, roictl and the transports
#   make check          unit tests (cmocka), integration tests (pytest), the package
#   make deb            the Debian packages in build/deb/ (docs/packaging.md)
#   make demo           run the daemon on the embedded defaults with the sample packet
#   make install        PREFIX=/usr/local DESTDIR=
#   make SANITIZE=1     build with ASan and UBSan (objects go to build-san/)

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
LIBDIR     ?= $(PREFIX)/lib
DATADIR    ?= $(PREFIX)/share
DESTDIR    ?=

CC         ?= cc
PKG_CONFIG ?= pkg-config
PKGS        = sqlite3 jansson libmagic libsystemd libcrypto
# The daemon's alert mailer (src/alerts.c) sends with libcurl.
DAEMON_PKGS = libcurl

ifeq ($(SANITIZE),1)
B           = build-san
SANFLAGS    = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPTFLAGS    = -O1 -g -DROIGATE_SANITIZE
else
B           = build
SANFLAGS    =
OPTFLAGS    = -O2 -g
endif

WARNFLAGS   = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter
HARDEN      = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fstack-clash-protection
CFLAGS     ?= $(OPTFLAGS)
ALL_CFLAGS  = -std=c17 -D_GNU_SOURCE $(WARNFLAGS) $(HARDEN) $(SANFLAGS) $(CFLAGS) \
              -Iinclude -DSYSCONFDIR='"$(SYSCONFDIR)"' \
              -DTRANSPORT_DIR='"$(LIBDIR)/roigate/transports"' \
              -DTEMPLATE_DIR='"$(DATADIR)/roigate/templates"' \
              $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
EXE_CFLAGS  = -fPIE
EXE_LDFLAGS = -pie -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)
SO_LDFLAGS  = -shared -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)
LIBS        = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -ldl
# The document pipeline: MuPDF is static only and names no dependencies
# (DESIGN.md); libhpdf has no pkg-config file.
# OCR: Tesseract's C API (tesseract/capi.h); libgomp for its thread count.
# The renderer's sandbox: libseccomp (Landlock is raw system calls).
RENDER_LIBS = $(shell $(PKG_CONFIG) --static --libs mupdf 2>/dev/null) -lharfbuzz-subset -lharfbuzz -lhpdf -ljpeg \
              -ltesseract -lgomp $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null)

# Sources per program.
# The document pipeline, one file per step (see include/render.h).
PIPELINE_SRCS = src/render.c src/reader.c src/typeset.c src/search.c src/ocr.c \
              src/boxes.c src/raster.c src/pdfout.c src/gate.c src/cover.c src/coverfont.c src/sandbox.c
COMMON_SRCS = src/log.c src/util.c
DAEMON_SRCS = src/roigated.c src/loop.c src/config.c src/store.c src/disclosure.c src/accounting.c src/report.c src/daily.c src/incident.c src/requests.c src/seal.c \
              src/manifest.c src/policy.c src/spool.c src/intake.c src/submit.c src/queue.c src/retention.c src/backoff.c src/worker.c \
              src/transport.c src/probe.c src/control.c src/control_ops.c src/proto.c \
              src/metrics.c src/alerts.c src/window.c src/counts.c \
              $(PIPELINE_SRCS) $(COMMON_SRCS)
ROICTL_SRCS = src/roictl.c src/libroigate.c src/proto.c $(COMMON_SRCS)
# roigate-exporter: reads roigate.conf, asks roigated, serves Prometheus text.
EXPORTER_SRCS = src/exporter.c src/config.c src/libroigate.c src/proto.c $(COMMON_SRCS)
EXPORTER_LIBS = $(shell $(PKG_CONFIG) --libs libmicrohttpd jansson libsystemd libcrypto 2>/dev/null) -lm
TRANSPORTS  = local sftp smime faxapi
TEST_TRANSPORTS = flaky

# What each transport plugin links besides libcrypto.
TRANSPORT_CFLAGS_sftp = $(shell $(PKG_CONFIG) --cflags libssh 2>/dev/null)
TRANSPORT_LIBS_sftp   = $(shell $(PKG_CONFIG) --libs libssh 2>/dev/null)
TRANSPORT_SRCS_sftp   = transports/sftp_stream.c
TRANSPORT_CFLAGS_smime = $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
TRANSPORT_LIBS_smime   = $(shell $(PKG_CONFIG) --libs libcurl libssl 2>/dev/null)
TRANSPORT_CFLAGS_faxapi = $(shell $(PKG_CONFIG) --cflags libcurl jansson 2>/dev/null)
TRANSPORT_LIBS_faxapi   = $(shell $(PKG_CONFIG) --libs libcurl jansson 2>/dev/null)

RENDER_SRCS = src/roigate-render.c $(PIPELINE_SRCS) src/manifest.c $(COMMON_SRCS)
VERIFY_SRCS = src/roigate-verify.c src/seal.c src/store.c src/disclosure.c $(COMMON_SRCS)
LIB_SRCS    = src/libroigate.c src/proto.c $(COMMON_SRCS)
LIB_SONAME  = libroigate.so.1
LIB_VERSION = 1.0.0

DAEMON_OBJS = $(DAEMON_SRCS:%.c=$(B)/%.o)
LIB_OBJS    = $(LIB_SRCS:%.c=$(B)/pic/%.o)
ROICTL_OBJS = $(ROICTL_SRCS:%.c=$(B)/%.o)
EXPORTER_OBJS = $(EXPORTER_SRCS:%.c=$(B)/%.o)
RENDER_OBJS = $(RENDER_SRCS:%.c=$(B)/%.o)
VERIFY_OBJS = $(VERIFY_SRCS:%.c=$(B)/%.o)

UNIT_TESTS  = config manifest policy store backoff disclosure seal smime_codec
UNIT_BINS   = $(UNIT_TESTS:%=$(B)/tests/unit/test_%)

# The test hooks (a renderer that tries to escape its sandbox) are
# compiled only into $(B)/tests/roigated-hooks, which tests/integration/
# test_sandbox.py runs; `make install` installs $(B)/roigated, built
# without them.
HOOK_OBJS   = $(filter-out $(B)/src/worker.o,$(DAEMON_OBJS)) $(B)/tests/worker-hooks.o

PROGRAMS    = $(B)/roigated $(B)/tests/roigated-hooks $(B)/roictl $(B)/roigate-render \
              $(B)/roigate-exporter $(B)/roigate-verify $(B)/libroigate.so $(B)/roigate.pc \
              $(B)/examples/submit \
              $(TRANSPORTS:%=$(B)/transports/%.so) \
              $(TEST_TRANSPORTS:%=$(B)/tests/transports/%.so)

.PHONY: all deps check unit integration fuzz demo install clean bench FORCE units deb check-package

all: deps $(PROGRAMS)

# Installs the Debian packages the build, tests and demo need (no-op when present).
deps:
	@scripts/install-deps

# The compiled-in paths follow PREFIX/LIBDIR/DATADIR/SYSCONFDIR: objects are
# rebuilt when they change (so `make install PREFIX=/usr` installs a daemon
# that looks in /usr/lib/roigate/transports).
PATHS_LINE  = $(SYSCONFDIR) $(LIBDIR) $(DATADIR)
$(B)/paths.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(PATHS_LINE)' | cmp -s - $@ || echo '$(PATHS_LINE)' > $@
FORCE:

$(B)/%.o: %.c $(wildcard include/*.h include/roigate/*.h) $(B)/paths.stamp
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) -c -o $@ $<

# Position-independent objects for the shared client library.
$(B)/pic/%.o: %.c $(wildcard include/*.h include/roigate/*.h) $(B)/paths.stamp
	@mkdir -p $(dir $@)
	@echo "  CC(pic) $<"
	@$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(B)/libroigate.so.$(LIB_VERSION): $(LIB_OBJS) src/libroigate.map
	$(CC) $(SO_LDFLAGS) -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=src/libroigate.map \
	    -o $@ $(LIB_OBJS) $(shell $(PKG_CONFIG) --libs jansson libcrypto)

$(B)/libroigate.so: $(B)/libroigate.so.$(LIB_VERSION)
	ln -sf libroigate.so.$(LIB_VERSION) $(B)/$(LIB_SONAME)
	ln -sf libroigate.so.$(LIB_VERSION) $@

$(B)/roigate.pc: Makefile $(B)/paths.stamp
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s/include\n\nName: roigate\nDescription: roigate client library (submit release packets to roigated)\nVersion: %s\nRequires.private: jansson libcrypto\nLibs: -L$${libdir} -lroigate\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(SOLIBDIR)' '$(PREFIX)' '$(LIB_VERSION)' > $@

$(B)/examples/submit: examples/submit.c $(B)/libroigate.so
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $< -L$(B) -lroigate -Wl,-rpath,'$$ORIGIN/..'

$(B)/roigated: $(DAEMON_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS) $(shell $(PKG_CONFIG) --libs $(DAEMON_PKGS)) \
	    $(RENDER_LIBS)

$(B)/tests/worker-hooks.o: src/worker.c $(wildcard include/*.h include/roigate/*.h) $(B)/paths.stamp
	@mkdir -p $(dir $@)
	@echo "  CC      $< (test hooks)"
	@$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) -DROIGATE_TEST_HOOKS -c -o $@ $<

$(B)/tests/roigated-hooks: $(HOOK_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS) $(shell $(PKG_CONFIG) --libs $(DAEMON_PKGS)) \
	    $(RENDER_LIBS)

$(B)/roigate-render: $(RENDER_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS) $(RENDER_LIBS)

$(B)/roigate-verify: $(VERIFY_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/roictl: $(ROICTL_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/roigate-exporter: $(EXPORTER_OBJS)
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(EXPORTER_LIBS)

$(B)/transports/%.so: transports/%.c include/roigate/transport.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TRANSPORT_CFLAGS_$*) -fPIC $(SO_LDFLAGS) -o $@ $< \
	    $(TRANSPORT_SRCS_$*) $(B)/src/util.o $(B)/src/log.o $(TRANSPORT_LIBS_$*) \
	    $(shell $(PKG_CONFIG) --libs libcrypto)

$(B)/tests/transports/%.so: tests/transports/%.c include/roigate/transport.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC $(SO_LDFLAGS) -o $@ $<

# The transports link util.o/log.o, so those must be PIC too.
$(B)/src/util.o $(B)/src/log.o: EXE_CFLAGS = -fPIC
$(TRANSPORTS:%=$(B)/transports/%.so): $(B)/src/util.o $(B)/src/log.o
$(B)/transports/sftp.so: $(TRANSPORT_SRCS_sftp) transports/sftp_stream.h

# Unit tests: each links the module it tests plus what that module needs.
UNIT_DEPS_config     = src/config.c
UNIT_DEPS_manifest   = src/manifest.c
UNIT_DEPS_policy     = src/policy.c src/manifest.c
UNIT_DEPS_store      = src/store.c
UNIT_DEPS_backoff    = src/backoff.c
UNIT_DEPS_disclosure = src/disclosure.c src/store.c
UNIT_DEPS_seal       = src/seal.c src/store.c src/disclosure.c
# test_smime_codec includes transports/smime.c (its static functions).
UNIT_CFLAGS_smime_codec = $(TRANSPORT_CFLAGS_smime)
UNIT_LIBS_smime_codec   = $(TRANSPORT_LIBS_smime) -lpthread
$(B)/tests/unit/test_smime_codec: transports/smime.c
$(B)/tests/unit/test_%: tests/unit/test_%.c $(COMMON_SRCS:%.c=$(B)/%.o) $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(UNIT_CFLAGS_$*) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $< \
	    $(foreach s,$(UNIT_DEPS_$*),$(B)/$(s:.c=.o)) $(COMMON_SRCS:%.c=$(B)/%.o) \
	    $(LIBS) $(UNIT_LIBS_$*) $(shell $(PKG_CONFIG) --libs cmocka)
$(foreach t,$(UNIT_TESTS),$(eval $(B)/tests/unit/test_$(t): $(foreach s,$(UNIT_DEPS_$(t)),$(B)/$(s:.c=.o))))

unit: all $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The intake tests run a second time as the gateway is installed: the daemon
# as its own user (not root), the packets owned by someone else.
integration: all
	ROIGATE_BUILD=$(CURDIR)/$(B) /usr/bin/python3 -m pytest -q tests/integration
	ROIGATE_TEST_AS_USER=1 ROIGATE_BUILD=$(CURDIR)/$(B) /usr/bin/python3 -m pytest -q \
	    tests/integration/test_intake.py tests/integration/test_input_review.py \
	    "tests/integration/test_render.py::test_a_document_that_exhausts_the_reader_holds_up_no_one" \
	    "tests/integration/test_daemon.py::test_submit_over_the_socket" \
	    "tests/integration/test_daemon.py::test_libroigate_example_program" \
	    "tests/integration/test_socket.py::test_disconnect_mid_submit_accepts_nothing" \
	    "tests/integration/test_socket.py::test_fifty_clients_submit_while_one_sends_garbage"

# libFuzzer target for the socket decoder (clang); `make check` runs it briefly.
FUZZ_SECONDS ?= 20
$(B)/fuzz_proto: tests/fuzz/fuzz_proto.c src/proto.c src/util.c src/log.c $(wildcard include/*.h)
	clang -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -fsanitize=fuzzer,address,undefined \
	    -o $@ tests/fuzz/fuzz_proto.c src/proto.c src/util.c src/log.c \
	    $(shell $(PKG_CONFIG) --libs jansson libcrypto)

# libFuzzer target for document loading and redaction (MuPDF, libhpdf).
RENDER_FUZZ_SRCS = tests/fuzz/fuzz_render.c $(PIPELINE_SRCS) src/manifest.c \
              src/util.c src/log.c
$(B)/fuzz_render: $(RENDER_FUZZ_SRCS) $(wildcard include/*.h)
	clang -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -fsanitize=fuzzer,address,undefined \
	    -DROIGATE_SANITIZE -DTEMPLATE_DIR='"$(DATADIR)/roigate/templates"' \
	    -o $@ $(RENDER_FUZZ_SRCS) $(RENDER_LIBS) \
	    $(shell $(PKG_CONFIG) --libs jansson libcrypto)

fuzz: deps $(B)/fuzz_proto $(B)/fuzz_render
	@mkdir -p $(B)/fuzz-corpus $(B)/fuzz-corpus-render
	$(B)/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(B)/fuzz-corpus tests/fuzz/corpus
	$(B)/fuzz_render -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=1024 \
	    $(B)/fuzz-corpus-render tests/fuzz/corpus-render

# The package test last: it builds the .debs and installs them on the machine.
check: unit integration fuzz
	$(MAKE) check-package

demo: all
	@scripts/demo $(CURDIR)/$(B)

$(B)/bench/cover_bench: bench/cover_bench.c $(B)/src/cover.o $(B)/src/coverfont.o $(B)/src/util.o \
    $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ -lharfbuzz-subset -lharfbuzz -lhpdf $(LIBS)

$(B)/bench/sftp_put: bench/sftp_put.c include/roigate/transport.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $< -ldl

$(B)/bench/smime_build: bench/smime_build.c transports/smime.c $(B)/src/util.o $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(TRANSPORT_CFLAGS_smime) $(EXE_CFLAGS) \
	    -flto $(EXE_LDFLAGS) -Wl,--as-needed -o $@ $< $(B)/src/util.o $(B)/src/log.o \
	    $(TRANSPORT_LIBS_smime) $(shell $(PKG_CONFIG) --libs libcrypto) -lpthread

$(B)/bench/seal_bench: bench/seal_bench.c $(B)/src/seal.o $(B)/src/store.o $(B)/src/disclosure.o \
    $(B)/src/util.o $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/bench/prune_bench: bench/prune_bench.c $(B)/src/store.o $(B)/src/disclosure.o \
    $(B)/src/util.o $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(LIBS)

# OCR alone (src/ocr.c), beside the tesseract command: bench/ocr.
$(B)/bench/ocr_bench: bench/ocr_bench.c $(B)/src/ocr.o $(B)/src/util.o $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(LIBS) $(RENDER_LIBS)

$(B)/bench/accounting_bench: bench/accounting_bench.c $(B)/src/accounting.o $(B)/src/report.o $(B)/src/store.o \
    $(B)/src/disclosure.o $(B)/src/cover.o $(B)/src/coverfont.o $(B)/src/util.o $(B)/src/log.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(LIBS) -lharfbuzz-subset \
	    -lharfbuzz -lhpdf

$(B)/bench/smime_peer: bench/smime_peer.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXE_CFLAGS) $(EXE_LDFLAGS) -o $@ $< \
	    $(shell $(PKG_CONFIG) --libs libcrypto)

bench: all $(B)/bench/sftp_put $(B)/bench/smime_build $(B)/bench/smime_peer $(B)/bench/cover_bench \
    $(B)/bench/seal_bench $(B)/bench/ocr_bench $(B)/bench/accounting_bench $(B)/bench/prune_bench
	@bench/run $(CURDIR)/$(B)
	@bench/latency $(CURDIR)/$(B)
	@bench/intake_profile $(CURDIR)/$(B) --no-trace
	@bench/render $(CURDIR)/$(B)
	@bench/ocr $(CURDIR)/$(B)
	@bench/sftp $(CURDIR)/$(B)
	@bench/smime $(CURDIR)/$(B)
	@bench/fax $(CURDIR)/$(B)
	@bench/ops $(CURDIR)/$(B)
	@bench/seal $(CURDIR)/$(B)
	@bench/prune $(CURDIR)/$(B)
	@bench/accounting $(CURDIR)/$(B)
	@bench/sandbox $(CURDIR)/$(B)
	@bench/redact_widths $(CURDIR)/$(B)

# Where `make install` puts what is not a program.  The Debian package
# (debian/rules) sets SYSTEMDUNITDIR=/lib/systemd/system, Debian 12's place,
# and SOLIBDIR (libroigate and roigate.pc) to the multiarch folder.
SBINDIR        ?= $(PREFIX)/sbin
SOLIBDIR       ?= $(LIBDIR)
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(DATADIR)/man
DOCDIR         ?= $(DATADIR)/doc/roigate
SYSTEMDUNITDIR ?= $(LIBDIR)/systemd/system
BASHCOMPDIR    ?= $(DATADIR)/bash-completion/completions

# Man pages of the programs that exist on every build; the pages of the
# optional programs (roigate-verify, roigate-exporter) are installed only
# when the program was built, so no page describes a missing program.
MAN_ALWAYS   = man/roigated.8 man/roictl.1 man/roigate-render.1 \
               man/roigate.conf.5 man/roigate-manifest.5
MAN_OPTIONAL = roigate-verify:man/roigate-verify.1 roigate-exporter:man/roigate-exporter.8

# The units with the install paths filled in (systemd-analyze reads these).
UNITS = $(patsubst systemd/%.service,$(B)/systemd/%.service,$(wildcard systemd/*.service))
$(B)/systemd/%.service: systemd/%.service FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	    -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@
units: $(UNITS)

install: all $(UNITS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(LIBDIR)/roigate/transports $(DESTDIR)$(DATADIR)/roigate/templates \
	    $(DESTDIR)$(SYSCONFDIR)/roigate $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(LIBDIR)/sysusers.d $(DESTDIR)$(LIBDIR)/tmpfiles.d \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(B)/roigated $(DESTDIR)$(SBINDIR)/roigated
	install -m 0755 $(B)/roictl $(DESTDIR)$(BINDIR)/roictl
	install -m 0755 $(B)/roigate-render $(DESTDIR)$(BINDIR)/roigate-render
	install -m 0755 $(B)/roigate-exporter $(DESTDIR)$(SBINDIR)/roigate-exporter
	install -m 0755 $(B)/roigate-verify $(DESTDIR)$(BINDIR)/roigate-verify
	install -m 0644 $(TRANSPORTS:%=$(B)/transports/%.so) $(DESTDIR)$(LIBDIR)/roigate/transports/
	install -d $(DESTDIR)$(PREFIX)/include/roigate $(DESTDIR)$(SOLIBDIR)/pkgconfig
	install -m 0644 include/roigate/client.h include/roigate/transport.h $(DESTDIR)$(PREFIX)/include/roigate/
	install -m 0644 $(B)/libroigate.so.$(LIB_VERSION) $(DESTDIR)$(SOLIBDIR)/
	ln -sf libroigate.so.$(LIB_VERSION) $(DESTDIR)$(SOLIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(SOLIBDIR)/libroigate.so
	install -m 0644 $(B)/roigate.pc $(DESTDIR)$(SOLIBDIR)/pkgconfig/roigate.pc
	cp -R templates/. $(DESTDIR)$(DATADIR)/roigate/templates/
	# The daemon (User=roigate) reads it: no secrets in it, they live in
	# files of their own (docs/transports.md, "Secrets").
	test -e $(DESTDIR)$(SYSCONFDIR)/roigate/roigate.conf || \
	    install -m 0644 examples/roigate.conf $(DESTDIR)$(SYSCONFDIR)/roigate/roigate.conf
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 0644 systemd/roigate.sysusers $(DESTDIR)$(LIBDIR)/sysusers.d/roigate.conf
	install -m 0644 systemd/roigate.tmpfiles $(DESTDIR)$(LIBDIR)/tmpfiles.d/roigate.conf
	for m in $(MAN_ALWAYS); do \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; done
	for pm in $(MAN_OPTIONAL); do p=$${pm%%:*} m=$${pm#*:}; \
	    if [ -e $(B)/$$p ]; then install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; fi; done
	install -m 0644 completion/roictl.bash $(DESTDIR)$(BASHCOMPDIR)/roictl

# The Debian packages (debian/, docs/packaging.md), built with
# dpkg-buildpackage from a copy of the tree so that nothing here is touched;
# the .debs, .buildinfo, .changes and lintian's report land in $(DEB_OUT).
# Without this make's flags: `make SANITIZE=1 check` must not make an ASan package.
DEB_OUT = build/deb
deb: deps
	rm -rf build/deb-src $(DEB_OUT)
	mkdir -p build/deb-src/roigate $(DEB_OUT)
	tar -c --exclude=./build --exclude=./build-san --exclude=./.git \
	    --exclude=./demo-run --exclude=__pycache__ --exclude=.pytest_cache . | \
	    tar -x -C build/deb-src/roigate
	cd build/deb-src/roigate && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -us -uc -b -j2 > ../build.log 2>&1 || \
	    { tail -40 ../build.log; exit 1; }
	mv build/deb-src/*.deb build/deb-src/*.buildinfo build/deb-src/*.changes $(DEB_OUT)/
	lintian --display-info $(DEB_OUT)/*.changes 2>&1 | tee $(DEB_OUT)/lintian.txt
	@! grep -q '^E:' $(DEB_OUT)/lintian.txt || { echo "lintian reports errors" >&2; exit 1; }
	rm -rf build/deb-src
	@ls -1 $(DEB_OUT)/*.deb

# Builds the packages, installs them on this machine with dpkg -i, checks
# the installed gateway and purges it (tests/package/, docs/packaging.md).
# Run as root on a throwaway machine (CI); `make check` runs it last.
check-package: deb
	ROIGATE_DEB_DIR=$(CURDIR)/$(DEB_OUT) /usr/bin/python3 -m pytest -q tests/package

clean:
	rm -rf build build-san

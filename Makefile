# Tether: `make` builds everything, `make test` installs what it needs and
# runs every test, `make demo` runs Tether on one machine, `make bench` measures.
CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
BUILD   ?= build

ARCH_INCLUDE := /usr/include/$(shell $(CC) -dumpmachine)

CFLAGS  ?= -O2 -g
GLIB_CFLAGS := $(shell pkg-config --cflags glib-2.0 2>/dev/null)
GLIB_LIBS   := $(shell pkg-config --libs glib-2.0 2>/dev/null)
# Library headers are named with their folder ("core/core.h", "dataplane/dataplane.h");
# a program's own headers are found beside its files.
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iuser/lib -I$(BUILD) $(GLIB_CFLAGS)
LDLIBS  := -lbpf -lelf -lz $(GLIB_LIBS)
BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -Iinclude -I$(ARCH_INCLUDE)

# `make` builds everything: the library rules below come first in the file.
.DEFAULT_GOAL := all

BPF_SRC   := bpf/tether_xdp.c
BPF_OBJ   := $(BUILD)/tether_xdp.bpf.o
SKEL      := $(BUILD)/tether_xdp.skel.h
BPF_HDRS  := $(wildcard bpf/*.h) $(wildcard include/tether/*.h)

objects_of = $(patsubst %.c,$(BUILD)/%.o,$(1))

# --- Libraries (user/lib/*/, each folder one library; docs/architecture.md) ---
# core: event loop, addresses, interfaces, VIPs on lo. dataplane: the only code
# that writes the maps (loader, typed writers, Maglev). control: the control
# protocol, both sides. store: the fleet's etcd client (libcurl, json-glib).
# tls: the control connections' transport, plain or TLS (GnuTLS).
# client: libtether-client, for programs that invoke.
LIB_DIR := $(BUILD)/lib
LIBRARIES := core dataplane control store tls
$(foreach lib,$(LIBRARIES),$(eval LIB_$(lib) := $(LIB_DIR)/libtether-$(lib).a))
$(foreach lib,$(LIBRARIES),$(eval $(LIB_DIR)/libtether-$(lib).a: \
	$(call objects_of,$(wildcard user/lib/$(lib)/*.c))))

STORE_CFLAGS := $(shell pkg-config --cflags libcurl json-glib-1.0 2>/dev/null)
STORE_LIBS   := $(shell pkg-config --libs libcurl json-glib-1.0 2>/dev/null)
$(call objects_of,$(wildcard user/lib/store/*.c)): CFLAGS += $(STORE_CFLAGS)
# --json output (user/lib/control/json.c) is built with json-glib: what
# includes control/json.h compiles with it, what links json.o links it.
JSON_CFLAGS := $(shell pkg-config --cflags json-glib-1.0 2>/dev/null)
JSON_LIBS   := $(shell pkg-config --libs json-glib-1.0 2>/dev/null)
JSON_USERS  := $(call objects_of,user/lib/control/json.c $(wildcard user/tetherctl/*.c) \
		 $(wildcard user/invoke/*.c) tools/udp_load.c tests/unit/test_tetherctl.c)
$(JSON_USERS): CFLAGS += $(JSON_CFLAGS)
# tetherd's /metrics: libmicrohttpd on its loop (user/tetherd/metrics_http.c).
METRICS_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
TLS_CFLAGS := $(shell pkg-config --cflags gnutls 2>/dev/null)
TLS_LIBS   := $(shell pkg-config --libs gnutls 2>/dev/null)
$(call objects_of,$(wildcard user/lib/tls/*.c)): CFLAGS += $(TLS_CFLAGS)

CLIENT_VERSION := 1.0.0
CLIENT_SONAME  := libtether-client.so.$(firstword $(subst ., ,$(CLIENT_VERSION)))
LIB_client     := $(LIB_DIR)/libtether-client.a
CLIENT_SHARED  := $(LIB_DIR)/libtether-client.so.$(CLIENT_VERSION)
$(LIB_client): $(BUILD)/user/lib/client/client.o

$(LIB_DIR)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

# A program's code but its main.c, as an archive: what its tests link.
TETHERD_LIB   := $(BUILD)/user/tetherd/libtetherd.a
TETHERCTL_LIB := $(BUILD)/user/tetherctl/libtetherctl.a
AGENT_LIB     := $(BUILD)/user/agent/libagent.a
INVOKE_LIB    := $(BUILD)/user/invoke/libinvoke.a
program_objects = $(call objects_of,$(filter-out user/$(1)/main.c,$(wildcard user/$(1)/*.c)))
$(TETHERD_LIB): $(call program_objects,tetherd)
$(TETHERCTL_LIB): $(call program_objects,tetherctl)
$(AGENT_LIB): $(call program_objects,agent)
$(INVOKE_LIB): $(call program_objects,invoke)
$(BUILD)/user/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

# Objects first, then archives as one group (they may call each other).
LINK = $(CC) $(CFLAGS) $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group \
	-o $@ $(LDLIBS)

# The tests' own library (packet builder, test_run harness, test world).
TESTLIB      := $(BUILD)/tests/lib/libtests.a
$(TESTLIB): $(call objects_of,$(wildcard tests/lib/*.c))
	rm -f $@ && $(AR) rcs $@ $^
UNIT_TESTS   := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c))
BPF_TESTS    := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/bpf/test_*.c))
STORE_TESTS  := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/store/test_*.c))
TOOLS        := $(patsubst %.c,$(BUILD)/%,$(filter-out %.bpf.c,$(wildcard tools/*.c)))
TOOL_BPF_OBJS := $(patsubst tools/%.bpf.c,$(BUILD)/%.bpf.o,$(wildcard tools/*.bpf.c))
PROGRAMS     := $(BUILD)/tetherd $(BUILD)/tetherctl $(BUILD)/tether-agent $(BUILD)/tether-invoke

# libFuzzer targets (clang, ASan + UBSan), each with the library code it fuzzes.
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Iinclude -Iuser/lib

.PHONY: all deps test bench bench-forward demo demo-fleet clean
all: $(BPF_OBJ) $(SKEL) $(PROGRAMS) $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(TOOLS) $(TOOL_BPF_OBJS) \
     $(FUZZ_TARGETS) $(LIB_client) $(CLIENT_SHARED)

deps:
	@tools/install-deps.sh

# The router and the benchmark's wrapper of it take ISA v3: the in-flight
# accounting needs atomic fetch-and-add and compare-and-exchange (bpf/load.h).
ROUTER_BPF_CFLAGS := -mcpu=v3

$(BPF_OBJ): $(BPF_SRC) $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) $(ROUTER_BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.bpf.o: tools/%.bpf.c
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name tether_xdp > $@.tmp && mv $@.tmp $@

# The VM's IPIP decapsulator (tether-agent --decap ipip), embedded in the agent.
DECAP_BPF_OBJ := $(BUILD)/decap_ipip.bpf.o
DECAP_SKEL    := $(BUILD)/decap_ipip.skel.h

$(DECAP_BPF_OBJ): bpf/decap_ipip.c include/tether/decap.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(DECAP_SKEL): $(DECAP_BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name decap_ipip > $@.tmp && mv $@.tmp $@

$(BUILD)/user/agent/decap_xdp.o $(BUILD)/tests/bpf/test_decap_ipip.o: $(DECAP_SKEL)

HEADERS := $(wildcard include/tether/*.h user/lib/*/*.h user/*/*.h tests/lib/*.h)
$(BUILD)/%.o: %.c $(SKEL) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: CFLAGS += -Itests/lib

# --- Programs: each links the libraries it uses, nothing else ------------------
$(BUILD)/tetherd: $(BUILD)/user/tetherd/main.o $(TETHERD_LIB) $(LIB_dataplane) $(LIB_control) \
		  $(LIB_store) $(LIB_tls) $(LIB_core)
	$(LINK)
$(BUILD)/tetherd: LDLIBS += $(STORE_LIBS) $(METRICS_LIBS) $(TLS_LIBS)

$(BUILD)/tetherctl: $(BUILD)/user/tetherctl/main.o $(TETHERCTL_LIB) $(LIB_control)
	$(LINK)
$(BUILD)/tetherctl $(BUILD)/tether-invoke $(BUILD)/tools/udp_load \
	$(BUILD)/tests/unit/test_tetherctl: LDLIBS += $(JSON_LIBS)

$(BUILD)/tether-agent: $(BUILD)/user/agent/main.o $(AGENT_LIB) $(LIB_control) $(LIB_tls) $(LIB_core)
	$(LINK)
$(BUILD)/tether-agent: LDLIBS += $(TLS_LIBS)

$(BUILD)/tether-invoke: $(BUILD)/user/invoke/main.o $(INVOKE_LIB) $(LIB_client) $(LIB_control)
	$(LINK)

# --- libtether-client: static, shared (versioned soname), pkg-config ----------
# Only tether_* symbols leave the shared library (libtether-client.map).
$(BUILD)/user/lib/client/client.pic.o: user/lib/client/client.c include/tether/client.h \
				       include/tether/wire.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(CLIENT_SHARED): $(BUILD)/user/lib/client/client.pic.o user/lib/client/libtether-client.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(CLIENT_SONAME) \
		-Wl,--version-script=user/lib/client/libtether-client.map $< -o $@ $(GLIB_LIBS)
	ln -sf $(notdir $@) $(LIB_DIR)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(LIB_DIR)/libtether-client.so

# make install-client [PREFIX=/usr/local] [DESTDIR=]: the headers, both libraries,
# the soname links and tether-client.pc (its prefix is PREFIX).
PREFIX ?= /usr/local
.PHONY: install-client
install-client: $(LIB_client) $(CLIENT_SHARED)
	install -d $(DESTDIR)$(PREFIX)/include/tether $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/tether/client.h include/tether/wire.h $(DESTDIR)$(PREFIX)/include/tether/
	install -m 644 $(LIB_client) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(CLIENT_SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(CLIENT_SHARED)) $(DESTDIR)$(PREFIX)/lib/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(DESTDIR)$(PREFIX)/lib/libtether-client.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(CLIENT_VERSION)|' \
		user/lib/client/tether-client.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/tether-client.pc

# --- Tests: each links what it tests; those that reach into a program's -------
# internals say so (its folder on the include path, its archive on the link line).
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TESTLIB)
	$(LINK) -lcmocka -lm

TETHERD_INTERNALS := tests/unit/test_store_records tests/bpf/test_apply tests/bpf/test_lifecycle tests/bpf/test_limits tests/bpf/test_slowpath \
		     tests/unit/test_config tests/unit/test_metrics tests/bpf/test_metrics tools/bench_control \
		     tools/bench_metrics
$(TETHERD_INTERNALS:%=$(BUILD)/%.o): CFLAGS += -Iuser/tetherd
$(TETHERD_INTERNALS:%=$(BUILD)/%): $(TETHERD_LIB) $(LIB_dataplane) $(LIB_control) $(LIB_store) \
				    $(LIB_tls) $(LIB_core)
$(TETHERD_INTERNALS:%=$(BUILD)/%): LDLIBS += $(STORE_LIBS) $(METRICS_LIBS) $(TLS_LIBS)
# The store client against a real etcd cluster (tools/etcd-cluster.sh).
$(STORE_TESTS): $(LIB_store) $(LIB_core)
$(STORE_TESTS): LDLIBS += $(STORE_LIBS)
$(STORE_TESTS:=.o): CFLAGS += $(STORE_CFLAGS) -Iuser/lib/store # it feeds the decoders too
$(BUILD)/tests/unit/test_agent.o: CFLAGS += -Iuser/agent
$(BUILD)/tests/unit/test_agent: $(AGENT_LIB) $(LIB_control) $(LIB_tls) $(LIB_core)
$(BUILD)/tests/unit/test_agent: LDLIBS += $(TLS_LIBS)
$(BUILD)/tests/unit/test_tetherctl.o: CFLAGS += -Iuser/tetherctl
$(BUILD)/tests/unit/test_tetherctl: $(TETHERCTL_LIB) $(LIB_control)
$(BUILD)/tests/unit/test_client: $(LIB_client)
$(BUILD)/tests/unit/test_tls: $(LIB_tls)
$(BUILD)/tests/unit/test_tls: LDLIBS += $(TLS_LIBS)
$(BUILD)/tests/unit/test_protocol: $(LIB_control)
$(BUILD)/tests/unit/test_loop: $(LIB_core)
$(BUILD)/tests/unit/test_endpoint: $(LIB_core)
$(BUILD)/tests/unit/test_maglev: $(LIB_dataplane) $(LIB_core)
$(BUILD)/tests/unit/test_pktgen: $(LIB_dataplane) $(LIB_core)
# Every bpf test drives the maps through the dataplane library.
$(BPF_TESTS): $(LIB_dataplane) $(LIB_control) $(LIB_core)

$(BUILD)/tools/%: $(BUILD)/tools/%.o
	$(LINK) -lm
$(BUILD)/tools/bench_control $(BUILD)/tools/bench_dataplane $(BUILD)/tools/check_pins: \
	$(LIB_dataplane) $(LIB_control) $(LIB_core)
$(BUILD)/tools/udp_load: $(LIB_client) $(LIB_control)
$(BUILD)/tools/echo_backend: $(LIB_core)
# What the bench and load tools share: their report rows, their control sessions.
TOOL_LIB_USERS := tools/bench_control tools/bench_metrics tools/control_load tools/control_rate
$(TOOL_LIB_USERS:%=$(BUILD)/%.o): CFLAGS += -Itools/lib
$(BUILD)/tools/bench_control $(BUILD)/tools/bench_metrics: $(BUILD)/tools/lib/bench_report.o
$(BUILD)/tools/control_load $(BUILD)/tools/control_rate: $(BUILD)/tools/lib/control_session.o
# The fleet bench's writer: the store's records (tetherd's store_records.c).
$(BUILD)/tools/fleet_fill.o: CFLAGS += -Iuser/tetherd
$(BUILD)/tools/fleet_fill: $(TETHERD_LIB) $(LIB_store) $(LIB_control) $(LIB_tls) $(LIB_core) $(LIB_dataplane)
$(BUILD)/tools/fleet_fill: LDLIBS += $(STORE_LIBS) $(TLS_LIBS)

PACKAGING_TESTS := $(wildcard tests/packaging/test_*.sh)
E2E_TESTS := $(filter-out tests/e2e/test_private_checkout.sh,$(wildcard tests/e2e/test_*.sh))

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/demo.sh

# A fleet: three routers on a three-member etcd, agents, clients over ECMP.
demo-fleet: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/demo_fleet.sh



test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/run-tests.sh $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(E2E_TESTS) tests/fuzz/run.sh \
		$(PACKAGING_TESTS) tests/bench/test_bench_quick.sh
	@$(MAKE) --no-print-directory test-sanitize

$(BUILD)/fuzz/fuzz_protocol: user/lib/control/protocol.c
$(BUILD)/fuzz/fuzz_agent_wire: user/agent/wire.c
$(BUILD)/fuzz/fuzz_agent_wire: FUZZ_CFLAGS += -Iuser/agent
$(BUILD)/fuzz/fuzz_store_records: user/tetherd/store_records.c user/lib/control/protocol.c \
				  user/lib/core/addr.c
$(BUILD)/fuzz/fuzz_store_records: FUZZ_CFLAGS += -Iuser/tetherd
$(BUILD)/fuzz/%: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $^ -o $@

clean:
	rm -rf $(BUILD)

.SECONDARY:

# The version, man pages, completion, `make install`, `make deb`.
include mk/release.mk

# Benchmarks: BPF wrappers in tools/bench/, harness tools/bench_dataplane.c.
BENCH_BPF_OBJ := $(BUILD)/bench_xdp.bpf.o
BENCH_SKEL    := $(BUILD)/bench_xdp.skel.h

$(BENCH_BPF_OBJ): tools/bench/bench_xdp.bpf.c tools/bench/bench_xdp.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) $(ROUTER_BPF_CFLAGS) -Ibpf -c $< -o $@

$(BENCH_SKEL): $(BENCH_BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name bench_xdp > $@.tmp && mv $@.tmp $@

# The same wrappers without the packet trace compiled in (bpf/trace.h): the
# baseline of the trace's cost when off.
BENCH_UNTRACED_OBJ  := $(BUILD)/bench_xdp_untraced.bpf.o
BENCH_UNTRACED_SKEL := $(BUILD)/bench_xdp_untraced.skel.h

$(BENCH_UNTRACED_OBJ): tools/bench/bench_xdp.bpf.c tools/bench/bench_xdp.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) $(ROUTER_BPF_CFLAGS) -DTETHER_NO_TRACE -Ibpf -c $< -o $@

$(BENCH_UNTRACED_SKEL): $(BENCH_UNTRACED_OBJ)
	$(BPFTOOL) gen skeleton $< name bench_xdp_untraced > $@.tmp && mv $@.tmp $@

# The same wrapper with power of two choices for flows and new keys
# (bpf/routing.h, TETHER_PICK_P2C), measured beside the table order; its
# cases are all L2, and with the routed path too it passes the verifier's
# million instructions (TETHER_NO_ROUTED leaves that path out).
BENCH_P2C_OBJ  := $(BUILD)/bench_xdp_p2c.bpf.o
BENCH_P2C_SKEL := $(BUILD)/bench_xdp_p2c.skel.h

$(BENCH_P2C_OBJ): tools/bench/bench_xdp.bpf.c tools/bench/bench_xdp.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) $(ROUTER_BPF_CFLAGS) -DTETHER_PICK_P2C -DTETHER_NO_ROUTED -Ibpf -c $< -o $@

$(BENCH_P2C_SKEL): $(BENCH_P2C_OBJ)
	$(BPFTOOL) gen skeleton $< name bench_xdp_p2c > $@.tmp && mv $@.tmp $@

# The same wrapper with the next hop from bpf_fib_lookup on every packet
# (bpf/encap.h, TETHER_NEXTHOP_NO_CACHE), measured beside the cached one.
BENCH_FIB_OBJ  := $(BUILD)/bench_xdp_fib.bpf.o
BENCH_FIB_SKEL := $(BUILD)/bench_xdp_fib.skel.h

$(BENCH_FIB_OBJ): tools/bench/bench_xdp.bpf.c tools/bench/bench_xdp.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) $(ROUTER_BPF_CFLAGS) -DTETHER_NEXTHOP_NO_CACHE -Ibpf -c $< -o $@

$(BENCH_FIB_SKEL): $(BENCH_FIB_OBJ)
	$(BPFTOOL) gen skeleton $< name bench_xdp_fib > $@.tmp && mv $@.tmp $@

# Forwarding throughput (tools/bench_forward.sh, tools/bench_forward_encap.sh): BPF
# programs and tools in tools/bench/.
FWD_BPF_OBJS := $(BUILD)/forward_xdp.bpf.o $(BUILD)/forward_sink.bpf.o
FWD_SKELS    := $(FWD_BPF_OBJS:.bpf.o=.skel.h)
FWD_TOOLS    := $(BUILD)/tools/bench/forward_ctl $(BUILD)/tools/bench/userspace_router \
		$(BUILD)/tools/bench/request_frame
all: $(FWD_TOOLS)

$(BUILD)/forward_%.bpf.o: tools/bench/forward_%.bpf.c tools/bench/forward.h include/tether/wire.h \
			 bpf/words.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -Ibpf -c $< -o $@

$(BUILD)/forward_%.skel.h: $(BUILD)/forward_%.bpf.o
	$(BPFTOOL) gen skeleton $< name forward_$* > $@.tmp && mv $@.tmp $@

$(BUILD)/tools/bench/forward_ctl.o: $(FWD_SKELS) tools/bench/forward.h
$(BUILD)/tools/bench/forward_ctl.o: CFLAGS += -Itools -Itests/lib
$(BUILD)/tools/bench/forward_ctl: $(BUILD)/tests/lib/pktgen.o $(LIB_dataplane) $(LIB_core)
$(BUILD)/tools/bench/userspace_router: $(BUILD)/tools/bench/userspace_router.o
	$(LINK)
$(BUILD)/tools/bench/request_frame.o: CFLAGS += -Itests/lib
$(BUILD)/tools/bench/request_frame: $(BUILD)/tools/bench/request_frame.o $(BUILD)/tests/lib/pktgen.o
	$(LINK)

$(BUILD)/tools/bench_dataplane.o: $(BENCH_SKEL) $(BENCH_UNTRACED_SKEL) $(BENCH_P2C_SKEL) \
				  $(BENCH_FIB_SKEL)
$(BUILD)/tools/bench_dataplane.o: CFLAGS += -Itools -Itests/lib
$(BUILD)/tools/bench_dataplane: $(BUILD)/tests/lib/pktgen.o

# Pool-table lookups (tools/bench_hash.c): Maglev against DxHash, in BPF too.
HASH_BPF_OBJ := $(BUILD)/hash_lookup.bpf.o
HASH_SKEL    := $(BUILD)/hash_lookup.skel.h

$(HASH_BPF_OBJ): tools/bench/hash_lookup.bpf.c tools/bench/hash_lookup.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(HASH_SKEL): $(HASH_BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name hash_lookup > $@.tmp && mv $@.tmp $@

$(BUILD)/tools/bench_hash.o: $(HASH_SKEL) tools/bench/hash_lookup.h
$(BUILD)/tools/bench_hash.o: CFLAGS += -Itools
# AnchorHash is a yardstick of the bench, not part of the router.
$(BUILD)/tools/bench_hash: $(BUILD)/tools/bench/anchorhash.o $(LIB_dataplane) $(LIB_core)
$(BUILD)/tests/unit/test_anchorhash: $(BUILD)/tools/bench/anchorhash.o
$(BUILD)/tests/unit/test_anchorhash.o: CFLAGS += -Itools
$(BUILD)/tests/unit/test_dxhash: $(LIB_dataplane) $(LIB_core)

bench: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/tools/bench_dataplane --json $(BUILD)/bench-dataplane.json
	$(BUILD)/tools/bench_control --json $(BUILD)/bench-control.json
	$(BUILD)/tools/bench_metrics --json $(BUILD)/bench-metrics.json
	$(BUILD)/tools/bench_hash --json $(BUILD)/bench-hash.json
	BUILD=$(BUILD) tools/bench_forward.sh --json $(BUILD)/bench-forward.json
	BUILD=$(BUILD) tools/bench_forward_encap.sh --json $(BUILD)/bench-forward-encap.json
	BUILD=$(BUILD) tools/bench_socket.sh --json $(BUILD)/bench-socket.json
	BUILD=$(BUILD) tools/bench_latency.sh --json $(BUILD)/bench-latency.json
	BUILD=$(BUILD) tools/bench_converge.sh --json $(BUILD)/bench-converge.json
	BUILD=$(BUILD) tools/bench_admission.sh --json $(BUILD)/bench-admission.json
	BUILD=$(BUILD) tools/bench_agent_rate.sh --json $(BUILD)/bench-agent-rate.json
	BUILD=$(BUILD) tools/bench_hotkey.sh --json $(BUILD)/bench-hotkey.json
	BUILD=$(BUILD) tools/bench_fleet.sh --json $(BUILD)/bench-fleet.json


# --- Sanitizers ---------------------------------------------------------------
# `make test-sanitize` (part of `make test`): all userspace built again in its
# own directory with AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
# (CFLAGS from the environment, so the flags above still apply; the BPF objects
# and skeletons take BPF_CFLAGS, never these), then the unit, bpf and end-to-end
# tests on that build. A sanitizer report from any program a test started fails
# the test (tools/run-tests.sh --sanitize; suppressions in tests/sanitize/).
# Three at a time: the bpf tests are kernel-bound, the end-to-end ones mostly wait.
SANITIZE_BUILD  ?= $(BUILD)/sanitize
# clang: its UBSan writes to the report files tools/run-tests.sh checks (log_path);
# GCC's libubsan writes to stderr whatever it is told, lost in a daemon's log.
SANITIZE_CC     ?= $(CLANG)
SANITIZE_CFLAGS ?= -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
		   -fno-omit-frame-pointer
# valgrind cannot run what ASan built: test_valgrind.sh runs on the plain build.
SANITIZE_E2E    := $(filter-out tests/e2e/test_valgrind.sh,$(E2E_TESTS)) \
		   tests/e2e/test_private_checkout.sh
SANITIZE_TESTS  := $(patsubst $(BUILD)/%,$(SANITIZE_BUILD)/%,$(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS))

.PHONY: userspace test-sanitize
userspace: $(PROGRAMS) $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(TOOLS) $(TOOL_BPF_OBJS)

test-sanitize: deps
	@CFLAGS="$(SANITIZE_CFLAGS)" $(MAKE) --no-print-directory -j$(shell nproc) \
		BUILD=$(SANITIZE_BUILD) CC=$(SANITIZE_CC) ARCH_INCLUDE=$(ARCH_INCLUDE) userspace
	@BUILD=$(SANITIZE_BUILD) tools/run-tests.sh --sanitize --jobs 3 $(SANITIZE_E2E) \
		$(SANITIZE_TESTS)

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
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iuser/lib -Iuser/tetherd -I$(BUILD) $(GLIB_CFLAGS)
LDLIBS  := -lbpf -lelf -lz $(GLIB_LIBS)
BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -Iinclude -I$(ARCH_INCLUDE)

BPF_SRC   := bpf/tether_xdp.c
BPF_OBJ   := $(BUILD)/tether_xdp.bpf.o
SKEL      := $(BUILD)/tether_xdp.skel.h
BPF_HDRS  := $(wildcard bpf/*.h) $(wildcard include/tether/*.h)

LIB_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/lib/*.c))
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/lib/*.c))
# tetherd's code but its main(): what the tests link against.
TETHERD_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out user/tetherd/main.c,$(wildcard user/tetherd/*.c)))
TETHERCTL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/tetherctl/*.c))
AGENT_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/agent/*.c))
INVOKE_OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/invoke/*.c))
UNIT_TESTS   := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c))
BPF_TESTS    := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/bpf/test_*.c))
# The fleet's store client (etcd over libcurl and json-glib): linked into its
# own tests only, for now.
STORE_CFLAGS := $(shell pkg-config --cflags libcurl json-glib-1.0 2>/dev/null)
STORE_LIBS   := $(shell pkg-config --libs libcurl json-glib-1.0 2>/dev/null)
STORE_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/lib/store/*.c))
STORE_TESTS  := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/store/test_*.c))
TOOLS        := $(patsubst %.c,$(BUILD)/%,$(filter-out %.bpf.c,$(wildcard tools/*.c)))
TOOL_BPF_OBJS := $(patsubst tools/%.bpf.c,$(BUILD)/%.bpf.o,$(wildcard tools/*.bpf.c))
PROGRAMS     := $(BUILD)/tetherd $(BUILD)/tetherctl $(BUILD)/tether-agent $(BUILD)/tether-invoke

# libFuzzer targets (clang, ASan + UBSan), each with the library code it fuzzes.
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Iinclude -Iuser/lib

.PHONY: all deps test bench bench-forward demo clean
all: $(BPF_OBJ) $(SKEL) $(LIB_OBJS) $(PROGRAMS) $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(TOOLS) \
     $(TOOL_BPF_OBJS) $(FUZZ_TARGETS)

deps:
	@tools/install-deps.sh

$(BPF_OBJ): $(BPF_SRC) $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.bpf.o: tools/%.bpf.c
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name tether_xdp > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c $(SKEL) $(wildcard include/tether/*.h user/lib/*.h user/tetherd/*.h user/agent/*.h user/tetherctl/*.h user/invoke/*.h tests/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: CFLAGS += -Itests/lib

$(BUILD)/tetherd: $(BUILD)/user/tetherd/main.o $(TETHERD_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tetherctl: $(TETHERCTL_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tether-agent: $(AGENT_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tether-invoke: $(INVOKE_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TETHERD_OBJS) $(LIB_OBJS) $(TESTLIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcmocka -lm

$(STORE_OBJS) $(STORE_TESTS:=.o): CFLAGS += $(STORE_CFLAGS) -Iuser/lib/store
$(STORE_OBJS) $(STORE_TESTS:=.o): $(wildcard user/lib/store/*.h)
$(BUILD)/tests/store/%: $(BUILD)/tests/store/%.o $(STORE_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(STORE_LIBS) -lcmocka

$(BUILD)/tools/bench_control: $(TETHERD_OBJS)
$(BUILD)/tools/%: $(BUILD)/tools/%.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lm

# test_private_checkout.sh re-runs the privileges suite on the sanitized build
# (where a file its --user cannot read fails), so only test-sanitize runs it.
E2E_TESTS := $(filter-out tests/e2e/test_private_checkout.sh,$(wildcard tests/e2e/test_*.sh))

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/demo.sh



test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/run-tests.sh $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(E2E_TESTS) tests/fuzz/run.sh \
		tests/bench/test_bench_quick.sh
	@$(MAKE) --no-print-directory test-sanitize

$(BUILD)/fuzz/fuzz_protocol: user/lib/protocol.c
$(BUILD)/fuzz/fuzz_agent_wire: user/lib/agent_wire.c
$(BUILD)/fuzz/%: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $^ -o $@

clean:
	rm -rf $(BUILD)

.SECONDARY:

# Benchmarks: BPF wrappers in tools/bench/, harness tools/bench_dataplane.c.
BENCH_BPF_OBJ := $(BUILD)/bench_xdp.bpf.o
BENCH_SKEL    := $(BUILD)/bench_xdp.skel.h

$(BENCH_BPF_OBJ): tools/bench/bench_xdp.bpf.c tools/bench/bench_xdp.h $(BPF_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -Ibpf -c $< -o $@

$(BENCH_SKEL): $(BENCH_BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name bench_xdp > $@.tmp && mv $@.tmp $@

# Forwarding throughput (tools/bench_forward.sh): BPF programs and tools in tools/bench/.
FWD_BPF_OBJS := $(BUILD)/forward_xdp.bpf.o $(BUILD)/forward_sink.bpf.o
FWD_SKELS    := $(FWD_BPF_OBJS:.bpf.o=.skel.h)
FWD_TOOLS    := $(BUILD)/tools/bench/forward_ctl $(BUILD)/tools/bench/userspace_router
all: $(FWD_TOOLS)

$(BUILD)/forward_%.bpf.o: tools/bench/forward_%.bpf.c tools/bench/forward.h include/tether/wire.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/forward_%.skel.h: $(BUILD)/forward_%.bpf.o
	$(BPFTOOL) gen skeleton $< name forward_$* > $@.tmp && mv $@.tmp $@

$(BUILD)/tools/bench/forward_ctl.o: $(FWD_SKELS) tools/bench/forward.h
$(BUILD)/tools/bench/forward_ctl.o: CFLAGS += -Itools -Itests/lib
$(BUILD)/tools/bench/forward_ctl: $(BUILD)/tests/lib/pktgen.o
$(BUILD)/tools/bench/userspace_router: $(BUILD)/tools/bench/userspace_router.o
	$(CC) $(CFLAGS) $^ -o $@

$(BUILD)/tools/bench_dataplane.o: $(BENCH_SKEL)
$(BUILD)/tools/bench_dataplane.o: CFLAGS += -Itools -Itests/lib
$(BUILD)/tools/bench_dataplane: $(BUILD)/tests/lib/pktgen.o

bench: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/tools/bench_dataplane --json $(BUILD)/bench-dataplane.json
	$(BUILD)/tools/bench_control --json $(BUILD)/bench-control.json
	BUILD=$(BUILD) tools/bench_forward.sh --json $(BUILD)/bench-forward.json
	BUILD=$(BUILD) tools/bench_socket.sh --json $(BUILD)/bench-socket.json
	BUILD=$(BUILD) tools/bench_latency.sh --json $(BUILD)/bench-latency.json
	BUILD=$(BUILD) tools/bench_converge.sh --json $(BUILD)/bench-converge.json

$(BUILD)/tests/unit/test_tetherctl.o: $(wildcard user/tetherctl/*.c user/tetherctl/*.h)

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
SANITIZE_E2E    := $(filter-out tests/e2e/test_valgrind.sh,$(E2E_TESTS)) tests/e2e/test_private_checkout.sh
SANITIZE_TESTS  := $(patsubst $(BUILD)/%,$(SANITIZE_BUILD)/%,$(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS))

.PHONY: userspace test-sanitize
userspace: $(PROGRAMS) $(UNIT_TESTS) $(BPF_TESTS) $(STORE_TESTS) $(TOOLS) $(TOOL_BPF_OBJS)

test-sanitize: deps
	@CFLAGS="$(SANITIZE_CFLAGS)" $(MAKE) --no-print-directory -j$(shell nproc) \
		BUILD=$(SANITIZE_BUILD) CC=$(SANITIZE_CC) ARCH_INCLUDE=$(ARCH_INCLUDE) userspace
	@BUILD=$(SANITIZE_BUILD) tools/run-tests.sh --sanitize --jobs 3 $(SANITIZE_E2E) \
		$(SANITIZE_TESTS)

# Makefile - convenience wrapper around CMake/CTest for MAPI.
#
#   make                  check the build dependencies, configure and build in ./build
#   make test             install missing Debian packages (as root), build, run ctest
#   make asan, test-asan  the same in ./build-asan with AddressSanitizer + UBSan, run ctest
#   make demo             set up (as root: install build packages), build, start a private
#                         mapid and run the tutorial's examples on the bundled capture
#                         (tests/data/weibo.pcap), stop mapid
#   make bench            build, run the benchmarks (bench/run: MAPI beside tcpdump, tracestats,
#                         ngrep), print the markdown table and write it to BENCHMARKS.md
#   make fuzz             build the libFuzzer targets of tests/fuzz/ with clang in ./build-fuzz
#                         and run each for FUZZ_SECONDS (default 60) from its seed corpus;
#                         fails on a crash or a broken property (tests/fuzz/fuzz.sh)
#   make tsan, test-tsan  build in ./build-tsan with ThreadSanitizer and run the threaded tests
#                         (TSAN_TESTS: libmapi's unit tests, mapicommd, remote_loopback, dimapi,
#                         multi_client, to_buffer); fails on any ThreadSanitizer report
#                         (scripts/tsan.sh; third-party suppressions in scripts/tsan.supp)
#   make check-builds     -Werror builds of every MATRIX_CC x MATRIX_TYPES (gcc, clang x Debug,
#                         Release, RelWithDebInfo, MinSizeRel, default) in ./build-matrix
#   make install PREFIX=/usr/local
#   make format, format-check   clang-format over all .c/.h files
#   make clean
# Every target here configures with -DMAPI_WERROR=ON (warnings are errors: the developer and
# CI setting); `make MAPI_WERROR=OFF ...` or plain cmake (default OFF) builds without it.
# The helper logic lives in scripts/ (deps.sh, demo.sh, tsan.sh).

BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
MAPI_WERROR ?= ON
# The threaded tests run under ThreadSanitizer: libmapi's unit tests (the local back end
# against a fake mapid thread), mapicommd, libmapi's remote back end over loopback and with
# several sensors (dimapi), and mapid's capture threads with several clients and rings.
TSAN_TESTS ?= ^(libmapi_wire|mapicommd|remote_loopback|dimapi|multi_client|to_buffer)$$
MATRIX_CC ?= gcc clang
MATRIX_TYPES ?= Debug Release RelWithDebInfo MinSizeRel default
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Tests run 4 at a time: most of them wait on mapid and on their oracles rather than compute;
# the timing-sensitive ones (live capture, DiMAPI) are marked RUN_SERIAL.
TEST_JOBS ?= 4
CTEST_ARGS ?= --output-on-failure --parallel $(TEST_JOBS)
CMAKE_ARGS ?=
CMAKE_FLAGS = -DMAPI_WERROR=$(MAPI_WERROR) $(CMAKE_ARGS)
CLANG_FORMAT ?= clang-format
SOURCES = $(shell find . \( -path ./.git -o -path './build*' -o -path './$(BUILD)' -o -path './$(ASAN_BUILD)' \
	-o -path './$(TSAN_BUILD)' -o -path './$(FUZZ_BUILD)' \) \
	-prune -o \( -name '*.c' -o -name '*.h' \) -print | sort)

.PHONY: all deps setup configure build test asan test-asan tsan test-tsan fuzz check-builds demo install \
	format format-check clean

all: deps build

deps:
	@scripts/deps.sh build

# Like deps, but as root on Debian installs what is missing.
setup:
	@scripts/deps.sh --install build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test:
	@scripts/deps.sh --install test
	$(MAKE) build
	cd $(BUILD) && ctest $(CTEST_ARGS)

asan test-asan:
	@scripts/deps.sh --install test
	cmake -S . -B $(ASAN_BUILD) -DMAPI_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS)

tsan test-tsan:
	@scripts/deps.sh --install test
	cmake -S . -B $(TSAN_BUILD) -DMAPI_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	scripts/tsan.sh $(TSAN_BUILD) '$(TSAN_TESTS)'

fuzz:
	@scripts/deps.sh --install test
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz.sh -o $(FUZZ_BUILD)

check-builds:
	@set -e; for cc in $(MATRIX_CC); do for t in $(MATRIX_TYPES); do \
	    d=build-matrix/$$cc-$$t; bt=; [ $$t = default ] || bt=-DCMAKE_BUILD_TYPE=$$t; \
	    echo "== $$cc $$t ($$d)"; \
	    cmake -S . -B $$d -DCMAKE_C_COMPILER=$$cc -DMAPI_WERROR=ON $$bt $(CMAKE_ARGS) >/dev/null; \
	    cmake --build $$d -j$(JOBS); \
	done; done

demo: setup
	$(MAKE) build
	@scripts/demo.sh $(BUILD) .

.PHONY: bench
bench: build
	bench/run $(BUILD)

install: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	cmake --install $(BUILD)

format:
	$(CLANG_FORMAT) -i $(SOURCES)

format-check:
	@scripts/deps.sh format
	$(CLANG_FORMAT) --dry-run --Werror $(SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) build-matrix

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
#   make install PREFIX=/usr/local
#   make format, format-check   clang-format over all .c/.h files
#   make clean
# The helper logic lives in scripts/ (deps.sh, demo.sh).

BUILD ?= build
ASAN_BUILD ?= build-asan
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Tests run 4 at a time: most of them wait on mapid and on their oracles rather than compute;
# the timing-sensitive ones (live capture, DiMAPI) are marked RUN_SERIAL.
TEST_JOBS ?= 4
CTEST_ARGS ?= --output-on-failure --parallel $(TEST_JOBS)
CMAKE_ARGS ?=
CLANG_FORMAT ?= clang-format
SOURCES = $(shell find . \( -path ./.git -o -path './build*' -o -path './$(BUILD)' -o -path './$(ASAN_BUILD)' \) \
	-prune -o \( -name '*.c' -o -name '*.h' \) -print | sort)

.PHONY: all deps setup configure build test asan test-asan demo install format format-check clean

all: deps build

deps:
	@scripts/deps.sh build

# Like deps, but as root on Debian installs what is missing.
setup:
	@scripts/deps.sh --install build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test:
	@scripts/deps.sh --install test
	$(MAKE) build
	cd $(BUILD) && ctest $(CTEST_ARGS)

asan test-asan:
	@scripts/deps.sh --install test
	cmake -S . -B $(ASAN_BUILD) -DMAPI_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS)

demo: setup
	$(MAKE) build
	@scripts/demo.sh $(BUILD) .

.PHONY: bench
bench: build
	bench/run $(BUILD)

install: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)
	cmake --install $(BUILD)

format:
	$(CLANG_FORMAT) -i $(SOURCES)

format-check:
	@scripts/deps.sh format
	$(CLANG_FORMAT) --dry-run --Werror $(SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Thin wrapper over CMake. `make run` builds and runs; `make test` runs every
# test twice: a -Werror build, then the same suite under ASan+UBSan.
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-san run test test-fast test-san bench clean format

all: build

deps:
	@sh scripts/setup.sh

build: deps
	@cmake -S . -B $(BUILD) -DATREST_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-san: deps
	@cmake -S . -B $(BUILD_SAN) -DATREST_WERROR=ON -DATREST_SANITIZE=ON \
	       -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

# Until the server exists this runs the storage demo: the benchmark on the
# encrypted store next to plain SQLite and SQLCipher.
run: build
	@cmake --build $(BUILD) --target storage-bench-plain -j $(JOBS)
	./$(BUILD)/storage-bench

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-san: build-san
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

test: test-fast test-san

bench: build
	@cmake --build $(BUILD) --target storage-bench-plain -j $(JOBS)
	./$(BUILD)/storage-bench

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

# Thin wrapper over CMake. `make run` builds and runs; `make test` runs every
# test twice: a -Werror build, then the same suite under ASan+UBSan.
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-san run test test-fast test-san bench bench-storage bench-server bench-query bench-keys bench-backup clean format

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

# Start atrestd on https://127.0.0.1:8081 with ./data, ./keys and the
# embedded key provider (the emulator's well-known key unless
# ATREST_MASTER_KEY or --master-key says otherwise).
run: build
	./$(BUILD)/atrestd --data-dir ./data --key-dir ./keys --listen 127.0.0.1:8081

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-san: build-san
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

test: test-fast test-san

bench: bench-storage bench-server

# Key rotation and the customer-key layer (docs/bench-keys.md).
bench-keys: build
	./$(BUILD)/keys-bench

bench-storage: build
	@cmake --build $(BUILD) --target storage-bench-plain -j $(JOBS)
	./$(BUILD)/storage-bench

bench-server: build
	@cmake --build $(BUILD) --target server-bench -j $(JOBS)
	./$(BUILD)/server-bench

# Backup, verify, restore and the foreground cost (docs/backup.md).
bench-backup: build
	./$(BUILD)/backup-bench

bench-query: build
	@cmake --build $(BUILD) --target query-bench -j $(JOBS)
	./$(BUILD)/query-bench

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

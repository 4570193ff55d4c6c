# bulwark — the two commands people run: `make demo` and `make test`.
# Each installs the Debian packages it needs (via `make deps`) and then builds.

BUILD      ?= build
ASAN_BUILD ?= build-asan
REL_BUILD  ?= build-release
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

# Debian packages the build, the tests, the benchmarks and the examples need:
# the first column of tools/deps.txt, which also says what each must provide.
DEB_PACKAGES := $(shell awk '!/^\#/ && NF >= 3 { print $$1 }' tools/deps.txt | sort -u)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps check build build-asan build-release build-fuzz fuzz fuzz-smoke fuzz-seeds test demo sim-sweep bench \
        crash-test bench-storage format chaos-runs format-check clean

all: build

# Installs the missing packages, then checks every program, file and module
# the table names, and fails naming the package of anything still missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing \
	    || { echo "make deps: apt-get could not install:$$missing"; exit 1; }; \
	fi
	@/usr/bin/python3 tools/deps.py check

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBW_SANITIZE=ON $(CMAKE_FLAGS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The release configuration: -O3, planted bugs compiled out.
$(REL_BUILD)/build.ninja:
	cmake -S . -B $(REL_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DBW_PLANTED_BUGS=OFF $(CMAKE_FLAGS)

build-release: deps $(REL_BUILD)/build.ninja
	cmake --build $(REL_BUILD) -j $(JOBS)

# The libFuzzer targets of fuzz/ (clang, ASan + UBSan, -O1): only those
# and the sources they reach, so that `make test` can afford to build them.
$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
	  -DBW_FUZZ=ON $(CMAKE_FLAGS)

build-fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Each fuzz target briefly on its corpus (fuzz/corpus/<target>); any crash
# fails. Part of `make test`.
FUZZ_SMOKE_TIME ?= 10
fuzz-smoke: build-fuzz
	fuzz/run.sh smoke $(FUZZ_BUILD) $(FUZZ_SMOKE_TIME)

# Each fuzz target for FUZZ_TIME seconds (FUZZ_TARGET=name for one); new
# inputs grow in $(FUZZ_BUILD)/fuzz-work, crashes land in
# $(FUZZ_BUILD)/fuzz-artifacts. docs/fuzzing.md.
FUZZ_TIME ?= 300
FUZZ_TARGET ?=
fuzz: build-fuzz
	fuzz/run.sh long $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGET)

# Rewrites the seed inputs in fuzz/corpus/ from the targets' Seeds().
fuzz-seeds: build-fuzz
	fuzz/run.sh seeds $(FUZZ_BUILD)

# Every test: unit, scenario, property and simulator tests; then the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, with 3 in 100 of
# the simulator seeds and without the planted-bug hunts (they prove the
# checkers' power, which the first run already shows, and are slow there).
# The release build (no planted bugs) runs the suite with a tenth of the seeds,
# less the longest real-process runs (the 90 s chaos run, the 10,000-write
# exactly-once run, the client, TLS and abuse tests), which the first two runs
# cover: it keeps make test under 30 minutes on two cores.
# Before them, fuzz-smoke: every fuzz target for FUZZ_SMOKE_TIME seconds.
REL_SKIP := ^ChaosSmokeTest$$|^ExactlyOnceTest$$|^ClientTest$$|^TlsTest$$|^AbuseTest$$
# Each pass runs even when one before it failed; the failed ones are listed at
# the end (tools/make-test.sh) and the run fails.
test: deps
	@MAKE="$(MAKE)" BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) REL_BUILD=$(REL_BUILD) JOBS=$(JOBS) \
	  REL_SKIP='$(REL_SKIP)' tools/make-test.sh


# The inner loop: the unit and simulator tests (ctest labels unit and sim) of
# the normal build, with CHECK_SEEDS_SCALE of the simulator seeds; under two
# minutes on two cores once built. `make test` is the whole run.
CHECK_SEEDS_SCALE ?= 0.25
check: build
	cd $(BUILD) && BW_SIM_SEEDS_SCALE=$(CHECK_SEEDS_SCALE) ctest -L '^(unit|sim)$$' -j $(JOBS) \
	  --output-on-failure

# The main job: a local three-member cluster as three processes, writes,
# the leader killed, failover, every acknowledged write read back; then the
# payment example on a fresh cluster - 3,000 payments through the C++ SDK
# while the leader is killed, the gateway fails and loses replies and the
# network drops packets - with idempotency keys and without, side by side.
CHARGES ?= 3000
demo: build
	$(BUILD)/bin/bulwark demo
	/usr/bin/python3 examples/payment/run.py --bin $(BUILD)/bin --charges $(CHARGES) --kill-every 3

# Long chaos runs (root): RUNS runs of CHAOS_TIME seconds, alternating 3 and 5
# members, every nemesis and workload, a seed per run; reports under
# chaos-runs/run-<seed>/ (seeds SEED_BASE+1 ...). Stops at the first run that
# does not pass.
RUNS ?= 20
CHAOS_TIME ?= 300
SEED_BASE ?= 0
CHAOS_NEMESES ?= partition,kill,pause,loss,clock,member,power,disk
chaos-runs: build
	@for i in $$(seq 1 $(RUNS)); do \
	  n=$$([ $$((i % 2)) = 0 ] && echo 5 || echo 3); seed=$$(( $(SEED_BASE) + i )); \
	  echo "run $$i: $$n nodes, $(CHAOS_TIME) s, seed $$seed"; \
	  $(SUDO) $(BUILD)/bin/bulwark chaos --nodes $$n --time-limit $(CHAOS_TIME) --seed $$seed \
	    --nemesis $(CHAOS_NEMESES) --out chaos-runs/run-$$seed --no-progress \
	    | grep -E '^(verdict|linearizability|watch|exactly-once|txn|lock)' || exit 1; \
	  grep -q PASS chaos-runs/run-$$seed/report.html || exit 1; \
	done

# Long sweeps stay out of `make test`.
sim-sweep: build
	$(BUILD)/bin/bulwark sim --seeds 20000

bench: build
	$(BUILD)/bin/raft_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

# The crash test at length: SIGKILL cycles of real members under load.
CYCLES ?= 200
crash-test: build-release
	/usr/bin/python3 tests/member_crash_test.py --bulwark $(REL_BUILD)/bin/bulwark --cycles $(CYCLES)

# The WAL against the disk's own synced bandwidth and sync latency (dd), the
# restart time of a member with 1,000,000 entries, and the Raft log's memory
# with and without its cache bound.
bench-storage: build-release
	bench/wal_vs_disk.sh $(REL_BUILD)/bin/wal_bench
	bench/restart_time.sh $(REL_BUILD)/bin/bulwark
	bench/log_memory.sh $(REL_BUILD)/bin/bulwark

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

format-check:
	@out=$$(clang-format --dry-run $$(git ls-files '*.cc' '*.h') 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; echo "clang-format: run 'make format'"; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(REL_BUILD) $(FUZZ_BUILD)

# stride - convolutional neural networks in C.
#   make            library (static + shared) and the stride CLI
#   make test       all tests (no PyTorch needed: fixtures are committed)
#   make test-zoo   torchvision parity at 224x224 (needs python3-torch, python3-torchvision)
#   make bench      benchmark suite: stride vs PyTorch and ONNX Runtime (docs/bench.md; sh scripts/setup.sh --bench)
#   make fixtures   regenerate the PyTorch fixtures (needs python3-torch)
#   make install    PREFIX=/usr/local
#   make debug      -O0 with sanitizers
# Switches: OPENMP=0 (serial build), CAIRO=0 (CLI without plots), ZLIB=0 PNG=0 JPEG=0 (CLI without
#           .gz, PNG or JPEG data files), ARCH= (default -march=native)

CC      ?= cc
PREFIX  ?= /usr/local
OPENMP  ?= 1
CAIRO   ?= $(shell pkg-config --exists cairo 2>/dev/null && echo 1 || echo 0)
ARCH    ?= -march=native
PYTHON  ?= /usr/bin/python3  # Debian's python3-torch lives here, whatever python3 is on PATH
OPT     ?= -O3
CFLAGS  ?= $(OPT) $(ARCH) -g
SAN     ?=
CFLAGS  += $(SAN) -std=c11 -ffp-contract=fast -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fPIC -Iinclude -Isrc -MMD -MP
LDLIBS  += -lm
LDLIBS  += -pthread  # the batch loader's prefetch thread

ifeq ($(OPENMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS  += -Wno-unknown-pragmas
endif

CLI_CFLAGS :=
CLI_LIBS   :=
# data files: gzip (zlib), PNG (libpng), JPEG (libjpeg); each can be switched off (=0)
ZLIB    ?= $(shell pkg-config --exists zlib 2>/dev/null && echo 1 || echo 0)
PNG     ?= $(shell pkg-config --exists libpng 2>/dev/null && echo 1 || echo 0)
JPEG    ?= $(shell pkg-config --exists libjpeg 2>/dev/null && echo 1 || echo 0)
ifeq ($(ZLIB),1)
CLI_CFLAGS += -DST_HAVE_ZLIB $(shell pkg-config --cflags zlib)
CLI_LIBS   += $(shell pkg-config --libs zlib)
endif
ifeq ($(PNG),1)
CLI_CFLAGS += -DST_HAVE_PNG $(shell pkg-config --cflags libpng)
CLI_LIBS   += $(shell pkg-config --libs libpng)
endif
ifeq ($(JPEG),1)
CLI_CFLAGS += -DST_HAVE_JPEG $(shell pkg-config --cflags libjpeg)
CLI_LIBS   += $(shell pkg-config --libs libjpeg)
endif
ifeq ($(CAIRO),1)
CLI_CFLAGS += -DST_HAVE_CAIRO $(shell pkg-config --cflags cairo)
CLI_LIBS   += $(shell pkg-config --libs cairo)
endif

LIB_SRC  := $(wildcard src/*.c)
LIB_OBJ  := $(LIB_SRC:src/%.c=build/src/%.o)
CLI_SRC  := $(wildcard tools/*.c)
CLI_OBJ  := $(CLI_SRC:tools/%.c=build/tools/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=build/tests/%)

EX_SRC   := $(wildcard examples/*.c)
EX_BIN   := $(EX_SRC:examples/%.c=build/examples/%)

all: build/libstride.a build/libstride.so stride $(EX_BIN)

build/src/%.o: src/%.c | build/src
	$(CC) $(CFLAGS) -c $< -o $@
# the MNIST-1D generator must round exactly as NumPy does: no fused multiply-adds
build/src/mnist1d.o: CFLAGS += -ffp-contract=off

build/tools/%.o: tools/%.c | build/tools
	$(CC) $(CFLAGS) $(CLI_CFLAGS) -c $< -o $@
build/tests/%: tests/%.c build/libstride.a | build/tests
	$(CC) $(CFLAGS) $< -o $@ build/libstride.a $(LDFLAGS) $(LDLIBS)

# test_dataset also reads files through the CLI's data_files.c (gzip, PNG, JPEG)
build/tests/test_dataset: tests/test_dataset.c build/tools/data_files.o build/libstride.a | build/tests
	$(CC) $(CFLAGS) $(CLI_CFLAGS) $< -o $@ build/tools/data_files.o build/libstride.a $(LDFLAGS) $(CLI_LIBS) $(LDLIBS)

# test_evaluate checks the CLI's shared evaluation and data specs (evaluate.c, task_data.c)
build/tests/test_evaluate: tests/test_evaluate.c build/tools/evaluate.o build/tools/task_data.o build/tools/data_files.o build/tools/cli.o build/libstride.a | build/tests
	$(CC) $(CFLAGS) $(CLI_CFLAGS) $< -o $@ build/tools/evaluate.o build/tools/task_data.o build/tools/data_files.o build/tools/cli.o build/libstride.a $(LDFLAGS) $(CLI_LIBS) $(LDLIBS)

build/tests/compare: tests/compare.c build/libstride.a | build/tests
	$(CC) $(CFLAGS) $< -o $@ build/libstride.a $(LDFLAGS) $(LDLIBS)

build/examples/%: examples/%.c build/libstride.a | build/examples
	$(CC) $(CFLAGS) $< -o $@ build/libstride.a $(LDFLAGS) $(LDLIBS)

build/src build/tools build/tests build/examples build/bench:
	mkdir -p $@

build/libstride.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
build/libstride.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)
stride: $(CLI_OBJ) build/libstride.a
	$(CC) -o $@ $(CLI_OBJ) build/libstride.a $(LDFLAGS) $(CLI_LIBS) $(LDLIBS)

test: all $(TEST_BIN) build/tests/compare
	@sh tests/run.sh $(TEST_BIN)

# PyTorch parity of the torchvision zoo at 224x224 (needs python3-torch, python3-torchvision)
test-zoo: all build/tests/compare
	@sh tests/zoo.sh

# the C programs of the benchmark suite (bench/*.c; bench/timing.h is their timed loop)
build/bench/%: bench/%.c bench/timing.h bench/model.h build/libstride.a | build/bench
	$(CC) $(CFLAGS) $< -o $@ build/libstride.a $(LDFLAGS) $(LDLIBS)

# the suite: stride, PyTorch and ONNX Runtime side by side (docs/bench.md); BENCH="--only resnet"
# picks workloads, BENCH="--quick" makes a short run. bench/run.sh and bench/train.sh are
# the older single-workload benchmarks (the book's full MNIST-1D run, a Fashion-MNIST epoch).
BENCH ?=
# the per-layer thread profile times every parallel region (bench/scale_profile.c)
build/bench/scale_profile: LDFLAGS += -Wl,--wrap=GOMP_parallel,--wrap=GOMP_loop_nonmonotonic_dynamic_start,--wrap=GOMP_loop_nonmonotonic_dynamic_next
BENCH_BIN := build/bench/peak build/bench/corelat build/bench/train_step build/bench/infer_bench build/bench/layers build/bench/infer
bench: all $(BENCH_BIN)
	$(PYTHON) bench/suite.py $(BENCH)

fixtures:
	$(PYTHON) scripts/gen_fixtures.py tests/fixtures
	$(PYTHON) scripts/gen_convt_fixtures.py tests/fixtures/conv_transpose.safetensors
	$(PYTHON) scripts/gen_pool_fixtures.py tests/fixtures
	$(PYTHON) scripts/gen_bn_fixtures.py tests/fixtures
	$(PYTHON) scripts/gen_resample_fixtures.py tests/fixtures
	$(PYTHON) scripts/gen_model_fixtures.py tests/fixtures/models
	$(PYTHON) scripts/gen_hourglass_fixtures.py tests/fixtures/models
	$(PYTHON) scripts/gen_lenet_fixtures.py tests/fixtures/models
	$(PYTHON) scripts/gen_optim_fixtures.py tests/fixtures/optim
	$(PYTHON) scripts/gen_metrics_fixtures.py tests/fixtures/metrics

# (SAN, not CFLAGS: a CFLAGS given on the command line would replace the include paths)
debug:
	$(MAKE) clean
	$(MAKE) OPT="-O0 -g" ARCH= SAN="-fsanitize=address,undefined" LDFLAGS="-fsanitize=address,undefined" OPENMP=0 test

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 stride $(DESTDIR)$(PREFIX)/bin/
	install -m 644 build/libstride.a build/libstride.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/stride.h $(DESTDIR)$(PREFIX)/include/

clean:
	rm -rf build stride

.PHONY: all test test-zoo bench fixtures debug install clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# timings of the small and special workloads (bench/small_kernels.c, bench/torch_small.py)
build/bench/small_kernels: bench/small_kernels.c build/libstride.a | build/bench
	$(CC) $(CFLAGS) $< -o $@ build/libstride.a $(LDFLAGS) $(LDLIBS)

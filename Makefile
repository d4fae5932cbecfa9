# capatlas — build, run, test.
#
#   make run     install what is missing, build, start nginx + capatlasd on :9877
#   make test    install what is missing, build (normal and ASan/UBSan), run every test
#   make lint    clang-format check and cppcheck
#   make SAN=1   build with AddressSanitizer + UBSan into build/san/
#   make fuzz    libFuzzer target over the capture decoder, FUZZ_TIME seconds (600)
#   make bench   every tests/bench/*.sh (long benchmarks)
#
# Everything builds out of tree into build/ (build/san/ with SAN=1).

CC      ?= cc
SAN     ?= 0
PKGS    := libndpi libpcap libcurl openssl lmdb libmaxminddb jansson zlib libarchive

ifeq ($(SAN),1)
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT     := -O1
else
BUILD   := build
SANFLAGS :=
OPT     := -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null | sed 's,-I[^ ]*dbus[^ ]*,,g')
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wformat=2 -Wformat-truncation=0 -fstack-protector-strong -Icore -Ifcgi $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
LIBS    := $(PKG_LIBS) -lfcgi -lpthread

CORE_SRC := $(wildcard core/*.c)
FCGI_SRC := $(wildcard fcgi/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
FCGI_OBJ := $(FCGI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Test tools (generators for benchmarks): tests/tools/NAME.c -> $(BUILD)/tests/NAME
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

.PHONY: all build deps deps-test deps-bench run test test-only lint format frontend clean fuzz fuzz-build bench

all: build

build: $(BUILD)/capatlasd $(UNIT_BIN) $(TOOL_BIN)

# Keep every object (unit.o would otherwise be deleted as an intermediate).
.SECONDARY:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libcapatlas.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/capatlasd: $(FCGI_OBJ) $(BUILD)/libcapatlas.a
	$(CC) $(LDFLAGS) -o $@ $(FCGI_OBJ) $(BUILD)/libcapatlas.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/unit.o $(BUILD)/libcapatlas.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/tests/unit/unit.o $(BUILD)/libcapatlas.a $(LIBS)

$(TOOL_BIN): $(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(BUILD)/libcapatlas.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcapatlas.a $(LIBS) -lm

-include $(CORE_OBJ:.o=.d) $(FCGI_OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)

# Fuzz target (clang, libFuzzer + ASan + UBSan): the capture reader, decoder
# and flow engine without the store.
FUZZ_SRC  := core/bigmem.c core/ca_error.c core/capture.c core/decode.c core/dpi.c core/engine.c \
             core/flowtab.c core/geo.c core/ipfrag.c core/pdns.c core/flow_codec.c core/flow_json.c \
             tests/fuzz/fuzz_capture.c
FUZZ_TIME ?= 600

build/fuzz/fuzz_capture: $(FUZZ_SRC) $(wildcard core/*.h)
	@mkdir -p $(dir $@)
	clang -O1 -g -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Icore $(PKG_CFLAGS) -o $@ $(FUZZ_SRC) $(PKG_LIBS) -lpthread

fuzz-build: build/fuzz/fuzz_capture

fuzz: build/fuzz/fuzz_capture
	sh tests/fuzz/run.sh $(FUZZ_TIME)

bench: deps-bench
	$(MAKE) build frontend
	@rc=0; for b in tests/bench/*.sh; do echo "== $$b"; sh "$$b" || rc=1; done; exit $$rc

# Debian packages and npm modules the project needs; a no-op when present.
deps:
	@sh docker/install-deps.sh

deps-test:
	@sh docker/install-deps.sh test

deps-bench:
	@sh docker/install-deps.sh bench

frontend: frontend/dist/index.html

frontend/dist/index.html: $(wildcard frontend/src/* frontend/src/*/*) frontend/index.html frontend/package.json
	cd frontend && npm run build --silent

run: deps
	$(MAKE) build frontend
	bash docker/start.sh

test: deps-test
	$(MAKE) build frontend
	$(MAKE) SAN=1 build
	$(MAKE) fuzz-build
	sh tests/run.sh

# Tests only, on what is already built.
test-only:
	sh tests/run.sh

lint:
	clang-format --dry-run -Werror core/*.[ch] fcgi/*.[ch] tests/unit/*.[ch] tests/tools/*.c tests/fuzz/*.c
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 \
	    --suppress=missingIncludeSystem -Icore -Ifcgi core fcgi

format:
	clang-format -i core/*.[ch] fcgi/*.[ch] tests/unit/*.[ch] tests/tools/*.c tests/fuzz/*.c

clean:
	rm -rf build frontend/dist

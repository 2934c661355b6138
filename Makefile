# idaw: `make demo` sets everything up and renders the demo; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_SOURCES := $(shell find plugin_cpp -name '*.h' -o -name '*.cpp' -o -name 'CMakeLists.txt' -o -name '*.stubpatterns') CMakeLists.txt pyproject.toml
PY_PACKAGES := idaw realtime sidecar export tests benchmarks
CPP_FILES = $(shell git ls-files 'plugin_cpp/*.h' 'plugin_cpp/*.cpp' 'tests/*.cpp')

.PHONY: setup demo test test-fast test-cpp test-plugin test-python lint bench tempocnn-env clean

setup: $(VENV)/.installed

$(VENV)/.system-deps: scripts/install_system_deps.sh
	scripts/install_system_deps.sh
	@mkdir -p $(VENV) && touch $@

$(VENV)/.test-deps: scripts/install_system_deps.sh
	scripts/install_system_deps.sh --test
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: $(VENV)/.system-deps $(CORE_SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.0"
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[test]"
	touch $@

demo: setup
	$(BIN)/idaw demo --out out/demo

test: $(VENV)/.test-deps setup test-cpp test-plugin test-python

# The quick loop: the normal C++ build's tests and the Python tests that need neither JACK nor the plugin
# (no sanitizer builds; plugin tests run when the plugin was built before). `make test` is what CI runs.
test-fast: setup
	plugin_cpp/tests/run_cpp_tests.sh normal
	$(BIN)/python -m pytest tests -m "not jack" -q

test-cpp: $(VENV)/.test-deps
	plugin_cpp/tests/run_cpp_tests.sh

test-plugin: $(VENV)/.test-deps setup
	plugin_cpp/plugin/build_and_test.sh --build-only

test-python: $(VENV)/.test-deps setup
	$(BIN)/python -m pytest tests --durations=25

lint: setup
	$(BIN)/ruff check $(PY_PACKAGES)
	$(BIN)/ruff format --check $(PY_PACKAGES)
	$(BIN)/mypy
	$(BIN)/lint-imports
	@echo "$(BIN)/clang-format --dry-run --Werror ($(words $(CPP_FILES)) C++ files)"
	@$(BIN)/clang-format --dry-run --Werror $(CPP_FILES)

bench: setup
	$(BIN)/python -m benchmarks.run_all

# tempocnn, the tempo baseline of benchmarks/bench_listen.py, in its own environment: it needs TensorFlow, whose
# wheels want an older numpy than the project's (its weights ship inside its wheel).
tempocnn-env: .venv-tempocnn/bin/tempo
.venv-tempocnn/bin/tempo:
	$(PYTHON) -m venv .venv-tempocnn
	.venv-tempocnn/bin/pip install --quiet tempocnn==0.0.8

clean:
	rm -rf build out $(VENV)

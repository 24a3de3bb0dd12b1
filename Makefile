# The two README commands: `make demo` and `make test`. Both install what is
# missing first (Debian packages, cargo-pgrx 0.18.1, pgrx init).
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: setup install demo demo-stop test bench

setup:
	@scripts/setup.sh

install: setup
	cargo pgrx install --pg-config /usr/lib/postgresql/15/bin/pg_config --release
	scripts/install-sql /usr/lib/postgresql/15/bin/pg_config

demo: install
	@scripts/demo.sh

demo-stop:
	@scripts/pgcluster stop demo

test: setup
	@scripts/test.sh

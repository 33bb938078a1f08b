# Thin wrappers over scripts/bootstrap.sh, which also works where make is not installed.
.PHONY: run test setup assets screenshots bench

run:
	bash scripts/bootstrap.sh run

test:
	bash scripts/bootstrap.sh test

setup:
	bash scripts/bootstrap.sh setup

# The pretrained default model shipped in assets/ (reproducible: fixed seed, one thread;
# mlp 64-256-128-2 on digits, 150 epochs; see assets/README.md).
assets: setup
	.venv/bin/python scripts/make_assets.py --out assets/digits-mlp-2d

# Thin wrappers over scripts/bootstrap.sh, which also works where make is not installed.
.PHONY: run test setup assets screenshots bench

run:
	bash scripts/bootstrap.sh run

test:
	bash scripts/bootstrap.sh test

setup:
	bash scripts/bootstrap.sh setup

# The pretrained default model shipped in assets/ (reproducible: fixed seed, one thread).
assets: setup
	.venv/bin/python -m vae_core train --dataset digits --model mlp --latent-dim 2 --hidden 256 128 \
	    --epochs 150 --batch-size 64 --lr 2e-3 --seed 0 --threads 1 --quiet --out assets/digits-mlp-2d

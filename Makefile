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

# Screenshots of the running app in docs/screenshots/ (a real X server: Xvfb, installed when
# missing on Debian/Ubuntu as root). Run with QT_DEBUG_PLUGINS=1 to see which library Qt's
# xcb plugin really lacks (its libxcb-cursor0 hint can be misleading).
XVFB_PACKAGES = xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 \
	libfontconfig1 libdbus-1-3 fonts-dejavu-core
screenshots: setup
	@command -v xvfb-run >/dev/null 2>&1 || { \
	    echo "Installing Xvfb and the X11 libraries Qt needs..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(XVFB_PACKAGES); }
	QT_QPA_PLATFORM=xcb QT_XCB_GL_INTEGRATION=none xvfb-run -a -s "-screen 0 1920x1200x24" \
	    .venv/bin/python scripts/screenshots.py

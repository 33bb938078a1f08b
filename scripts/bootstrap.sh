#!/usr/bin/env bash
# Set up a local .venv (and, on Debian/Ubuntu as root, the system libraries Qt needs),
# then run the app or the test suite. Usage: bash scripts/bootstrap.sh run|test|setup [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/.venv"
STAMP="$VENV/.installed"
action="${1:-run}"; shift || true

pick_python() {
    for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$py" ] || continue
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "Latent Explorer needs Python 3.11 or newer (python3.11+ was not found on PATH)." >&2
    exit 1
}

apt_install_missing() {
    # Only on Debian/Ubuntu as root, and only for packages that are really missing.
    [ -f /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing system packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Qt's offscreen platform (tests) needs these; a real window also needs the xcb set.
QT_LIBS=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3)
XCB_LIBS=(libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0
          libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1)

setup() {
    local py; py=$(pick_python)
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install_missing python3-venv
            "$py" -m venv "$VENV"
        fi
    fi
    if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
        echo "Installing Python packages into .venv (first time: about a minute)..." >&2
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[dev]"
        touch "$STAMP"
    fi
    mkdir -p "$ROOT/.cache/numba"
    # umap-learn compiles with numba; a persistent cache makes its import take <1 s after the first.
    export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.cache/numba}"
}

precompile() {
    # Once per install: the first UMAP on the map would otherwise spend ~25 s compiling.
    local marker="$NUMBA_CACHE_DIR/.precompiled"
    if [ ! -f "$marker" ] || [ "$STAMP" -nt "$marker" ]; then
        if OMP_NUM_THREADS=1 "$VENV/bin/python" -m explorer --precompile; then
            touch "$marker"
        fi
    fi
}

case "$action" in
    setup)
        apt_install_missing "${QT_LIBS[@]}"
        setup
        precompile ;;
    run)
        apt_install_missing "${QT_LIBS[@]}" "${XCB_LIBS[@]}"
        setup
        precompile
        exec "$VENV/bin/python" -m explorer "$@" ;;
    test)
        apt_install_missing "${QT_LIBS[@]}"
        setup
        export QT_QPA_PLATFORM=offscreen
        set +e
        "$VENV/bin/python" -m pytest "$@"
        rc=$?
        set -e
        # pytest exits 5 when it collected no test (e.g. a -k filter matched nothing): not a failure.
        [ "$rc" -eq 5 ] && rc=0
        exit "$rc" ;;
    *)
        echo "usage: bash scripts/bootstrap.sh run|test|setup [ARGS...]" >&2; exit 2 ;;
esac

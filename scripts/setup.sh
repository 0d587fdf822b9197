#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install the pinned requirements (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    # pyenv installs are not always on PATH under their short names.
    for candidate in "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
    PY=$(find_python) || {
        echo "kbmanager needs Python 3.12 or newer (python3.12 / python3.13 on PATH, or set PYTHON=/path/to/python)." >&2
        exit 1
    }
    echo "creating .venv with $($PY --version)"
    rm -rf .venv
    "$PY" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi

# Reinstall only when the requirement files changed.
stamp=.venv/.requirements.sha
want=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing pinned requirements"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements/dev.txt
    # django-prometheus 2.5.0 declares Django < 6.1 but works with it (our tests cover
    # its middleware and metrics); installed without its dependency pins.
    .venv/bin/python -m pip install --quiet --no-deps -r requirements/no-deps.txt
    echo "$want" > "$stamp"
fi

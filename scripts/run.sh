#!/usr/bin/env bash
# Set up and run kbmanager on this machine: web server, all workers (with the
# scheduler and the reconciler) and, with DEMO=1, the offline demo.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/services.sh

# Settings come from the environment; .env (created on first run) keeps a
# generated SECRET_KEY so sessions survive restarts.
if [ ! -f .env ]; then
    echo "SECRET_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
    echo "wrote .env with a new SECRET_KEY (see .env.example for every setting)"
fi
set -a
# shellcheck disable=SC1091
. ./.env
set +a
export DJANGO_SETTINGS_MODULE=kbmanager.settings
PORT="${PORT:-8000}"
PY=.venv/bin/python

$PY manage.py create_database
$PY manage.py migrate --no-input -v0
$PY manage.py ensure_admin

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped"
}
trap cleanup INT TERM EXIT

if [ "${DEMO:-0}" = "1" ]; then
    # The demo site is served on loopback; allow the fetcher to reach it.
    DEMO_PORT="${DEMO_PORT:-8765}"
    export FETCH_ALLOWED_HOSTS="${FETCH_ALLOWED_HOSTS:+$FETCH_ALLOWED_HOSTS,}127.0.0.1:$DEMO_PORT"
fi

.venv/bin/gunicorn kbmanager.wsgi --bind "127.0.0.1:$PORT" --workers "${WEB_CONCURRENCY:-2}" --threads 4 \
    --access-logfile - --log-level warning &
pids+=($!)
$PY manage.py start_workers &
pids+=($!)

echo
echo "kbmanager is running:"
echo "  home page  http://127.0.0.1:$PORT/"
echo "  admin      http://127.0.0.1:$PORT/admin/   (tasks: /admin/tasks/task/, RQ: /admin/rq/)"
echo "  API docs   http://127.0.0.1:$PORT/api/docs/"
echo "  health     http://127.0.0.1:$PORT/api/monitoring/health"
echo "Press Ctrl-C to stop everything."

if [ "${DEMO:-0}" = "1" ]; then
    $PY manage.py demo --port "$DEMO_PORT" &
    pids+=($!)
fi

wait -n "${pids[@]}" || true

#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start a local one that is down.
set -uo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || python3 -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 1)' 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        echo "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
fi
if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
        for _ in $(seq 1 30); do redis_up && break; sleep 1; done
    fi
fi

missing=0
pg_up || { echo "PostgreSQL (15 or newer) is not reachable on 127.0.0.1:5432; install and start it, or set DATABASE_URL." >&2; missing=1; }
redis_up || { echo "Redis (6.2 or newer) is not reachable on 127.0.0.1:6379; install and start it, or set REDIS_URL." >&2; missing=1; }
exit $missing

#!/usr/bin/env bash
# Starts the machine's PostgreSQL, Redis and NATS when they are not answering
# (commands from ../shared/ENVIRONMENT.md). PostgreSQL and NATS are required by the tests
# (.ci/run sets PRONET_TEST_REQUIRE_SERVICES=1): this fails when either cannot be started.
set -u
missing=()

answering() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for() {
  local port=$1
  for _ in $(seq 1 30); do answering "$port" && return 0; sleep 1; done
  return 1
}

if answering 5432; then echo "postgresql: answering"; else
  echo "postgresql: starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for 5432 && echo "postgresql: up" || { echo "postgresql: NOT available"; missing+=(postgresql); }
fi
if answering 6379; then echo "redis: answering"; else
  echo "redis: starting"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for 6379 && echo "redis: up" || echo "redis: NOT available"
fi
if answering 4222; then echo "nats: answering"; else
  echo "nats: starting"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  wait_for 4222 && echo "nats: up" || { echo "nats: NOT available"; missing+=(nats); }
fi
[ -x /usr/sbin/nats-server ] || { echo "nats-server: NOT installed"; missing+=(nats-server); }
if [ ${#missing[@]} -gt 0 ]; then
  echo "required services missing: ${missing[*]}" >&2
  exit 1
fi
exit 0

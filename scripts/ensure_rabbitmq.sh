#!/usr/bin/env bash
# Make sure a RabbitMQ answers where CELERY_BROKER_URL points (default amqp://guest:guest@127.0.0.1:5672//),
# for the site and the library's tests on Celery (QUEUE_BACKEND=celery): nothing to do if its port
# answers; else, on this machine only, install Debian's rabbitmq-server when it is missing (needs
# root or sudo) and start it, then wait until it answers. Used by `QUEUE_BACKEND=celery make run`,
# `make test` and `.ci/run`; prints what it did and exits non-zero, saying why, if it could not.
# Debian's server lets the guest user in from loopback only: the default URL above.
set -euo pipefail

URL="${CELERY_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//}"
WAIT_SECONDS="${RABBITMQ_WAIT_SECONDS:-90}"

# amqp://user:password@host:port/vhost -> host and port (5672 unless given).
address="${URL#*://}"
address="${address##*@}"
address="${address%%/*}"
HOST="${address%%:*}"
PORT="5672"
if [ "$address" != "$HOST" ]; then
  PORT="${address##*:}"
fi
HOST="${HOST:-127.0.0.1}"

answers() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null
}

if answers; then
  echo "RabbitMQ is reachable at $HOST:$PORT"
  exit 0
fi
case "$HOST" in
  127.0.0.1 | localhost | ::1) ;;
  *)
    echo "RabbitMQ at $HOST:$PORT is not reachable, and it is not local, so it cannot be started here." >&2
    exit 1
    ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
if [ ! -x /usr/sbin/rabbitmq-server ]; then
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
    echo "RabbitMQ is missing and there is no root to install it (apt-get install rabbitmq-server)" >&2
    exit 1
  fi
  command -v apt-get >/dev/null || {
    echo "RabbitMQ is missing and this is no Debian-like system: install a RabbitMQ server or set CELERY_BROKER_URL" >&2
    exit 1
  }
  echo "Installing Debian's rabbitmq-server…"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi

# The package may have started it already; else its service, or the server itself, detached (a
# container without an init system). Another port than 5672 is a node of its own, named after it.
if ! answers; then
  echo "Starting RabbitMQ on port $PORT…"
  if [ "$PORT" = "5672" ] && command -v service >/dev/null && [ -e /etc/init.d/rabbitmq-server ]; then
    $SUDO service rabbitmq-server start >/dev/null 2>&1 || $SUDO /usr/sbin/rabbitmq-server -detached
  else
    # A config file of its own: a system rabbitmq.conf may pin the listener to 5672.
    config="${TMPDIR:-/tmp}/rabbitmq-$PORT.conf"
    printf 'listeners.tcp.default = 127.0.0.1:%s\n' "$PORT" >"$config"
    chmod 644 "$config"
    $SUDO env RABBITMQ_CONFIG_FILE="$config" RABBITMQ_NODE_PORT="$PORT" RABBITMQ_DIST_PORT="$((PORT + 20000))" \
      RABBITMQ_NODENAME="rabbit-$PORT@localhost" /usr/sbin/rabbitmq-server -detached
  fi
fi
for _ in $(seq "$WAIT_SECONDS"); do
  if answers; then
    echo "RabbitMQ answers at $HOST:$PORT"
    exit 0
  fi
  sleep 1
done
echo "RabbitMQ was started but does not answer at $HOST:$PORT after ${WAIT_SECONDS}s; see /var/log/rabbitmq/" >&2
exit 1

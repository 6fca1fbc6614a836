#!/usr/bin/env bash
# What tests/services.rs needs: PostgreSQL, MariaDB, Redis, RabbitMQ,
# Mosquitto and NATS with JetStream on their usual loopback ports, moto's
# S3 server and pika/boto3 for test setup. For each service whose port does
# not answer: install the Debian package if missing, start it, and wait for
# it (bounded) or fail loudly. Idempotent; runs as root on a fresh Debian.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
updated=""

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install() { # package, command it provides
    if ! command -v "$2" >/dev/null 2>&1 && [ ! -x "$2" ]; then
        if [ -z "$updated" ]; then
            apt-get -o DPkg::Lock::Timeout=600 update
            updated=1
        fi
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$1"
    fi
}

wait_for() { # name, port, seconds
    local deadline=$((SECONDS + $3))
    until answers "$2"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "services.sh: $1 does not answer on 127.0.0.1:$2 after $3 s" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "services.sh: $1 answers on 127.0.0.1:$2"
}

if ! answers 5432; then
    install postgresql pg_ctlcluster
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
wait_for PostgreSQL 5432 60

if ! answers 3306; then
    install mariadb-server /usr/sbin/mariadbd
    install mariadb-client-core mariadb
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    start-stop-daemon --start --oknodo --background --chuid mysql --exec /usr/sbin/mariadbd
fi
wait_for MariaDB 3306 60

if ! answers 6379; then
    install redis-server redis-server
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis 6379 60

if ! answers 5672; then
    install rabbitmq-server rabbitmq-server
    rabbitmq-server -detached
fi
wait_for RabbitMQ 5672 120
# The AMQP port opens before the broker takes logins: wait for it to be up.
deadline=$((SECONDS + 120))
until rabbitmqctl -q status >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "services.sh: RabbitMQ never became ready" >&2; exit 1; }
    sleep 0.5
done

if ! answers 1883; then
    install mosquitto mosquitto
    mkdir -p /run/mosquitto /var/lib/mosquitto /var/log/mosquitto
    chown mosquitto /run/mosquitto /var/lib/mosquitto /var/log/mosquitto 2>/dev/null || true
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
wait_for Mosquitto 1883 60

if ! answers 4222; then
    install nats-server /usr/sbin/nats-server
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for NATS 4222 60

# The throwaway instances the tests start need these tools too.
install mosquitto mosquitto_passwd
install postgresql-client psql
install redis-tools redis-cli

python3 -c 'import moto.server, boto3, pika' 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'moto[server]' boto3 pika
command -v moto_server >/dev/null 2>&1 || { echo "services.sh: moto_server is not on PATH" >&2; exit 1; }

#!/usr/bin/env bash
# A 3-node RabbitMQ cluster (Debian's rabbitmq-server, MQTT plugin, quorum queues) for devices and
# ingest, in its own directory, beside any system RabbitMQ. Prints the ingest worker's MQTT_URL
# (every node listed: clients fail over) and runs until Ctrl-C.
#   scripts/cluster.sh [DIR] [--devices id1,id2,...] [--size 3]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.aftercare/cluster}"
shift || true
exec .venv/bin/python -m tests.support.rabbit_cluster up "$dir" "$@"

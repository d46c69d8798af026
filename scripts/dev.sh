#!/usr/bin/env bash
# Aftercare developer entry point: `bash scripts/dev.sh demo` runs the whole pipeline,
# `bash scripts/dev.sh test` runs the quality gates and the test suite.
#
# On a fresh Debian/Ubuntu machine it creates the virtual environment, installs what is
# missing (as root, from the OS packages; otherwise it stops naming what to install), and
# starts or reuses PostgreSQL. Tests start their own private Mosquitto and PGlite servers;
# `test` also checks that NATS (JetStream, 4222) and RabbitMQ (5672) answer on this machine,
# starting them as root, so the alert-event publishing tests run on all three transports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${AFTERCARE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PG_HOST=127.0.0.1
PG_PORT="${AFTERCARE_PG_PORT:-5432}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

APT_UPDATED=0
apt_install() {
  is_root || die "missing: $* — install with: sudo apt-get install -y $*"
  command -v apt-get >/dev/null || die "missing: $* (no apt-get here: install them with your OS tools)"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing OS packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_python() {
  local py
  py="$(command -v python3.11 || command -v python3 || true)"
  [ -n "$py" ] || { apt_install python3 python3-venv; py="$(command -v python3)"; }
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python >= 3.11 is needed (found $("$py" --version)); install python3.11"
  if [ ! -x "$PY" ]; then
    say "creating virtual environment in $VENV"
    "$py" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$py" -m venv "$VENV"; }
  fi
  local stamp="$VENV/.aftercare-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    say "installing Python dependencies (pinned by constraints.txt)"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
    "$PY" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
    touch "$stamp"
  fi
}

pg_ready() {
  "$PY" - "$PG_HOST" "$PG_PORT" <<'PYEOF' 2>/dev/null
import sys, psycopg
try:
    psycopg.connect(f"postgresql://postgres@{sys.argv[1]}:{sys.argv[2]}/postgres", connect_timeout=3).close()
except Exception as exc:
    print(exc, file=sys.stderr); sys.exit(1)
PYEOF
}

need_postgres() {
  pg_ready && return 0
  if ! command -v pg_ctlcluster >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
  fi
  if command -v pg_ctlcluster >/dev/null; then
    local ver
    ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$ver" ] || die "PostgreSQL is installed but has no cluster: run pg_createcluster"
    if ! grep -q 'aftercare-dev' "/etc/postgresql/$ver/main/pg_hba.conf" 2>/dev/null && is_root; then
      # Local development only: trust the loopback so DATABASE_URL needs no password.
      sed -i "1i host all all 127.0.0.1/32 trust # aftercare-dev" "/etc/postgresql/$ver/main/pg_hba.conf"
      sed -i "1i host all all ::1/128 trust # aftercare-dev" "/etc/postgresql/$ver/main/pg_hba.conf"
    fi
    say "starting PostgreSQL $ver"
    if is_root; then
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
        || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || true
    else
      die "PostgreSQL is not running on $PG_HOST:$PG_PORT: start it (sudo pg_ctlcluster $ver main start)"
    fi
  fi
  for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
  die "PostgreSQL did not answer on $PG_HOST:$PG_PORT as user postgres without password"
}

need_mosquitto() {
  if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    apt_install mosquitto mosquitto-clients
  fi
  command -v mosquitto_passwd >/dev/null || apt_install mosquitto
  # Debian's package starts a system broker; ours run privately with generated configs.
}

need_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  if [ ! -d tools/pglite/node_modules ]; then
    say "installing PGlite + TimescaleDB (npm ci, pinned by tools/pglite/package-lock.json)"
    (cd tools/pglite && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ -f tests/web/axe/package-lock.json ] && [ ! -d tests/web/axe/node_modules ]; then
    say "installing axe-core for the accessibility tests (npm ci, pinned by tests/web/axe/package-lock.json)"
    (cd tests/web/axe && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() {  # port, name, seconds
  for _ in $(seq 1 "$3"); do port_open "$1" && return 0; sleep 1; done
  die "$2 did not answer on 127.0.0.1:$1 within $3 s"
}

# The commands the development machines start these servers with.
NATS_START=(start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server --
            -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log)
RABBITMQ_START=(rabbitmq-server -detached)

need_nats() {
  port_open 4222 && return 0
  [ -x /usr/sbin/nats-server ] || apt_install nats-server
  is_root || die "NATS is not running on 127.0.0.1:4222: start it (as root): ${NATS_START[*]}"
  say "starting NATS with JetStream on 127.0.0.1:4222"
  mkdir -p /var/lib/nats-server
  "${NATS_START[@]}"
  wait_port 4222 NATS 30
}

need_rabbitmq() {
  port_open 5672 && return 0
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  is_root || die "RabbitMQ is not running on 127.0.0.1:5672: start it (as root): ${RABBITMQ_START[*]}"
  say "starting RabbitMQ on 127.0.0.1:5672"
  "${RABBITMQ_START[@]}"
  wait_port 5672 RabbitMQ 90
}

need_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
}

cmd_setup() {
  need_python
  need_postgres
  need_mosquitto
  need_node
}

cmd_test() {
  cmd_setup
  need_chromium
  need_nats
  need_rabbitmq
  # Both answer: the NATS and RabbitMQ publishing tests must run, not skip.
  export AFTERCARE_TEST_ALL_TRANSPORTS=1
  say "ruff"
  "$VENV/bin/ruff" check .
  say "mypy"
  "$VENV/bin/mypy" aftercare aftercare_cli ingest anomaly evaluation simulators service_crm web
  say "pytest"
  exec "$VENV/bin/pytest" "$@"
}

cmd_demo() {
  # --help prints at once: the command line needs only the standard library, so a Python
  # 3.11 prints it before (and without) installing anything.
  local arg py
  for arg in "$@"; do
    if [ "$arg" = -h ] || [ "$arg" = --help ]; then
      py="$(command -v python3.11 || command -v python3 || true)"
      if [ -n "$py" ] && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        exec "$py" -I -c 'import sys; sys.path.insert(0, sys.argv.pop(1))
from aftercare_cli.main import main
sys.exit(main(["demo", *sys.argv[1:]]))' "$ROOT" "$@"
      fi
    fi
  done
  cmd_setup
  exec "$VENV/bin/aftercare" demo "$@"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  test) shift; cmd_test "$@" ;;
  demo) shift; cmd_demo "$@" ;;
  *) echo "usage: bash scripts/dev.sh {demo|test|setup} [args...]" >&2; exit 2 ;;
esac

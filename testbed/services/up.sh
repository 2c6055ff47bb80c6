#!/usr/bin/env bash
# Starts real backing services on loopback for the wiring probe and the e2e tests, from
# Debian's packages (testbed/system-deps.sh installs them):
#
#   PostgreSQL  TLS (server cert from the bed's CA), scram-sha-256 passwords, TLS required
#   MariaDB     TLS (same CA), mysql_native_password, require_secure_transport=ON
#   Redis       TLS port and a plain port, AUTH (requirepass), no persistence
#   Memcached   plain (Grafana's memcached client has no TLS and no auth)
#
# Each listens on a free 127.0.0.1 port, keeps its data in STATE_DIR/services/data/<name>,
# logs to STATE_DIR/logs/<name>.log, and records its PID in STATE_DIR/services/pids
# (testbed/down.sh stops them by PID, like the rest of the bed). Each database has a
# database `grafana`, a user `grafana` with a random password, and an admin user with
# which tests can create more users and databases. Addresses and credentials go to
# STATE_DIR/services.env (up.sh appends it to STATE_DIR/env).
#
# TLS: PostgreSQL and MariaDB have certs from the bed's CA, STATE_DIR/pki/ca.crt (made by
# up.sh; made here when missing, so the services run without the control plane too:
# testbed/services/with-services.sh), standing for the RDS CA bundle; Redis has one from
# STATE_DIR/pki/public-ca.crt, standing for the public roots in Grafana's image.
#
# Usage: testbed/services/up.sh STATE_DIR
#   TESTBED_SERVICES_TIMEOUT   seconds to wait for each service (default 60)
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $# -eq 1 ]] || tb_die "usage: $0 STATE_DIR"
mkdir -p "$1"
STATE_DIR=$(cd "$1" && pwd)
LOGS="$STATE_DIR/logs"
PKI="$STATE_DIR/pki"
SVC="$STATE_DIR/services"
PIDS="$SVC/pids"
TIMEOUT=${TESTBED_SERVICES_TIMEOUT:-60}
START=$SECONDS

# Everything we start carries this; down.sh kills a PID only if it does.
export TESTBED_DIR="$STATE_DIR"

# --- programs -------------------------------------------------------------------------
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[[ -n $PG_BIN && -x $PG_BIN/postgres ]] || tb_die "PostgreSQL is not installed (testbed/system-deps.sh installs it)"
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
for cmd in "$MARIADBD" mariadb-install-db mariadb mariadb-admin redis-server redis-cli memcached setpriv setsid openssl psql; do
  command -v "$cmd" >/dev/null || tb_die "$cmd is missing (testbed/system-deps.sh installs it)"
done

# user_or_nobody NAME: a Debian package's system user, or nobody when it is missing.
user_or_nobody() { if id -u "$1" >/dev/null 2>&1; then echo "$1"; else echo nobody; fi; }
PG_USER=$(user_or_nobody postgres)
MY_USER=$(user_or_nobody mysql)
MC_USER=$(user_or_nobody memcache)

if [[ -s $PIDS ]]; then
  for pid in $(<"$PIDS"); do
    if kill -0 "$pid" 2>/dev/null; then
      tb_die "$SVC already has running services (pid $pid); run testbed/down.sh $STATE_DIR first"
    fi
  done
fi
rm -rf "$SVC"
mkdir -p "$SVC" "$LOGS"
: >"$PIDS"

# --- where the data lives -------------------------------------------------------------
# PostgreSQL refuses to run as root, MariaDB drops to its user: both must reach their data
# directory. A state dir made by mktemp (0700, as with-testbed.sh does) or under a 0700
# home is not reachable for them, so give the state dir o+x; if some parent still blocks
# them, keep the data in a private dir under /tmp and link it (down.sh removes both).
chmod o+x "$STATE_DIR" "$SVC"
DATA="$SVC/data"
if setpriv --reuid="$PG_USER" --regid="$PG_USER" --clear-groups test -x "$SVC" 2>/dev/null &&
  setpriv --reuid="$MY_USER" --regid="$MY_USER" --clear-groups test -x "$SVC" 2>/dev/null; then
  mkdir -p "$DATA"
else
  outside=$(mktemp -d /tmp/grafana-ha-services.XXXXXX)
  ln -s "$outside" "$DATA"
  tb_log "services: $STATE_DIR is not reachable for $PG_USER/$MY_USER; data in $outside"
fi
chmod 711 "$DATA/"

# --- free ports -----------------------------------------------------------------------
read -r PG_PORT MY_PORT REDIS_TLS_PORT REDIS_PORT MC_PORT < <(
  python3 - <<'PY'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
[[ -n ${MC_PORT:-} ]] || tb_die "could not pick free ports"

secret() { openssl rand -hex 16; }
PG_ADMIN_PASSWORD=$(secret)
PG_PASSWORD=$(secret)
MY_ADMIN_PASSWORD=$(secret)
MY_PASSWORD=$(secret)
REDIS_PASSWORD=$(secret)

# --- certificates ---------------------------------------------------------------------
mkdir -p "$PKI"
chmod 700 "$PKI"
if [[ ! -s $PKI/ca.crt || ! -s $PKI/ca.key ]]; then
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=grafana-ha-testbed-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$PKI/ca.key"
fi
# A second CA stands for the public roots in Grafana's image: ElastiCache's certificates
# chain to Amazon's public roots, which the image trusts; RDS certificates chain to the RDS
# CAs, which it does not. So Redis gets a cert from public-ca (give TESTBED_PUBLIC_CA_FILE
# to the probe as the image's trust store) and the databases one from the bed's CA (the
# "RDS CA bundle" a pod must be given).
if [[ ! -s $PKI/public-ca.crt || ! -s $PKI/public-ca.key ]]; then
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 \
    -keyout "$PKI/public-ca.key" -out "$PKI/public-ca.crt" -subj "/CN=grafana-ha-testbed-public-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$PKI/public-ca.key"
fi
# Serving certs: the names a test can put into an endpoint.
cat >"$PKI/services.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
for ca in ca public-ca; do
  openssl req -new -nodes -newkey rsa:2048 -keyout "$PKI/services-$ca.key" -out "$PKI/services-$ca.csr" \
    -subj "/CN=localhost" 2>/dev/null
  openssl x509 -req -in "$PKI/services-$ca.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -sha256 -days 30 -extfile "$PKI/services.ext" -out "$PKI/services-$ca.crt" 2>/dev/null
  rm -f "$PKI/services-$ca.csr"
  chmod 600 "$PKI/services-$ca.key"
done

# tls_copy DIR OWNER CA: that CA, a cert from it and its key in DIR, readable only by
# OWNER (PostgreSQL insists on a private key file that only its user can read).
tls_copy() {
  mkdir -p "$1"
  install -m 0644 -o "$2" "$PKI/$3.crt" "$1/ca.crt"
  install -m 0644 -o "$2" "$PKI/services-$3.crt" "$1/server.crt"
  install -m 0600 -o "$2" "$PKI/services-$3.key" "$1/server.key"
}

# start NAME CMD...: detached, own session, logs/NAME.log, PID recorded. setsid and
# setpriv exec, and the daemons run in the foreground, so the PID is the server's.
declare -A PID_OF=()
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  PID_OF[$name]=$!
  echo $! >>"$PIDS"
  tb_log "started $name (pid $!)"
}

# wait_for NAME CMD...: poll CMD until it succeeds, at most TIMEOUT seconds, while NAME runs.
wait_for() {
  local name=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "${PID_OF[$name]}" 2>/dev/null; then
      fail "$name exited"
    fi
    ((SECONDS < deadline)) || fail "$name: not ready after ${TIMEOUT}s"
    sleep 0.1
  done
  tb_log "$name ready ($((SECONDS - START))s)"
}

fail() {
  tb_log "ERROR: $*"
  local f
  for f in "$LOGS"/postgres.log "$LOGS"/mariadb.log "$LOGS"/redis.log "$LOGS"/memcached.log "$SVC"/*.log; do
    [[ -s $f ]] || continue
    echo "----- last 20 lines of $f -----" >&2
    tail -n 20 "$f" >&2 || true
  done
  echo "----- stop them with: testbed/down.sh $STATE_DIR -----" >&2
  tb_log "ERROR: $*"
  exit 1
}

# --- PostgreSQL -----------------------------------------------------------------------
PG_DIR="$DATA/postgres"
mkdir -p "$PG_DIR"
chown "$PG_USER:" "$PG_DIR"
chmod 700 "$PG_DIR"
tls_copy "$PG_DIR/tls" "$PG_USER" ca
printf '%s\n' "$PG_ADMIN_PASSWORD" >"$PG_DIR/admin-password"
chown "$PG_USER:" "$PG_DIR/admin-password"
chmod 600 "$PG_DIR/admin-password"
as_pg() { setpriv --reuid="$PG_USER" --regid="$PG_USER" --clear-groups -- "$@"; }
# --no-sync: nothing here has to survive a crash; initdb takes well under a second.
as_pg "$PG_BIN/initdb" -D "$PG_DIR/db" --no-sync --auth=scram-sha-256 --username=postgres \
  --pwfile="$PG_DIR/admin-password" --encoding=UTF8 --locale=C >"$SVC/initdb.log" 2>&1 ||
  fail "initdb failed"
rm -f "$PG_DIR/admin-password"
# Like RDS with rds.force_ssl=1: a connection without TLS is refused, so a client that
# silently drops TLS fails instead of passing.
cat >"$PG_DIR/db/pg_hba.conf" <<'EOF'
local   all  all                  scram-sha-256
hostssl all  all  127.0.0.1/32    scram-sha-256
hostnossl all all 127.0.0.1/32    reject
EOF
start postgres "$(command -v setpriv)" --reuid="$PG_USER" --regid="$PG_USER" --clear-groups -- \
  "$PG_BIN/postgres" -D "$PG_DIR/db" \
  -c listen_addresses=127.0.0.1 -c port="$PG_PORT" \
  -c unix_socket_directories="$PG_DIR" \
  -c ssl=on -c ssl_cert_file="$PG_DIR/tls/server.crt" -c ssl_key_file="$PG_DIR/tls/server.key" \
  -c ssl_ca_file="$PG_DIR/tls/ca.crt" \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=200 -c shared_buffers=32MB -c logging_collector=off

# --- MariaDB --------------------------------------------------------------------------
MY_DIR="$DATA/mariadb"
mkdir -p "$MY_DIR"
chown "$MY_USER:" "$MY_DIR"
chmod 700 "$MY_DIR"
tls_copy "$MY_DIR/tls" "$MY_USER" ca
# Small InnoDB files and no durability: a fresh data dir in ~3 s, a start in well under 1 s.
MY_OPTS=(
  --no-defaults --user="$MY_USER" --datadir="$MY_DIR/db"
  --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=32M --innodb-log-file-size=8M
  --innodb-data-file-path=ibdata1:4M:autoextend --innodb-flush-log-at-trx-commit=0
  --innodb-doublewrite=0
)
# A fresh data dir from mariadb-install-db waits on the disk for ~3 s; it is the same for
# every start, so it is made once per MariaDB version in the user's cache and copied.
MY_VERSION=$("$MARIADBD" --version | awk '{print $3}')
MY_TEMPLATE="$TESTBED_CACHE/services/mariadb-$MY_VERSION"
mkdir -p "$TESTBED_CACHE/services"
(
  flock 9
  if [[ ! -d $MY_TEMPLATE/db ]]; then
    # Installed where the mysql user can reach it (not the root-only cache), then copied.
    rm -rf "$MY_DIR/template"
    mkdir -p "$MY_DIR/template"
    chown "$MY_USER:" "$MY_DIR/template"
    # shellcheck disable=SC2001 # replace the datadir option for the template
    mariadb-install-db "${MY_OPTS[@]/#--datadir=*/--datadir=$MY_DIR/template/db}" \
      --auth-root-authentication-method=socket --skip-test-db >"$SVC/mariadb-install-db.log" 2>&1 ||
      exit 1
    rm -rf "$MY_TEMPLATE.tmp" "$MY_TEMPLATE"
    mkdir -p "$MY_TEMPLATE.tmp"
    cp -a "$MY_DIR/template/db" "$MY_TEMPLATE.tmp/db"
    mv "$MY_TEMPLATE.tmp" "$MY_TEMPLATE"
    rm -rf "$MY_DIR/template"
  fi
) 9>"$TESTBED_CACHE/services/.mariadb.lock" || fail "mariadb-install-db failed"
cp -a "$MY_TEMPLATE/db" "$MY_DIR/db"
start mariadb "$MARIADBD" "${MY_OPTS[@]}" \
  --bind-address=127.0.0.1 --port="$MY_PORT" --socket="$MY_DIR/mysqld.sock" \
  --pid-file="$MY_DIR/mysqld.pid" \
  --ssl-ca="$MY_DIR/tls/ca.crt" --ssl-cert="$MY_DIR/tls/server.crt" --ssl-key="$MY_DIR/tls/server.key" \
  --require-secure-transport=ON --max-connections=200

# --- Redis ----------------------------------------------------------------------------
REDIS_DIR="$DATA/redis"
tls_copy "$REDIS_DIR/tls" root public-ca
# A config file, not flags: the password stays out of the process list.
cat >"$REDIS_DIR/redis.conf" <<EOF
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
tls-port $REDIS_TLS_PORT
tls-cert-file $REDIS_DIR/tls/server.crt
tls-key-file $REDIS_DIR/tls/server.key
tls-ca-cert-file $REDIS_DIR/tls/ca.crt
tls-auth-clients no
requirepass $REDIS_PASSWORD
dir $REDIS_DIR
save ""
appendonly no
daemonize no
# Keeps /proc/PID/environ intact: down.sh looks for TESTBED_DIR there before it kills.
set-proc-title no
logfile ""
EOF
chmod 600 "$REDIS_DIR/redis.conf"
start redis "$(command -v redis-server)" "$REDIS_DIR/redis.conf"

# --- Memcached ------------------------------------------------------------------------
start memcached "$(command -v memcached)" -l 127.0.0.1 -p "$MC_PORT" -U 0 -u "$MC_USER" -m 64 -c 1024

# --- readiness and the grafana databases ----------------------------------------------
pg_admin() {
  PGPASSWORD=$PG_ADMIN_PASSWORD psql -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$PKI/ca.crt connect_timeout=2" "$@"
}
wait_for postgres pg_admin -c 'SELECT 1'
pg_admin -c "CREATE ROLE grafana LOGIN PASSWORD '$PG_PASSWORD'" \
  -c "CREATE DATABASE grafana OWNER grafana" >>"$SVC/setup.log" 2>&1 || fail "postgres: creating the grafana database failed"

# shellcheck disable=SC2120 # called with arguments through wait_for
my_root() { mariadb --no-defaults --socket="$MY_DIR/mysqld.sock" -uroot "$@"; }
wait_for mariadb my_root -e 'SELECT 1'
my_root --batch >>"$SVC/setup.log" 2>&1 <<SQL || fail "mariadb: creating the grafana database failed"
CREATE DATABASE grafana CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'grafana'@'%' IDENTIFIED BY '$MY_PASSWORD';
GRANT ALL PRIVILEGES ON grafana.* TO 'grafana'@'%';
CREATE USER 'testbed_admin'@'%' IDENTIFIED BY '$MY_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'testbed_admin'@'%' WITH GRANT OPTION;
SQL

redis_ping() {
  REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$REDIS_TLS_PORT" --tls --cacert "$PKI/public-ca.crt" ping | grep -qx PONG
}
wait_for redis redis_ping

memcached_ping() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/$MC_PORT" || return 1
  printf 'version\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3<&- 3>&-
  [[ $reply == VERSION* ]]
}
wait_for memcached memcached_ping

# --- env ------------------------------------------------------------------------------
PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
{
  echo "# Generated by testbed/services/up.sh"
  for kv in \
    "TESTBED_SERVICES=1" \
    "TESTBED_CA_FILE=$PKI/ca.crt" \
    "TESTBED_PUBLIC_CA_FILE=$PKI/public-ca.crt" \
    "TESTBED_POSTGRES_HOST=127.0.0.1" \
    "TESTBED_POSTGRES_PORT=$PG_PORT" \
    "TESTBED_POSTGRES_DB=grafana" \
    "TESTBED_POSTGRES_USER=grafana" \
    "TESTBED_POSTGRES_PASSWORD=$PG_PASSWORD" \
    "TESTBED_POSTGRES_ADMIN_USER=postgres" \
    "TESTBED_POSTGRES_ADMIN_PASSWORD=$PG_ADMIN_PASSWORD" \
    "TESTBED_POSTGRES_VERSION=$PG_VERSION" \
    "TESTBED_MYSQL_HOST=127.0.0.1" \
    "TESTBED_MYSQL_PORT=$MY_PORT" \
    "TESTBED_MYSQL_DB=grafana" \
    "TESTBED_MYSQL_USER=grafana" \
    "TESTBED_MYSQL_PASSWORD=$MY_PASSWORD" \
    "TESTBED_MYSQL_ADMIN_USER=testbed_admin" \
    "TESTBED_MYSQL_ADMIN_PASSWORD=$MY_ADMIN_PASSWORD" \
    "TESTBED_MYSQL_VERSION=mariadb-$MY_VERSION" \
    "TESTBED_REDIS_HOST=127.0.0.1" \
    "TESTBED_REDIS_PORT=$REDIS_TLS_PORT" \
    "TESTBED_REDIS_PLAIN_PORT=$REDIS_PORT" \
    "TESTBED_REDIS_PASSWORD=$REDIS_PASSWORD" \
    "TESTBED_MEMCACHED_HOST=127.0.0.1" \
    "TESTBED_MEMCACHED_PORT=$MC_PORT"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
  done
} >"$STATE_DIR/services.env"
chmod 600 "$STATE_DIR/services.env"
tb_log "services up in $((SECONDS - START))s: postgres :$PG_PORT, mariadb :$MY_PORT, redis tls :$REDIS_TLS_PORT plain :$REDIS_PORT, memcached :$MC_PORT"

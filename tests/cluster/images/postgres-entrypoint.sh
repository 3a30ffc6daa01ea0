#!/usr/bin/env bash
# Entry point of the real node's postgres image (images.sh), honouring the contract of the official
# image's docker-entrypoint.sh: POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required
# unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), the *_FILE variants, PGDATA, and the scripts
# in /docker-entrypoint-initdb.d. On an empty PGDATA it runs initdb, allows password logins from
# any host, creates the database with a server listening on the Unix socket only (so that nothing
# connects, and no probe passes, before it is ready), then starts postgres. Runs as uid 999 (the
# operator's pods do); started as root it switches to it.
set -Eeo pipefail

# file_env VAR [default]: VAR or the content of the file named by VAR_FILE.
file_env() {
  local var="$1" file_var="${1}_FILE" def="${2:-}" val
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    echo >&2 "error: both ${var} and ${file_var} are set (but are exclusive)"
    exit 1
  fi
  val="${def}"
  if [[ -n "${!var:-}" ]]; then
    val="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    val="$(<"${!file_var}")"
  fi
  export "${var}=${val}"
  unset "${file_var}"
}

psql_init() { psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --no-password --no-psqlrc "$@"; }

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "${f}" in
      *.sh)
        if [[ -x "${f}" ]]; then
          echo "$0: running ${f}"
          "${f}"
        else
          echo "$0: sourcing ${f}"
          # shellcheck source=/dev/null
          source "${f}"
        fi ;;
      *.sql) echo "$0: running ${f}"; psql_init --dbname "${POSTGRES_DB}" -f "${f}" ;;
      *.sql.gz) echo "$0: running ${f}"; gunzip -c "${f}" | psql_init --dbname "${POSTGRES_DB}" ;;
      *) [[ "${f}" == '/docker-entrypoint-initdb.d/*' ]] || echo "$0: ignoring ${f}" ;;
    esac
  done
}

if [[ "${1:0:1}" == - ]]; then
  set -- postgres "$@"
fi

if [[ "$1" == postgres ]]; then
  : "${PGDATA:=/var/lib/postgresql/data}"
  export PGDATA
  mkdir -p "${PGDATA}"
  chmod 00700 "${PGDATA}" || :
  if [[ "$(id -u)" == 0 ]]; then
    chown -R postgres:postgres "${PGDATA}" /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi

  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "${POSTGRES_USER}"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

  if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
    if [[ -z "${POSTGRES_PASSWORD}" && "${POSTGRES_HOST_AUTH_METHOD}" != trust ]]; then
      cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
EOF
      exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="${POSTGRES_USER}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") \
      ${POSTGRES_INITDB_ARGS}
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD}" >>"${PGDATA}/pg_hba.conf"

    export PGPASSWORD="${POSTGRES_PASSWORD}"
    PGUSER="${POSTGRES_USER}" pg_ctl -D "${PGDATA}" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
    if [[ "${POSTGRES_DB}" != postgres ]]; then
      exists="$(psql_init --dbname postgres --set db="${POSTGRES_DB}" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db' ;")"
      if [[ -z "${exists// /}" ]]; then
        psql_init --dbname postgres --set db="${POSTGRES_DB}" <<<'CREATE DATABASE :"db" ;'
      fi
    fi
    run_init_files
    PGUSER="${POSTGRES_USER}" pg_ctl -D "${PGDATA}" -m fast -w stop
    unset PGPASSWORD
    echo "PostgreSQL init process complete; ready for start up."
  else
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
  fi
fi

exec "$@"

#!/bin/sh
# Entry point of the books API image: runs the command (gunicorn by default) and relays a stop
# request to it after a short delay.
#
# The schema is migrated by the operator's migration Job (`api.migrations.command:
# [flask, db, upgrade]`, see examples/books.yaml) before the API moves to a new image. Without
# an operator, BOOKS_MIGRATE=1 makes each pod run `flask db upgrade` first (with retries: several
# replicas racing on an empty database make one fail on a duplicate table, and its retry then
# finds the schema current; retries also cover a database that is not accepting connections yet).
#
# On SIGTERM the server keeps serving for BOOKS_STOP_DELAY seconds (default 5) before it is told
# to stop: the pod has already left the Service's endpoints, but kube-proxy on every node needs a
# moment to stop sending new connections to it. Without the delay a rolling update loses the
# requests that arrive in that moment.
set -eu

if [ "${BOOKS_MIGRATE:-0}" = 1 ]; then
  attempt=1
  until flask db upgrade; do
    if [ "$attempt" -ge "${BOOKS_MIGRATE_ATTEMPTS:-15}" ]; then
      echo "docker-entrypoint: flask db upgrade failed $attempt times, giving up" >&2
      exit 1
    fi
    echo "docker-entrypoint: flask db upgrade failed (attempt $attempt), retrying in 2s" >&2
    attempt=$((attempt + 1))
    sleep 2
  done
fi

"$@" &
child=$!
# shellcheck disable=SC2317 # run by the trap
stop() {
  sleep "${BOOKS_STOP_DELAY:-5}"
  kill -TERM "$child" 2>/dev/null || true
}
trap stop TERM INT

# `wait` returns early when a trapped signal arrives: wait again until the server has exited.
while :; do
  if wait "$child"; then status=0; else status=$?; fi
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"

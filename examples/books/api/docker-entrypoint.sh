#!/bin/sh
# Entry point of the books API image: brings the database schema up to date, then runs the
# command (gunicorn by default) and relays a stop request to it after a short delay.
#
# Interim: nothing else creates the tables yet (a migrations Job run by the operator is planned),
# so each API pod runs `flask db upgrade` before it starts serving. Several replicas may start at
# once: two upgrades racing on an empty database make one fail on a duplicate table, and its retry
# then finds the schema current. Retries also cover a database that is not accepting connections
# yet. BOOKS_MIGRATE=0 skips this step.
#
# On SIGTERM the server keeps serving for BOOKS_STOP_DELAY seconds (default 5) before it is told
# to stop: the pod has already left the Service's endpoints, but kube-proxy on every node needs a
# moment to stop sending new connections to it. Without the delay a rolling update loses the
# requests that arrive in that moment.
set -eu

if [ "${BOOKS_MIGRATE:-1}" = 1 ]; then
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

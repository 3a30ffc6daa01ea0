"""A throwaway Postgres cluster for the tests: initdb in a temp dir, loopback port, removed after.

Postgres refuses to run as root, so as root every server binary runs as `nobody`.
"""

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import string
import subprocess
import tempfile


def find_bin_dir():
    """PG_BIN, else pg_ctl on PATH, else the newest Debian install under /usr/lib/postgresql."""
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    on_path = shutil.which("pg_ctl")
    if on_path:
        return os.path.dirname(os.path.realpath(on_path))
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not found:
        raise RuntimeError("Postgres server binaries not found: apt-get install postgresql, or set PG_BIN")
    newest = max(found, key=lambda p: int(re.search(r"/postgresql/(\d+)/", p).group(1)))
    return os.path.dirname(newest)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_password(length=32):
    # Same shape as the operator's generated password: 32 alphanumeric characters.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class TempPostgres:
    def __init__(self, user="books", database="books"):
        self.bin = find_bin_dir()
        self.user, self.database, self.password = user, database, random_password()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="books-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.as_user = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.as_user = ["runuser", "-u", "nobody", "--"]

    @property
    def url(self):
        return self.url_with(password=self.password)

    def url_with(self, password=None, port=None):
        """The URL exactly as the operator builds it, optionally with a wrong password or port."""
        return (
            f"postgresql+psycopg://{self.user}:{password or self.password}"
            f"@127.0.0.1:{port or self.port}/{self.database}"
        )

    def _run(self, tool, *args):
        cmd = self.as_user + [os.path.join(self.bin, tool), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = open(self.log).read() if os.path.exists(self.log) else ""
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}{log}")
        return result.stdout

    def init(self):
        # Local socket trusted for setup; TCP needs a password, as in the cluster.
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync")
        self.start()
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")
        return self

    def start(self):
        # Durability settings off: this data lives for one test run.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30", "start")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")

    def psql(self, sql):
        return self._run("psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)

    def destroy(self):
        try:
            self.stop()
        except Exception:
            pass  # already stopped, or never started
        shutil.rmtree(self.dir, ignore_errors=True)

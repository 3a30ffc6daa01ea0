"""Starts the API exactly as the image's CMD does (only the bind address changes) and calls it."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from conftest import API_DIR
from postgres import free_port


def dockerfile_cmd():
    text = open(os.path.join(API_DIR, "Dockerfile")).read()
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


def call(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_image_cmd_serves_the_api(app):
    cmd = dockerfile_cmd()
    assert cmd[0] == "gunicorn" and cmd[-1] == "wsgi:app"
    port = free_port()
    cmd[cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    if not os.path.isdir("/dev/shm"):
        cmd[cmd.index("--worker-tmp-dir") + 1] = "/tmp"
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], WEB_CONCURRENCY="1")
    server = subprocess.Popen([sys.executable, "-m", *cmd], cwd=API_DIR, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert call(f"{base}/health") == (200, {"status": "ok"})
                break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer within 20s"
                time.sleep(0.2)
        status, book = call(f"{base}/api/books", {"title": "Dune", "author": "Frank Herbert", "year": 1965})
        assert status == 201
        assert call(f"{base}/api/books/{book['id']}") == (200, book)
    finally:
        server.terminate()
        server.wait(timeout=10)

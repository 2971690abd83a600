"""Property-based conformance: schemathesis generates requests from the app's own
``/openapi.json`` (valid and invalid ones) and every response must be no 5xx, a documented
status, the documented content type and headers, and match the documented schema.

Examples per operation are bounded so the whole run stays well under a minute on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from renderlab import store
from renderlab.clock import now_ms
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import attach_local_storage, bearer, make_api, user_id_of
from tests.factories import make_generation, make_render

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_state(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("schemathesis")
    path = root / "renderlab.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    # A quota large enough that generated requests exercise more than 429s.
    limits = Limits(renders_per_hour=1_000_000)
    services = Services(
        settings=Settings(data_dir=root / "data", database_url=db.url), limits=limits, db=db
    )
    attach_local_storage(services)
    app = make_api(services)
    user = user_id_of(app, "schemathesis")
    generation = make_generation(db, user)
    render = make_render(db, user, generation)
    with db.transaction() as session:  # finished, so its event stream ends by itself
        store.update(session, render, now=now_ms(), status="rendering", progress=10)
        store.update(session, render, now=now_ms(), status="complete", output_key="renders/x.mp4")
    app.state.seeded = {"generation": generation, "render": render}
    yield app
    app.state.ctx.feed.stop()
    db.dispose()


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def use_real_ids(case: Any, seeded: dict[str, str]) -> None:
    """Point half the generated requests at objects that exist, so more than the 404 paths
    are explored: ids in the path, and ``generation_id`` in a render request body."""
    path = case.operation.path
    if case.path_parameters and "id" in case.path_parameters:
        kind = "generation" if path.startswith("/v1/generations") else "render"
        case.path_parameters["id"] = seeded[kind]
    if path == "/v1/renders" and isinstance(case.body, dict):
        case.body["generation_id"] = seeded["generation"]
    if path == "/v1/renders" and case.query and "generation_id" in case.query:
        case.query["generation_id"] = seeded["generation"]


def test_api_conforms_to_its_openapi_document(api_state: Any) -> None:
    """Every operation, with valid and invalid generated requests (schemathesis's pytest
    plugin is driven by hand here: its lazy-fixture loader does not support pytest 9)."""
    headers = bearer(api_state, "schemathesis")
    tested = []
    skip = set(filter(None, os.environ.get("SCHEMATHESIS_SKIP", "").split(",")))
    for operation in operations(api_state):
        if any(part in operation.label for part in skip):
            continue
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases, real=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any, real: bool) -> None:
            if real:
                use_real_ids(case, api_state.state.seeded)
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
        tested.append(operation.label)
    assert len(tested) >= 14, tested

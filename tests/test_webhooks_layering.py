"""The webhook core imports no face (HTTP framework, Celery, CLI), and the client imports
none of the server: it speaks HTTP only (the webhook verifier is the one shared piece)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "renderlab"
FACES = (
    "fastapi",
    "starlette",
    "celery",
    "typer",
    "renderlab.api",
    "renderlab.cli",
    "renderlab.workers",
    "renderlab.web",
    "renderlab.client",
)
SERVER = (
    "renderlab.api",
    "renderlab.pipeline",
    "renderlab.store",
    "renderlab.workers",
    "renderlab.db",
    "renderlab.render",
    "renderlab.storage",
    "renderlab.cli",
)


def _imports(package: str) -> set[str]:
    names = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize(("package", "forbidden"), [("webhooks", FACES), ("client", SERVER)])
def test_no_import_points_the_wrong_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = {
        name
        for name in _imports(package)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    }
    assert wrong == set()

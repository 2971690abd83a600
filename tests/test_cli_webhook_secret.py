"""``renderlab webhook-secret`` prints the secret of the data dir ``serve`` uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

from renderlab.config import Settings
from renderlab.webhooks import new_secret, webhook_secret
from tests.serve_helpers import ROOT, renderlab, serve_env


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        renderlab("webhook-secret"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_prints_the_data_dirs_secret_and_the_same_one_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _run(serve_env(data))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("whsec_") and first.stdout.count("\n") == 1
    assert str(data.resolve()) in first.stderr
    assert _run(serve_env(data)).stdout == first.stdout
    assert webhook_secret(Settings(data_dir=data)) == first.stdout.strip()


def test_the_variable_wins_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    given = new_secret()
    shown = _run(serve_env(tmp_path / "data", RENDERLAB_WEBHOOK_SECRET=given))
    assert shown.stdout.strip() == given and "RENDERLAB_WEBHOOK_SECRET" in shown.stderr
    refused = _run(serve_env(tmp_path / "data", RENDERLAB_WEBHOOK_SECRET="hunter2"))
    assert refused.returncode == 2 and refused.stdout == ""
    assert "whsec_" in refused.stderr

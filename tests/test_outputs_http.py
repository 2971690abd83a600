"""Issue 13 over real HTTP on the embedded default (``renderlab serve``): every shape and every
codec renders, decodes with its codec, size and pixel format, keeps its alpha (0 on the
background, opaque on the text) where the format has it and warns where it has not; the poster
is a PNG of the poster frame at the render's size; downloads carry the codec's Content-Type,
extension and the asked disposition."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.pipeline_helpers import wait_for
from tests.render_helpers import decode_rgba, ffprobe, still_rgba
from tests.serve_helpers import serve
from tests.test_formats import away_from_text

TRANSPARENT = {"text": "Shapes ✓", "style": "fade-in", "color": "#FFCC00", "font_size": 120}


@dataclass(frozen=True)
class Case:
    """One render: a composition shape rendered smaller at its aspect, in one codec."""

    shape: str
    composition: tuple[int, int]
    size: tuple[int, int]
    codec: str
    pix_fmt: str
    transparent: bool = True
    poster_frame: int | None = None


CASES = [
    Case("16:9", (1920, 1080), (320, 180), "h264", "yuv420p"),
    Case("9:16", (1080, 1920), (360, 640), "vp9", "yuva420p", poster_frame=12),
    Case("1:1", (1080, 1080), (320, 320), "prores", "yuva444p12le"),  # as ffmpeg decodes it
    Case("4:5", (1080, 1350), (288, 360), "gif", "bgra"),
    Case("9:16", (1080, 1920), (180, 320), "h264", "yuv420p", transparent=False),
    Case("16:9", (1920, 1080), (320, 180), "vp9", "yuv420p", transparent=False),
    Case("4:5", (1080, 1350), (288, 360), "prores", "yuv444p12le", transparent=False),
    Case("1:1", (1080, 1080), (240, 240), "gif", "bgra", transparent=False),
]
EXTENSIONS = {"h264": ".mp4", "vp9": ".webm", "prores": ".mov", "gif": ".gif"}
TYPES = {"h264": "video/mp4", "vp9": "video/webm", "prores": "video/quicktime", "gif": "image/gif"}
DURATION = 36


@dataclass
class Served:
    client: httpx.Client
    renders: dict[Case, dict[str, Any]]
    generations: dict[Case, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``renderlab serve`` rendering every case (submitted at once, two workers)."""
    data = tmp_path_factory.mktemp("outputs") / "data"
    env = {
        "RENDERLAB_WORKERS": "2",
        "RENDERLAB_RENDERS_PER_HOUR": "100",
        "RENDERLAB_MAX_CONCURRENT_RENDERS": "20",
    }
    with serve(data, **env) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        token = client.post("/v1/auth/token", json={"name": "alice"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        generations, started = {}, {}
        for case in CASES:
            generations[case] = _generation(client, case)
            started[case] = _start(client, generations[case], case)
        renders = {case: finished(client, render_id) for case, render_id in started.items()}
        yield Served(client, renders, generations)


def _generation(client: httpx.Client, case: Case) -> str:
    width, height = case.composition
    props: dict[str, Any] = {**TRANSPARENT, "width": width, "height": height}
    props["duration_in_frames"] = DURATION
    if not case.transparent:
        props["background_color"] = "#203040"
    response = client.post("/v1/generations", json={"animation_props": props})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _start(client: httpx.Client, generation_id: str, case: Case) -> str:
    body: dict[str, Any] = {"generation_id": generation_id, "codec": case.codec}
    body["width"], body["height"] = case.size
    if case.poster_frame is not None:
        body["poster_frame"] = case.poster_frame
    response = client.post("/v1/renders", json=body)
    assert response.status_code == 202, response.text
    render = response.json()
    assert render["codec"] == case.codec and render["poster_frame"] == case.poster_frame
    return str(render["id"])


def finished(client: httpx.Client, render_id: str) -> dict[str, Any]:
    """The render once it ended, asserted complete (up to 240 s on a busy machine)."""

    def done() -> dict[str, Any] | None:
        render = client.get(f"/v1/renders/{render_id}").json()
        return render if render["status"] in ("complete", "failed") else None

    render: dict[str, Any] = wait_for(done, timeout=240, interval=0.1)
    assert render["status"] == "complete", render
    return render


def _download(url: str, dest: Path) -> httpx.Response:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    dest.write_bytes(response.content)
    return response


def _last_frame(path: Path, codec: str) -> np.ndarray:
    if codec == "gif":
        image = Image.open(path)
        image.seek(image.n_frames - 1)
        return np.asarray(image.convert("RGBA"))
    return decode_rgba(path, "libvpx-vp9" if codec == "vp9" else None)[-1]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.shape}-{c.codec}-{c.transparent}")
def test_each_shape_and_codec_renders_over_http(served: Served, case: Case, tmp_path: Path) -> None:
    render = served.renders[case]
    assert (render["width"], render["height"]) == case.size
    video = tmp_path / f"out{EXTENSIONS[case.codec]}"
    response = _download(render["output_url"], video)
    assert response.headers["content-type"] == TYPES[case.codec]
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="render-{render["id"]}')
    assert f'{EXTENSIONS[case.codec]}"' in disposition
    assert len(response.content) == render["output_size"]
    probe = ffprobe(video)
    codec_name = {"h264": "h264", "vp9": "vp9", "prores": "prores", "gif": "gif"}[case.codec]
    assert (probe["codec_name"], probe["width"], probe["height"]) == (codec_name, *case.size)
    if case.codec == "vp9":  # the alpha plane is a side stream; ffprobe reports its tag
        tag = probe.get("tags", {}).get("alpha_mode") or probe.get("tags", {}).get("ALPHA_MODE")
        assert (tag == "1") == case.transparent, probe.get("tags")
        assert probe["pix_fmt"] == "yuv420p"
    elif case.codec != "gif":
        assert probe["pix_fmt"] == case.pix_fmt
    if case.codec != "gif":
        assert int(probe["nb_read_frames"]) == DURATION
    warned = case.transparent and case.codec in ("h264", "gif")  # no alpha; one bit of it
    assert bool(render["warnings"]) == warned, render["warnings"]
    if warned:
        assert ("black" if case.codec == "h264" else "edges are hard") in render["warnings"][0]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.transparent and c.codec != "h264"], ids=lambda c: c.codec
)
def test_alpha_is_zero_on_the_background_and_opaque_on_the_text(
    served: Served, case: Case, tmp_path: Path
) -> None:
    render = served.renders[case]
    video = tmp_path / f"out{EXTENSIONS[case.codec]}"
    _download(render["output_url"], video)
    decoded = _last_frame(video, case.codec)
    expected = _still(served, case, DURATION - 1)
    text = expected[..., 3] == 255
    assert text.any()
    assert (decoded[..., 3][away_from_text(expected)] == 0).all()
    assert decoded[..., 3][text].mean() > 250


def _still(served: Served, case: Case, frame: int) -> np.ndarray:
    width, height = case.size
    response = served.client.get(
        f"/v1/generations/{served.generations[case]}/still",
        params={"frame": frame, "width": width, "height": height},
    )
    assert response.status_code == 200, response.text
    return still_rgba(response.content)


@pytest.mark.parametrize("case", CASES[:4] + CASES[4:5], ids=lambda c: f"{c.codec}-{c.shape}")
def test_the_poster_is_the_poster_frame_at_the_render_size(served: Served, case: Case) -> None:
    render = served.renders[case]
    response = httpx.get(render["poster_url"], timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert f'render-{render["id"]}.png"' in response.headers["content-disposition"]
    poster = Image.open(io.BytesIO(response.content))
    assert poster.format == "PNG" and poster.size == case.size
    assert poster.mode == ("RGBA" if case.transparent else "RGB")
    frame = DURATION - 1 if case.poster_frame is None else case.poster_frame
    assert (still_rgba(response.content) == _still(served, case, frame)).all()
    if case.transparent:  # alpha kept: none on the background, the text's own where drawn
        alpha = np.asarray(poster)[..., 3]
        assert alpha.min() == 0 and alpha.max() > 0  # mid-fade at poster_frame 12
        assert case.poster_frame is not None or alpha.max() == 255


def _download_url(served: Served, render_id: str, body: Any = None) -> httpx.Response:
    url = f"/v1/renders/{render_id}/download-url"
    return served.client.post(url) if body is None else served.client.post(url, json=body)


def test_download_disposition_inline_or_attachment_with_a_filename(served: Served) -> None:
    render = served.renders[CASES[1]]  # vp9
    response = _download_url(
        served, render["id"], {"disposition": "inline", "filename": "My clip.mp4"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    inline = httpx.get(response.json()["url"], timeout=30)
    assert inline.headers["content-type"] == "video/webm"
    assert inline.headers["content-disposition"].startswith('inline; filename="My clip.webm"')
    default = httpx.get(_download_url(served, render["id"]).json()["url"], timeout=30)
    assert default.headers["content-disposition"].startswith(
        f'attachment; filename="render-{render["id"]}.webm"'
    )
    named = _download_url(served, render["id"], {"filename": '../"évil"\r\n.exe'}).json()["url"]
    header = httpx.get(named, timeout=30).headers["content-disposition"]
    assert header.startswith("attachment;") and header.endswith(".exe.webm")
    assert "/" not in header.split("filename*=")[1] and "\r" not in header
    assert inline.content == default.content


def test_a_tampered_disposition_or_type_is_refused(served: Served) -> None:
    render = served.renders[CASES[2]]  # prores
    url = _download_url(served, render["id"], {"disposition": "inline"}).json()["url"]
    assert httpx.get(url, timeout=30).status_code == 200
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    for name, value in (("disposition", "attachment"), ("type", "text/html")):
        forged = urlunsplit(parts._replace(query=urlencode({**query, name: value})))
        refused = httpx.get(forged, timeout=30)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    dropped = urlunsplit(
        parts._replace(query=urlencode({k: v for k, v in query.items() if k != "disposition"}))
    )
    assert httpx.get(dropped, timeout=30).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disposition": "download"}, "disposition"),
        ({"filename": 5}, "filename"),
        ({"filename": ""}, "filename"),
        ({"disposition": "inline", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_download_url_body_is_a_422_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    response = _download_url(served, served.renders[CASES[0]]["id"], body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == [field]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"codec": "av1"}, "codec"),
        ({"codec": "H264"}, "codec"),
        ({"poster_frame": DURATION}, "poster_frame"),
        ({"poster_frame": -1}, "poster_frame"),
        ({"poster_frame": "3"}, "poster_frame"),
        ({"poster_frame": True}, "poster_frame"),
        ({"poster_frame": 2.0}, "poster_frame"),
    ],
)
def test_a_bad_codec_or_poster_frame_is_a_422_that_costs_nothing(
    served: Served, changes: dict[str, Any], field: str
) -> None:
    before = served.client.get("/v1/quota").json()["remaining"]
    body = {"generation_id": served.generations[CASES[0]], **changes}
    response = served.client.post("/v1/renders", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == [field]
    assert served.client.get("/v1/quota").json()["remaining"] == before

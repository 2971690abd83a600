"""Issue 13 in the cluster layout (PostgreSQL, Redis, Celery workers, S3 on loopback), over HTTP:
a ProRes render is encoded in chunks and joined by stream copy, a VP9 render in one piece; both
complete with their codec's Content-Type and extension on the presigned S3 download, a poster
PNG beside them, and the disposition asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from renderlab.pipeline import chunked
from tests.api_helpers import bearer, live_server, make_api
from tests.render_helpers import decode_rgba, ffprobe
from tests.test_celery_cluster import Cluster, cluster  # noqa: F401  (the module's fixture)
from tests.test_outputs_http import finished

PROPS = {"text": "Cluster ✓", "style": "typewriter", "color": "#00FF80", "font_size": 96}
CASES = {"prores": ("video/quicktime", ".mov"), "vp9": ("video/webm", ".webm")}
FRAMES = 160  # 2+ chunks of RENDERLAB_CHUNK_FRAMES=75 when the codec joins


def _render(client: httpx.Client, codec: str) -> dict[str, Any]:
    props = {**PROPS, "duration_in_frames": FRAMES, "width": 1080, "height": 1080}
    generation = client.post("/v1/generations", json={"animation_props": props}).json()["id"]
    body = {"generation_id": generation, "codec": codec, "width": 240, "height": 240}
    response = client.post("/v1/renders", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_prores_is_chunked_and_joined_and_vp9_rendered_whole_on_s3(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = make_api(cluster.services)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.headers.update(bearer(app, "cluster-outputs"))
        started = {codec: _render(client, codec) for codec in CASES}
        renders = {codec: finished(client, r["id"]) for codec, r in started.items()}
        for codec, render in renders.items():
            content_type, extension = CASES[codec]
            workers = chunked.chunk_workers(cluster.services, render["id"])
            assert (len(workers) > 1) == (codec == "prores"), workers
            video = httpx.get(render["output_url"], timeout=30)
            assert video.status_code == 200
            assert video.headers["content-type"] == content_type
            assert video.headers["content-disposition"].startswith(
                f'attachment; filename="render-{render["id"]}{extension}"'
            )
            path = tmp_path / f"{codec}{extension}"
            path.write_bytes(video.content)
            probe = ffprobe(path)
            assert (probe["codec_name"], probe["width"], probe["height"]) == (codec, 240, 240)
            assert int(probe["nb_read_frames"]) == FRAMES
            last = decode_rgba(path, "libvpx-vp9" if codec == "vp9" else None)[-1]
            assert last[0, 0, 3] == 0 and last[..., 3].max() > 250  # alpha kept
            poster = httpx.get(render["poster_url"], timeout=30)
            assert poster.headers["content-type"] == "image/png"
            assert poster.content[:8] == b"\x89PNG\r\n\x1a\n"
        url = client.post(
            f"/v1/renders/{renders['vp9']['id']}/download-url",
            json={"disposition": "inline", "filename": "clip"},
        ).json()["url"]
        inline = httpx.get(url, timeout=30)
        assert inline.headers["content-type"] == "video/webm"
        assert inline.headers["content-disposition"].startswith('inline; filename="clip.webm"')

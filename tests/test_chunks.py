"""Chunked renders: planning, segments rendered separately, joined by stream copy."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from renderlab.caps import CapError
from renderlab.render import (
    join_segments,
    plan_chunks,
    render_chunk,
    render_still,
    render_video,
)
from tests.render_helpers import (
    decode_luma,
    ffprobe,
    mean_abs_diff,
    packet_sizes,
    props,
    still_luma,
)


def _covers(chunks: list[tuple[int, int]], total: int) -> bool:
    return (
        chunks[0][0] == 0
        and chunks[-1][1] == total
        and all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    )


@pytest.mark.parametrize("total", [30, 59, 90, 101, 600])
@pytest.mark.parametrize("chunk_size", [None, 1, 20, 33, 100, 1000])
@pytest.mark.parametrize("workers", [1, 2, 7])
def test_plan_covers_every_frame_in_chunks_of_at_least_20(
    total: int, chunk_size: int | None, workers: int
) -> None:
    chunks = plan_chunks(total, chunk_size, workers)
    assert _covers(chunks, total)
    assert all(end - start >= min(20, total) for start, end in chunks)
    if chunk_size is not None and chunk_size >= 20:
        # About chunk_size: a remainder under 20 frames is spread over the other chunks.
        assert all(end - start < chunk_size + 20 for start, end in chunks)


def test_plan_defaults() -> None:
    assert plan_chunks(600) == [(0, 600)]
    assert plan_chunks(600, workers=2) == [(0, 300), (300, 600)]
    assert plan_chunks(30, workers=4) == [(0, 30)]  # 4 chunks would be under 20 frames
    assert plan_chunks(100, 25) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert plan_chunks(10, min_chunk_frames=20) == [(0, 10)]
    for bad in ({"chunk_size": 0}, {"workers": 0}):
        with pytest.raises(CapError):
            plan_chunks(100, **bad)  # type: ignore[arg-type]


def test_chunked_render_decodes_to_the_same_pictures(tmp_path: Path) -> None:
    p = props(style="typewriter", text="Chunks join without re-encoding", duration_in_frames=90)
    whole, chunked = tmp_path / "whole.mp4", tmp_path / "chunked.mp4"
    render_video(p, whole, width=640, height=360)
    seen: list[tuple[int, int]] = []
    result = render_video(
        p,
        chunked,
        width=640,
        height=360,
        chunk_size=20,
        on_progress=lambda d, t: seen.append((d, t)),
    )
    assert result.frames == 90 and seen[-1] == (90, 90)
    a, b = decode_luma(whole), decode_luma(chunked)
    assert len(a) == len(b) == 90
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        assert mean_abs_diff(x, y) < 0.6, index
    info = ffprobe(chunked)
    assert int(info["nb_read_frames"]) == 90 and info["avg_frame_rate"] == "30/1"
    assert float(info["duration"]) == pytest.approx(3.0, abs=1e-3)
    assert not list(tmp_path.glob(".renderlab-*"))  # temporary segments are removed


def test_chunks_rendered_apart_and_joined(tmp_path: Path) -> None:
    p = props(style="slide-up", text="Any process, any machine", duration_in_frames=60)
    segments = []
    for start, end in plan_chunks(60, 25):
        reports: list[tuple[int, int]] = []
        segment = render_chunk(
            p,
            start,
            end,
            tmp_path / f"{start}.mp4",
            width=320,
            height=180,
            on_progress=lambda d, t, r=reports: r.append((d, t)),
        )
        assert reports[-1] == (end - start, end - start)
        segments.append(segment)
    out = join_segments(segments, tmp_path / "joined.mp4", fps=30)
    frames = decode_luma(out)
    assert len(frames) == 60
    for index, luma in enumerate(frames):
        assert mean_abs_diff(luma, still_luma(render_still(p, index, 320, 180))) < 0.6
    # Stream copy: the joined packets are the segments' packets.
    assert packet_sizes(out) == [s for seg in segments for s in packet_sizes(seg)]


def test_segments_of_different_settings_are_not_joined(tmp_path: Path) -> None:
    a = render_chunk(props(), 0, 30, tmp_path / "a.mp4", width=320, height=180)
    b = render_chunk(props(), 30, 60, tmp_path / "b.mp4", width=640, height=360)
    with pytest.raises(ValueError, match="different settings"):
        join_segments([a, b], tmp_path / "out.mp4", fps=30)
    assert not (tmp_path / "out.mp4").exists()


def test_process_pool_render_and_abort(tmp_path: Path) -> None:
    p = props(style="scale", text="Two workers", duration_in_frames=80)
    seen: list[int] = []
    out = tmp_path / "pool.mp4"
    render_video(
        p,
        out,
        width=320,
        height=180,
        workers=2,
        chunk_size=20,
        on_progress=lambda d, t: seen.append(d),
    )
    assert seen[-1] == 80 and seen == sorted(seen)
    assert len(decode_luma(out)) == 80

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Stop

    aborted = tmp_path / "aborted.mp4"
    with pytest.raises(Stop):
        render_video(p, aborted, width=320, height=180, workers=2, chunk_size=20, on_progress=stop)
    assert not aborted.exists()
    assert not list(tmp_path.glob(".renderlab-*"))

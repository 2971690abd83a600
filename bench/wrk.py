"""The API's per-request cost under ``wrk``, as ratios to a bare Starlette JSON route.

    .venv/bin/python bench/wrk.py                   # wrk -t2 -c32 -d10s per route
    .venv/bin/python bench/wrk.py --seconds 5
    .venv/bin/python bench/wrk.py --seconds 6 --rounds 3   # medians of alternated rounds

Needs Debian's ``wrk`` (``apt-get install -y wrk``). In the same run: a bare Starlette app with
one JSON route under uvicorn (uvloop + httptools, no access log: how ``renderlab serve`` runs
its app), then ``renderlab serve --no-access-log`` in a fresh data dir as the README starts it
(SQLite, embedded workers idle), and for each route wrk's requests/s, the server's CPU per
request (from /proc) and the ratio to the bare route. Targets (issue 16): the authenticated
render read >= 0.15x of bare, the generation read about the render read.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from request import _free_port, fade_in, request_to_complete, served

RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def bare_server(port: int) -> None:
    """The reference: one JSON route, nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(_request: object) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, pid: int, seconds: int, headers: dict[str, str]) -> tuple[float, float]:
    """(requests/s, server CPU us per request) of ``wrk -t2 -c32`` on ``url``."""
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = cpu_seconds(pid)
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    used = cpu_seconds(pid) - before
    match = RATE.search(out)
    assert match, out
    rate = float(match.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non_2xx is None, out
    return rate, used / max(rate * seconds, 1) * 1e6


def wait_up(port: int, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the bare server exited")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the bare server did not come up")


def measure_bare(seconds: int) -> tuple[float, float]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port)])
    try:
        wait_up(port, process)
        return run_wrk(f"http://127.0.0.1:{port}/", process.pid, seconds, {})
    finally:
        process.terminate()
        process.wait(10)


def measure_renderlab(seconds: int) -> dict[str, tuple[float, float]]:
    with served() as bench:
        body = fade_in(0)
        body["animation_props"] = {**body["animation_props"], "duration_in_frames": 30}
        timing = request_to_complete(bench, body)
        headers = {"Authorization": f"Bearer {bench.token}"}
        render = bench.client.get(f"/v1/renders/{timing.render_id}", headers=headers).json()
        base, pid = str(bench.client.base_url).rstrip("/"), bench.pid
        routes = {
            "GET /healthz": (f"{base}/healthz", {}),
            "GET /v1/renders/{id}": (f"{base}/v1/renders/{render['id']}", headers),
            "GET /v1/generations/{id}": (
                f"{base}/v1/generations/{render['generation_id']}",
                headers,
            ),
        }
        return {name: run_wrk(url, pid, seconds, h) for name, (url, h) in routes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="bare, then renderlab, N times")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        return bare_server(args.bare_server)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    ratios: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        print(f"-- round {round_}")
        bare, bare_cpu = measure_bare(args.seconds)
        name = "bare Starlette JSON route"
        print(f"{name:<28} {bare:9.0f} req/s  {bare_cpu:6.0f} us CPU/req  1.000x")
        for name, (rate, cpu) in measure_renderlab(args.seconds).items():
            print(f"{name:<28} {rate:9.0f} req/s  {cpu:6.0f} us CPU/req  {rate / bare:.3f}x")
            ratios.setdefault(name, []).append(rate / bare)
    if args.rounds > 1:
        print("-- median ratio to the bare route over the rounds")
        for name, values in ratios.items():
            print(f"{name:<28} {statistics.median(values):.3f}x  (each: "
                  f"{', '.join(f'{v:.3f}' for v in values)})")  # fmt: skip
    return None


if __name__ == "__main__":
    main()

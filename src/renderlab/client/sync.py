"""``Client``: the blocking client."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from renderlab.client import common
from renderlab.client.errors import raise_for

DEFAULT_TIMEOUT = httpx.Timeout(30.0)


class Client:
    """A renderlab API client for one user (``token``); use it as a context manager or call
    :meth:`close`. Every method raises :class:`APIError` (or :class:`RateLimited`) when the
    API refuses."""

    def __init__(self, base_url: str, token: str, *, timeout: float | None = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=common.headers(token), timeout=timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        raise_for(response)
        return response

    # -- the API ----------------------------------------------------------------------------

    def create_generation(
        self, animation_props: dict[str, Any], prompt: str | None = None
    ) -> dict[str, Any]:
        body = {"animation_props": animation_props, "prompt": prompt}
        return self._call("POST", "/v1/generations", json=body).json()

    def start_render(self, generation_id: str, **options: Any) -> dict[str, Any]:
        """Start a render of a stored generation (``width``, ``height``, ``codec``, ...)."""
        body = {"generation_id": generation_id, **options}
        return self._call("POST", "/v1/renders", json=body).json()

    def render(
        self, animation_props: dict[str, Any], prompt: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Start a render of new props in one request (the generation is made with it)."""
        body = common.render_body(animation_props, prompt, options)
        return self._call("POST", "/v1/renders", json=body).json()

    def get_render(self, render_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/renders/{render_id}").json()

    def get_generation(self, generation_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/generations/{generation_id}").json()

    def webhook_deliveries(self, render_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of the render's webhooks, newest first."""
        answer = self._call("GET", f"/v1/renders/{render_id}/webhook-deliveries")
        return list(answer.json()["items"])

    def delete_render(self, render_id: str) -> None:
        self._call("DELETE", f"/v1/renders/{render_id}")

    def quota(self) -> dict[str, Any]:
        return self._call("GET", "/v1/quota").json()

    def wait(
        self,
        render_id: str,
        on_progress: common.Progress | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Follow the render's event stream until it is complete or failed; reconnect when the
        stream drops. Returns the terminal render; ``TimeoutError`` after ``timeout`` s."""
        follower = common.Follower(render_id, on_progress, timeout)
        while True:
            try:
                done = self._follow(follower)
            except (httpx.TransportError, SSEError) as exc:
                follower.failed(exc)
                done = None
            if done is not None:
                return done
            time.sleep(follower.next_delay())

    def _follow(self, follower: common.Follower) -> dict[str, Any] | None:
        timeout = follower.read_timeout()
        with connect_sse(self._http, "GET", follower.path, timeout=timeout) as source:
            if not source.response.is_success:
                source.response.read()
                raise_for(source.response)
            for event in source.iter_sse():
                done = follower.on_event(event)
                if done is not None:
                    return done
        return None

    def download(self, render_or_id: dict[str, Any] | str, path: str | os.PathLike[str]) -> Path:
        """Save the render's output at ``path`` (through a fresh signed URL) and return it."""
        render = self.get_render(common.render_id_of(render_or_id))
        target = Path(path)
        part = common.part_path(target)
        with httpx.stream("GET", common.output_url(render), timeout=DEFAULT_TIMEOUT) as response:
            if not response.is_success:
                response.read()
                raise_for(response)
            with part.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        part.replace(target)
        return target

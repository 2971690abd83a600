"""``AsyncClient``: the same methods as :class:`~renderlab.client.Client`, awaitable."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from renderlab.client import common
from renderlab.client.errors import raise_for
from renderlab.client.sync import DEFAULT_TIMEOUT


class AsyncClient:
    """A renderlab API client for one user, for asyncio code (``async with``)."""

    def __init__(self, base_url: str, token: str, *, timeout: float | None = 30.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=common.headers(token), timeout=timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        raise_for(response)
        return response

    async def create_generation(
        self, animation_props: dict[str, Any], prompt: str | None = None
    ) -> dict[str, Any]:
        body = {"animation_props": animation_props, "prompt": prompt}
        return (await self._call("POST", "/v1/generations", json=body)).json()

    async def start_render(self, generation_id: str, **options: Any) -> dict[str, Any]:
        body = {"generation_id": generation_id, **options}
        return (await self._call("POST", "/v1/renders", json=body)).json()

    async def render(
        self, animation_props: dict[str, Any], prompt: str | None = None, **options: Any
    ) -> dict[str, Any]:
        body = common.render_body(animation_props, prompt, options)
        return (await self._call("POST", "/v1/renders", json=body)).json()

    async def get_render(self, render_id: str) -> dict[str, Any]:
        return (await self._call("GET", f"/v1/renders/{render_id}")).json()

    async def get_generation(self, generation_id: str) -> dict[str, Any]:
        return (await self._call("GET", f"/v1/generations/{generation_id}")).json()

    async def webhook_deliveries(self, render_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of the render's webhooks, newest first."""
        answer = await self._call("GET", f"/v1/renders/{render_id}/webhook-deliveries")
        return list(answer.json()["items"])

    async def delete_render(self, render_id: str) -> None:
        await self._call("DELETE", f"/v1/renders/{render_id}")

    async def quota(self) -> dict[str, Any]:
        return (await self._call("GET", "/v1/quota")).json()

    async def wait(
        self,
        render_id: str,
        on_progress: common.Progress | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """See :meth:`Client.wait`."""
        follower = common.Follower(render_id, on_progress, timeout)
        while True:
            try:
                done = await self._follow(follower)
            except (httpx.TransportError, SSEError) as exc:
                follower.failed(exc)
                done = None
            if done is not None:
                return done
            await asyncio.sleep(follower.next_delay())

    async def _follow(self, follower: common.Follower) -> dict[str, Any] | None:
        timeout = follower.read_timeout()
        async with aconnect_sse(self._http, "GET", follower.path, timeout=timeout) as source:
            if not source.response.is_success:
                await source.response.aread()
                raise_for(source.response)
            async for event in source.aiter_sse():
                done = follower.on_event(event)
                if done is not None:
                    return done
        return None

    async def download(
        self, render_or_id: dict[str, Any] | str, path: str | os.PathLike[str]
    ) -> Path:
        """See :meth:`Client.download`."""
        render = await self.get_render(common.render_id_of(render_or_id))
        target = Path(path)
        part = common.part_path(target)
        async with (
            httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as plain,
            plain.stream("GET", common.output_url(render)) as response,
        ):
            if not response.is_success:
                await response.aread()
                raise_for(response)
            with part.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    handle.write(chunk)
        part.replace(target)
        return target

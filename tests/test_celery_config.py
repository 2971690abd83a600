"""The Celery set-up for long CPU work, checked on its configuration and on the real brokers:
work of started renders is delivered before new renders on Redis and on RabbitMQ, a broker
outage does not fail the request that created a render, and ``renderlab worker`` refuses to
start without a broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.services import build_services
from renderlab.workers.celery_app import CHUNK, JOIN, START, make_celery, priorities, send
from renderlab.workers.dispatch import CeleryDispatcher
from tests.celery_helpers import (
    AMQP_BROKER,
    REDIS_BROKER,
    purge_queue,
    require_amqp,
    require_redis,
    unique_queue,
)


def settings_for(broker: str | None, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, broker_url=broker)


def test_the_app_is_set_up_for_long_cpu_work(tmp_path: Path) -> None:
    limits = Limits(render_timeout_ms=60_000)
    conf = make_celery(settings_for("redis://127.0.0.1:6379/0", tmp_path), limits).conf

    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_reject_on_worker_lost is False, "a crashing task must not loop"
    assert conf.task_soft_time_limit == 60
    assert conf.task_soft_time_limit < conf.task_time_limit <= 90
    longest = conf.task_time_limit + limits.celery_retry_delay_s * (limits.celery_max_retries + 1)
    assert conf.broker_transport_options["visibility_timeout"] > longest
    assert conf.task_ignore_result is True and conf.result_backend is None
    assert conf.accept_content == ["json"]


def test_time_limits_follow_the_render_timeout(tmp_path: Path) -> None:
    conf = make_celery(settings_for("redis://x", tmp_path), Limits(render_timeout_ms=5_000)).conf
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (5, 20)
    assert conf.broker_transport_options["visibility_timeout"] >= 2 * 20


def test_no_broker_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RENDERLAB_BROKER_URL"):
        make_celery(settings_for(None, tmp_path), Limits())


def test_started_work_goes_first_whatever_the_broker_counts_as_high() -> None:
    redis_first = priorities("redis://127.0.0.1:6379/0")
    amqp_first = priorities("amqp://guest:guest@127.0.0.1//")
    assert redis_first[CHUNK] < redis_first[START], "Redis serves the lowest number first"
    assert amqp_first[CHUNK] > amqp_first[START], "RabbitMQ serves the highest number first"
    assert redis_first[JOIN] == redis_first[CHUNK] and amqp_first[JOIN] == amqp_first[CHUNK]
    for url in ("rediss://h:6380/0", "sentinel://h:26379", "redis+socket:///run/redis.sock"):
        assert priorities(url) == redis_first, url
    assert priorities("pyamqp://guest@h//") == amqp_first


@pytest.mark.parametrize("broker", [REDIS_BROKER, AMQP_BROKER], ids=["redis", "rabbitmq"])
def test_the_broker_delivers_chunks_and_joins_before_new_renders(
    broker: str, tmp_path: Path
) -> None:
    (require_redis if broker.startswith("redis") else require_amqp)(broker)
    queue = unique_queue()
    app = make_celery(settings_for(broker, tmp_path), Limits(), queue=queue)
    try:
        with app.connection_for_write() as connection:
            app.amqp.queues[queue].bind(connection.default_channel).declare()
        send(app, START, "new-1")
        send(app, CHUNK, "started", "job:1", 0)
        send(app, START, "new-2")
        send(app, JOIN, "started", "job:1")

        assert _drain(app, queue, 4) == [
            (CHUNK, ["started", "job:1", 0]),
            (JOIN, ["started", "job:1"]),
            (START, ["new-1"]),
            (START, ["new-2"]),
        ]
    finally:
        purge_queue(broker, queue)


def _drain(app: Celery, queue: str, count: int) -> list[tuple[str, list]]:
    """Take ``count`` messages off ``queue`` one at a time, as a prefetch-1 worker would."""
    taken: list[tuple[str, list]] = []
    with app.connection_for_read() as connection:
        bound = app.amqp.queues[queue].bind(connection.default_channel)
        deadline = time.monotonic() + 10
        while len(taken) < count and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            taken.append((message.headers["task"], message.payload[0]))
    return taken


def test_an_unreachable_broker_leaves_the_render_pending_for_the_reconciler(
    tmp_path: Path,
) -> None:
    settings = settings_for("redis://127.0.0.1:1/0", tmp_path)
    limits = Limits()
    app = make_celery(settings, limits)
    dispatcher = CeleryDispatcher(app, build_services(settings, limits))
    started = time.monotonic()
    dispatcher.dispatch("01HZZZZZZZZZZZZZZZZZZZZZZZ")  # no exception reaches the caller
    assert time.monotonic() - started < 5, "the API request waited on the broker"


def test_the_worker_command_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDERLAB_")}
    env["RENDERLAB_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "renderlab", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "RENDERLAB_BROKER_URL" in result.stderr


def test_the_deployment_guide_names_every_environment_variable() -> None:
    guide = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text()
    fields = [*Settings.model_fields, *Limits.model_fields]
    names = [f"RENDERLAB_{field.upper()}" for field in fields]
    missing = [name for name in names if f"`{name}`" not in guide]
    assert not missing, f"docs/deploy.md does not mention {missing}"


def test_a_started_dispatcher_never_holds_a_request_on_the_broker(tmp_path: Path) -> None:
    """Started (as ``serve`` starts it), sends leave from the dispatcher's own thread: with the
    broker away, creating renders answers at once instead of waiting out the connect timeout."""
    settings = settings_for("redis://127.0.0.1:1/0", tmp_path)
    limits = Limits()
    dispatcher = CeleryDispatcher(make_celery(settings, limits), build_services(settings, limits))
    dispatcher.start()
    try:
        started = time.monotonic()
        for i in range(3):
            dispatcher.dispatch(f"01HZZZZZZZZZZZZZZZZZZZZZZ{i}")
        assert time.monotonic() - started < 0.2
    finally:
        dispatcher.stop(10)


def test_a_started_dispatcher_delivers_from_its_own_thread(tmp_path: Path) -> None:
    require_redis(REDIS_BROKER)
    queue = unique_queue()
    settings, limits = settings_for(REDIS_BROKER, tmp_path), Limits()
    app = make_celery(settings, limits, queue=queue)
    dispatcher = CeleryDispatcher(app, build_services(settings, limits))
    try:
        with app.connection_for_write() as connection:
            app.amqp.queues[queue].bind(connection.default_channel).declare()
        dispatcher.start()
        dispatcher.dispatch("01HZZZZZZZZZZZZZZZZZZZZZZZ")
        assert _drain(app, queue, 1) == [(START, ["01HZZZZZZZZZZZZZZZZZZZZZZZ"])]
    finally:
        dispatcher.stop(10)
        purge_queue(REDIS_BROKER, queue)

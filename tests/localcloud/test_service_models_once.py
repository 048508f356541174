"""``install_service_models_once``: requests to a service arriving together before its model
is loaded wait for one load of it, and get the model moto caches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import moto.core.responses as moto_responses
import moto.core.routing as moto_routing
import moto.core.utils as moto_utils
import pytest

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dispatch import install_service_models_once


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every load of a model file by moto, each taking 50 ms, from an empty model cache."""
    loaded: list[str] = []
    load = moto_utils._load_service_model

    def slow(service_name: str, model_name: str) -> Any:
        loaded.append(f"{service_name}/{model_name}")
        time.sleep(0.05)
        return load(service_name, model_name)

    monkeypatch.setattr(moto_utils, "_load_service_model", slow)
    moto_utils.get_service_model.cache_clear()
    yield loaded
    # The next user of the cache loads the model again, with moto's own loader.
    moto_utils.get_service_model.cache_clear()


def _at_once(get: Any, count: int) -> list[Any]:
    start = threading.Barrier(count)
    models: list[Any] = []

    def call() -> None:
        start.wait()
        models.append(get("dynamodb"))

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return models


def test_requests_arriving_together_load_the_model_once(loads: list[str]) -> None:
    # GIVEN the fix installed and no model of DynamoDB loaded yet
    patches = PatchSet()
    install_service_models_once(patches)
    try:
        # WHEN four request threads ask for it at the same moment, through moto's parser
        models = _at_once(moto_responses.get_service_model, 4)
    finally:
        patches.restore()
    # THEN the model file was read once (moto alone: once per thread), and all four got
    # the one model moto cached
    assert loads == ["dynamodb/service-2"]
    assert len(models) == 4
    assert all(model is moto_utils.get_service_model("dynamodb") for model in models)
    assert models[0].service_name == "dynamodb"


def test_restoring_gives_every_module_moto_s_function_back() -> None:
    # GIVEN the fix installed
    original = moto_utils.get_service_model
    patches = PatchSet()
    install_service_models_once(patches)
    assert moto_routing.get_service_model is not original
    # WHEN restored / THEN the three modules name moto's function again
    patches.restore()
    assert moto_utils.get_service_model is original
    assert moto_responses.get_service_model is original
    assert moto_routing.get_service_model is original

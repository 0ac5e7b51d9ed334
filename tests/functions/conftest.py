"""Fixtures for the function image tests: build the resizer on the host engine and run it.

Needs a Docker engine and the local base image; without them the tests that need Docker are
skipped with the reason.  Traffic goes only to 127.0.0.1 (a randomly published port).
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The unit tests' conftest puts ansible_collections.onmetal.faas on sys.path (it is idempotent); run it
# here too, so the shared test doubles import when tests/functions runs on its own.
_spec = importlib.util.spec_from_file_location(
    "onmetal_faas_collection_path", os.path.join(os.path.dirname(HERE), "unit", "conftest.py")
)
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))

import fn_helpers  # noqa: E402


@pytest.fixture(scope="session")
def resize_image():
    reason = fn_helpers.docker_ready()
    if reason:
        pytest.skip(reason)
    image, _seconds, _built = fn_helpers.build.build(
        os.path.join(fn_helpers.FUNCTIONS, "resize"), "onmetal-faas-test/resize", fn_helpers.BASE_IMAGE
    )
    return image


@pytest.fixture(scope="session")
def resizer(resize_image):
    container = fn_helpers.Container(resize_image)
    try:
        container.wait_healthy_http()
        yield container
    finally:
        container.remove()

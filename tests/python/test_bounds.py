"""Bounds that must hold on both backends.

- A path whose ``__fspath__`` raises anything fails that item alone.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from conftest import hashlib_digest
from sky_async._api import Api
from test_tail import oracle as tail_oracle


class Caller:
    """The same batch call through the coroutines (``async``) or their blocking twins (``sync``)."""

    def __init__(self, api: Api, mode: str) -> None:
        self.api = api
        self.mode = mode

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.api.sync, name)(*args, **kwargs)
        return await getattr(self.api, name)(*args, **kwargs)


@pytest.fixture(params=["async", "sync"])
def call(api: Api, request: pytest.FixtureRequest) -> Caller:
    return Caller(api, request.param)


# --- one bad path -------------------------------------------------------------------------------


class FailingPath:
    """A path object whose __fspath__ raises *error*."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __fspath__(self) -> str:
        raise self.error


FSPATH_ERRORS = [
    RuntimeError("no path yet"),
    ValueError("not resolvable"),
    OSError(errno.EIO, "the path's store failed"),
    LookupError("unknown key"),
]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.log"
    path.write_bytes(b"one\ntwo\n")
    return path


def expected_result(function: str, path: Path) -> Any:
    return hashlib_digest(path) if function == "hash_files" else tail_oracle(path.read_bytes(), 1)


BATCH_FUNCTIONS = {"hash_files": (), "tail_files": (1,)}


@pytest.mark.parametrize("error", FSPATH_ERRORS, ids=lambda error: type(error).__name__)
@pytest.mark.parametrize("function", list(BATCH_FUNCTIONS))
async def test_fspath_raising_fails_only_its_item(
    call: Caller, good: Path, function: str, error: BaseException
) -> None:
    args = BATCH_FUNCTIONS[function]
    results = await call(function, [good, FailingPath(error), good], *args, return_exceptions=True)
    assert results[0] == results[2] == expected_result(function, good)
    assert results[1] is error


@pytest.mark.parametrize("error", FSPATH_ERRORS, ids=lambda error: type(error).__name__)
@pytest.mark.parametrize("function", list(BATCH_FUNCTIONS))
async def test_without_return_exceptions_the_first_bad_item_in_input_order_is_raised(
    call: Caller, good: Path, tmp_path: Path, function: str, error: BaseException
) -> None:
    args = BATCH_FUNCTIONS[function]
    missing = tmp_path / "missing"
    with pytest.raises(type(error)) as info:
        await call(function, [good, FailingPath(error), missing], *args)
    assert info.value is error
    with pytest.raises(FileNotFoundError) as not_found:
        await call(function, [good, missing, FailingPath(error)], *args)
    assert not_found.value.filename == missing


@pytest.mark.parametrize("error", FSPATH_ERRORS, ids=lambda error: type(error).__name__)
async def test_fspath_raising_in_a_single_path_call_raises_it(call: Caller, error: BaseException) -> None:
    for function, args in (("hash_file", ()), ("read_last_n_lines", (1,))):
        with pytest.raises(type(error)) as info:
            await call(function, FailingPath(error), *args)
        assert info.value is error


@pytest.mark.parametrize("function", list(BATCH_FUNCTIONS))
async def test_keyboard_interrupt_from_fspath_still_stops_the_call(
    call: Caller, good: Path, function: str
) -> None:
    with pytest.raises(KeyboardInterrupt):
        await call(function, [good, FailingPath(KeyboardInterrupt())], *BATCH_FUNCTIONS[function])


@pytest.mark.parametrize("function", list(BATCH_FUNCTIONS))
async def test_str_path_that_cannot_be_encoded_fails_only_its_item(
    call: Caller, good: Path, function: str
) -> None:
    # A lone surrogate outside surrogateescape's range: os.fsencode raises UnicodeEncodeError.
    # Every path a str takes tail's faster encoding, which must not fail the whole batch.
    results = await call(
        function, [str(good), "bad\ud800", str(good)], *BATCH_FUNCTIONS[function], return_exceptions=True
    )
    assert results[0] == results[2] == expected_result(function, good)
    assert isinstance(results[1], UnicodeEncodeError)

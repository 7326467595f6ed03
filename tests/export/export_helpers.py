"""Helpers for the export tests (a module name of its own, so it never shadows another folder's helpers)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Fail any outgoing connection (and tell hub clients they are offline) while inside."""

    def refuse(self, address):
        raise AssertionError(f"unexpected network connection to {address!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


def link_checkpoint(source: Path, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    """A checkpoint folder sharing the (large) files of `source` by symlink, minus `skip`."""
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in skip:
            os.symlink(path, dest / path.name)
    return dest


def link_artifact(source: Path, dest: Path, copy: tuple[str, ...] = ("manifest.json",)) -> Path:
    """An artifact folder sharing `source`'s files by symlink, with real copies of `copy` to tamper with."""
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if path.name in copy:
            (dest / path.name).write_bytes(path.read_bytes())
        else:
            os.symlink(path, dest / path.name)
    return dest

"""The SQLite database is private to the server's user (round two, operational defaults): a new
file and the folders made for it are created 0600/0700 before SQLite opens them, SQLite's side
files follow the database file's mode, and an existing file open to others is narrowed at start
with a log line."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.server.harness import ServerEnv
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy import migrate
from tokensmith.storage.sqlalchemy.engine import create_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def common_umask() -> Iterator[None]:
    """The usual umask (022): without care, new files would be readable by every user."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("common_umask")
async def test_new_database_file_its_side_files_and_folders_are_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.storage")
    before = mode(tmp_path)
    path = tmp_path / "data" / "auth" / "tokensmith.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:  # held open: the WAL and shared-memory files exist
            await conn.execute(text("SELECT count(*) FROM ts_clients"))
            side_files = [Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(p.exists() for p in side_files)
            assert {p.name: mode(p) for p in [path, *side_files]} == {
                p.name: 0o600 for p in [path, *side_files]
            }
    finally:
        await engine.dispose()
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "auth") == 0o700
    assert mode(tmp_path) == before  # a folder that was there is not the server's to change
    assert not caplog.records  # created private, not narrowed after the fact


@pytest.mark.usefixtures("common_umask")
async def test_existing_database_open_to_others_is_narrowed_at_start(
    tmp_path: Path,
    sqlite_template: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "tokensmith.db"
    shutil.copyfile(sqlite_template, path)
    os.chmod(path, 0o664)
    leftover = Path(f"{path}-journal")  # e.g. from a copy, or an older journal mode
    os.close(os.open(leftover, os.O_CREAT | os.O_WRONLY, 0o644))
    unrelated = tmp_path / "unrelated.txt"
    os.close(os.open(unrelated, os.O_CREAT | os.O_WRONLY, 0o644))
    caplog.set_level(logging.WARNING, logger="tokensmith.storage")
    settings = Settings(
        issuer=ISSUER,
        database_url=f"sqlite+aiosqlite:///{path}",
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        assert (await env.http.get("/readyz")).status_code == 200
        assert mode(path) == 0o600
        assert mode(Path(f"{path}-wal")) == 0o600
    assert mode(leftover) == 0o600
    assert mode(unrelated) == 0o644  # only the database's own files
    narrowed = [r.getMessage() for r in caplog.records if "narrowed" in r.getMessage()]
    assert f"narrowed the mode of {path} from 0664 to 0600" in narrowed
    assert f"narrowed the mode of {leftover} from 0644 to 0600" in narrowed


@pytest.mark.usefixtures("common_umask")
async def test_private_database_is_left_alone_without_a_log_line(
    tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokensmith.db"
    shutil.copyfile(sqlite_template, path)
    os.chmod(path, 0o600)
    caplog.set_level(logging.WARNING, logger="tokensmith.storage")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert mode(path) == 0o600
    assert not [r for r in caplog.records if r.name == "tokensmith.storage"]

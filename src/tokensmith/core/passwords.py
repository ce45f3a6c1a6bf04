"""User passwords: argon2id (RFC 9106) through argon2-cffi, and login names.

A wrong password and an unknown user cost the same: for an unknown user the hasher verifies
against a dummy hash made with the same parameters (no user enumeration by timing).

argon2 is deliberately slow (tens to hundreds of milliseconds of CPU and 64 MiB per hash): run on
the event loop, twenty logins stall every other request for seconds. The server therefore checks
passwords with ``check``, which runs the verification (and the re-hash of an outdated hash) on a
bounded thread pool owned by the server's lifespan; argon2-cffi releases the GIL while hashing,
so the loop keeps serving. The synchronous methods remain for the CLI.

The pool's threads are bounded and so is its queue: at most ``limit`` operations are admitted
at once (running or waiting, ``password_hash_workers + password_hash_queue``); one more is
refused at once with ``HashingBusy`` (503 with ``Retry-After``) rather than waiting tens of
seconds. A place is taken by ``admit`` and given back when the job it ran *finishes* (or is
cancelled before it started), not when its caller stops waiting: a cancelled request's hash
keeps its thread until it is done, and keeps its place too. A login takes its place before
its attempt is reserved on the throttling counters (``core.interaction.begin_login``), so a
refused login writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokensmith.core.errors import HashingBusy

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of ``Passwords.check``."""

    ok: bool
    new_hash: str | None = field(default=None, repr=False)
    """The password hashed again with the current parameters, when it matched a hash made with
    other ones (the only moment the password is at hand to upgrade it)."""


class Admission:
    """A place among the operations the hashing pool admits (``Passwords.admit``): handed to
    the one job it runs, which gives it back when it finishes; ``close`` gives back a place
    that ran nothing (a no-op once a job has it). A context manager closing on exit."""

    __slots__ = ("_open", "_passwords")

    def __init__(self, passwords: Passwords) -> None:
        self._passwords = passwords
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._passwords._release()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the pool; the place is the job's until the job is done."""
        if not self._open:
            raise RuntimeError("this admission has been used or closed")
        self._open = False
        passwords = self._passwords
        if passwords._executor is None:  # unbounded (no limit without an executor)
            passwords._release()
            return await asyncio.get_running_loop().run_in_executor(None, fn)
        try:
            job: Future[T] = passwords._executor.submit(fn)
        except BaseException:
            passwords._release()
            raise
        # on the pool's thread when the job ends, or wherever it is cancelled before starting
        job.add_done_callback(passwords._release_job)
        return await asyncio.wrap_future(job)


class Passwords:
    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost: int,
        parallelism: int,
        executor: Executor | None = None,
        limit: int | None = None,
    ) -> None:
        """``executor`` runs ``check``; ``None`` means the event loop's default executor (still
        off the loop, but not bounded by a setting). ``limit``: the operations admitted at once
        (running or waiting, ``None``: no bound; only with an ``executor``)."""
        self._hasher = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._dummy = self._hasher.hash("tokensmith dummy password for unknown users")
        self._executor = executor
        self._limit = limit if executor is not None else None
        self._lock = threading.Lock()  # places are given back from the pool's threads
        self._pending = 0
        self.refused = 0
        """Operations refused because the pool was full (``HashingBusy``), for ``/metrics``."""

    @property
    def pending(self) -> int:
        """Operations admitted and not yet finished (running, waiting, or about to be run)."""
        return self._pending

    def admit(self) -> Admission:
        """A place for one operation, or ``HashingBusy`` when ``limit`` are already admitted."""
        with self._lock:
            if self._limit is not None and self._pending >= self._limit:
                self.refused += 1
                raise HashingBusy(self._pending)
            self._pending += 1
        return Admission(self)

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def _release_job(self, _job: object) -> None:
        self._release()

    async def check(
        self, password_hash: str | None, password: str, *, admission: Admission | None = None
    ) -> PasswordCheck:
        """``verify`` (and, on a match with outdated parameters, ``hash``) on the worker pool,
        never on the event loop; ``None`` (unknown user) costs the same as a wrong password.
        ``admission``: a place taken earlier (``admit``), else one is taken now."""
        return await (admission or self.admit()).run(
            partial(self.check_sync, password_hash, password)
        )

    def check_sync(self, password_hash: str | None, password: str) -> PasswordCheck:
        """What ``check`` runs on a pool thread."""
        if not self.verify(password_hash, password) or password_hash is None:
            return PasswordCheck(False)
        if self.needs_rehash(password_hash):
            return PasswordCheck(True, self._hasher.hash(password))
        return PasswordCheck(True)

    async def run(
        self, fn: Callable[..., T], /, *args: object, admission: Admission | None = None
    ) -> T:
        """``fn(*args)`` on the hashing pool, off the event loop (an ``Accounts``
        implementation's ``verify_password``); ``HashingBusy`` when the pool is full."""
        return await (admission or self.admit()).run(partial(fn, *args))

    async def hash_async(self, password: str) -> str:
        """``hash`` on the worker pool, off the event loop (a new password being chosen);
        ``HashingBusy`` when the pool is full."""
        return await self.admit().run(partial(self.hash, password))

    def hash(self, password: str) -> str:
        check_password_policy(password)
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with ``None`` (unknown user) spend the same time."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            ok = self._hasher.verify(password_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


_SCRIPT_GROUPS = {"HIRAGANA": "JAPANESE", "KATAKANA": "JAPANESE", "CJK": "HAN", "HANGUL": "HAN"}


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK`` ...)."""
    word = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    return _SCRIPT_GROUPS.get(word, word)


def check_single_script(login: str) -> None:
    """Refuse a username whose letters come from more than one script (``admin`` spelt with a
    Cyrillic small a beside Latin letters): a mixed-script name is how look-alikes of another
    account are made (UTS #39 §5.1 "single script"; checklist W-88). Japanese may mix kana and
    Han."""
    scripts = {_script(ch) for ch in login if unicodedata.category(ch).startswith("L")}
    if "JAPANESE" in scripts:
        scripts.discard("HAN")
    if len(scripts) > 1:
        raise ValueError("a username must not mix letters of different scripts")


def normalize_login(value: str) -> str:
    """Normalise a username or e-mail for storage and lookup (NFKC, case-folded, trimmed).

    Kelvin sign and fullwidth letters fold to their ASCII forms, so look-alike duplicates collide
    (RFC 8265 §3.3 in spirit); control and zero-width characters are refused, and so are
    unassigned, private-use and surrogate code points (RFC 8264 §9.13: Unicode's normalisation
    stability does not cover unassigned code points, so a name holding one could fold
    differently after a Unicode update).
    """
    folded = unicodedata.normalize("NFKC", value).strip().casefold()
    if not folded or len(folded) > 200:
        raise ValueError("a login name needs 1 to 200 characters")
    for ch in folded:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES or (ch.isspace() and ch != " "):
            raise ValueError("a login name must not contain control or invisible characters")
    if " " in folded:
        raise ValueError("a login name must not contain spaces")
    return folded


_ATEXT = "a-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _plain(part: str) -> str:
    """``part`` with its non-ASCII letters and digits (an internationalised address) as ``a``,
    for the ASCII patterns."""
    return "".join("a" if ord(ch) > 127 and ch.isalnum() else ch for ch in part)


def normalize_email(value: str) -> str:
    """A normalised e-mail address (``normalize_login``); ``ValueError`` unless it is a plain
    mailbox: a dot-atom local part (RFC 5322 ``atext``, the HTML ``type=email`` rule) and a host
    name of at least two labels, letters and digits of any script allowed.

    No quoted local parts, comments, display names, address lists, IP literals or ``:``, ``,``,
    ``;``, ``<``, ``>``: what a mail library could read as another recipient than the address
    that is stored and marked verified, or a mail client as a link in the notices naming it."""
    email = normalize_login(value)
    if len(email) > 320:
        raise ValueError("an e-mail address has at most 320 characters")
    local, at, domain = email.rpartition("@")
    labels = _plain(domain).split(".")
    if (
        not at
        or len(local) > 64
        or not _LOCAL.fullmatch(_plain(local))
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError("not an e-mail address")
    return email

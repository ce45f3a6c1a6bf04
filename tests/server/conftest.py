"""Fixtures of the server tests that send mail: ``inbox`` (a real local SMTP server) and
``mail_env`` (a server that sends its mail there), from ``tests.support.mail``."""

from tests.support.mail import inbox, mail_env  # noqa: F401 (fixtures)

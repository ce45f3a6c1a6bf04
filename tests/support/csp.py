"""Browser tests: collect the Content-Security-Policy violations a page reports."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page


def watch_csp(page: Page) -> list[str]:
    violations: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", seen)
    return violations

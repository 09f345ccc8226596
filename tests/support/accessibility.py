"""Accessibility checks in the browser tests: axe-core (vendored, MPL-2.0) run on the page as it is now.

axe is injected with ``page.evaluate`` (DevTools evaluation is not bound by the page's CSP, unlike a script tag),
so the app's strict Content-Security-Policy stays as it is in production while the check runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_SOURCE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
SERIOUS = ("serious", "critical")
SETTLED = """
async () => {
  const ending = document.getAnimations().filter((animation) => {
    const timing = animation.effect ? animation.effect.getComputedTiming() : {};
    return timing.iterations !== Infinity && animation.playState !== "finished";
  });
  await Promise.all(ending.map((animation) => animation.finished.catch(() => null)));
}
"""
"""Waits for the transitions and animations that end (not a blinking caret): a panel fading in has, for a moment,
too little contrast."""
RUN_AXE = """
async (options) => {
  const results = await axe.run(document, options);
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    helpUrl: violation.helpUrl,
    nodes: violation.nodes.map((node) => ({
      target: node.target.map(String).join(" "),
      summary: node.failureSummary || "",
    })),
  }));
}
"""


@cache
def axe_source() -> str:
    return AXE_SOURCE.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]
    summary: str

    def describe(self, shown: int = 3) -> str:
        more = f" (+{len(self.targets) - shown} more)" if len(self.targets) > shown else ""
        where = ", ".join(self.targets[:shown]) + more
        first = self.summary.replace("\n", " ").strip()
        return f"[{self.impact}] {self.rule}: {self.help} — at {where} — {first} — {self.help_url}"


def axe_violations(page: Page, *, impacts: tuple[str, ...] = SERIOUS) -> list[Violation]:
    """The violations of ``impacts`` (serious and critical by default) axe finds on ``page`` right now."""
    page.evaluate(SETTLED)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    found = page.evaluate(RUN_AXE, options)
    return [
        Violation(
            rule=item["id"],
            impact=item["impact"] or "",
            help=item["help"],
            help_url=item["helpUrl"],
            targets=tuple(node["target"] for node in item["nodes"]),
            summary=item["nodes"][0]["summary"] if item["nodes"] else "",
        )
        for item in found
        if item["impact"] in impacts
    ]


def assert_accessible(page: Page, label: str) -> None:
    """Fails with one readable line per rule when axe finds a serious or critical violation on ``page``."""
    violations = axe_violations(page)
    assert not violations, f"{label}: {len(violations)} serious/critical axe violation(s):\n" + "\n".join(
        violation.describe() for violation in violations
    )

"""The README is the way in and the docs site holds the rest: what `mkdocs build --strict` (in `make test`) cannot
see, because the README is not a page of the site. Links between the site's pages are the strict build's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# Markdown links and images, inline form: [text](target) with no space in the target.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_stays_a_quick_start():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move the detail into docs/"


def test_readme_opens_with_make_plan_then_make_test():
    """CI and users rely on these two commands, and on finding them first."""
    commands = re.findall(r"^make \w+", README.read_text(), flags=re.M)
    assert commands[:2] == ["make plan", "make test"]


def test_readme_links_resolve_in_a_clone():
    text = README.read_text()
    local = [t for t in LINK.findall(text) if not re.match(r"[a-z]+://", t)]
    assert any(t.startswith("docs/") for t in local), "the README links into the docs"
    for target in local:
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).is_file(), f"README.md links to {target}, which is not in the repository"
        else:
            headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README.md links to #{anchor}, which is no heading of it"


def test_no_page_cites_a_path_outside_the_repository():
    """A clone has no ../shared/: cite a document by its title, or say what it measured."""
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        assert "../shared" not in path.read_text(), path.relative_to(ROOT)


def test_make_help_lists_every_target():
    """`make help` prints the `## target: text` lines: every phony target has one, and each names a real target."""
    text = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.+)$", text, flags=re.M).group(1).split())
    helped = set(re.findall(r"^## ([a-z-]+): ", text, flags=re.M))
    defined = set(re.findall(r"^([a-z-]+):", text, flags=re.M))
    assert phony == helped and helped <= defined
    # `make plan` needs the runtime only; the test tools come with the targets that use them.
    assert re.search(r"^plan: \$\(VENV\)/\.runtime$", text, flags=re.M)
    assert re.search(r"^test: \$\(VENV\)/\.installed", text, flags=re.M)

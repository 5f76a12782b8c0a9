"""Every relative link in README.md and docs/*.md leads somewhere: a file that exists, a heading that exists."""

from __future__ import annotations

import re

import pytest
from doc_pages import DOC_PAGES, anchors, page_name, prose
from helpers import REPO

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _links() -> list[tuple[str, str]]:
    found = []
    for page in DOC_PAGES:
        for target in _LINK.findall(prose(page.read_text(encoding="utf-8"))):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                found.append((page_name(page), target))
    return found


LINKS = _links()


def test_the_docs_have_the_links_this_test_reads():
    pages = {page for page, _ in LINKS}
    assert {"README.md", "docs/index.md", "docs/results.md", "docs/configuration-reference.md"} <= pages
    assert len(LINKS) >= 100


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p}->{t}" for p, t in LINKS])
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    file = (REPO / page).parent / path if path else REPO / page
    assert file.exists(), f"{page}: link to {target}: {file.relative_to(REPO)} does not exist"
    if anchor:
        assert file.suffix == ".md", f"{page}: link to {target}: an anchor needs a markdown page"
        valid = anchors(file.read_text(encoding="utf-8"))
        assert anchor in valid, f"{page}: link to {target}: no heading with that anchor; the page has: {sorted(valid)}"


def test_the_readme_is_one_page_with_the_cpu_cost_markers():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move reference and results to docs/ (at most 250)"
    # the measured CPU cost of `make train` sits between these markers, each on its own line
    assert lines.index("<!-- cpu-cost -->") < lines.index("<!-- /cpu-cost -->")


def test_every_docs_page_is_listed_in_the_index():
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    for page in DOC_PAGES:
        if page.parent.name == "docs" and page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not link {page.name}"

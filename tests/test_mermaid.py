"""Every Mermaid diagram the project writes, rendered by the real Mermaid (mermaid-cli, pinned in
tools/mermaid/package-lock.json, on Debian's Chromium; both installed by .ci/run): the review's
pies (the cost by component, and with --base what the change adds and removes), the docs' and
the README's diagrams. A parse error fails, and so does a pie whose slice labels overlap or whose
slice Mermaid drops (it leaves out slices under 1%).

mermaid-cli exits 0 on a pie it cannot parse: it draws Mermaid's "Syntax error in text" diagram
instead (seen with 11.17.0). So each SVG is also read for what Mermaid drew."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from platformctl import cli, report, review
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.e2e  # pytest -m e2e (.ci/run runs it after the suite)

MMDC = REPO / "tools" / "mermaid" / "node_modules" / ".bin" / "mmdc"
CHROMIUM = (os.environ.get("PUPPETEER_EXECUTABLE_PATH") or shutil.which("chromium")
            or shutil.which("chromium-browser"))
BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.DOTALL | re.MULTILINE)
LABEL = re.compile(r'<text transform="translate\(([-\d.e]+),([-\d.e]+)\)" class="slice"[^>]*>'
                   r"([^<]*)</text>")
SECTION_TEXT_PX = 17  # Mermaid's pie themeVariables.pieSectionTextSize
CHAR_EM = 0.62  # a wide estimate of a digit's or "%"'s advance in Mermaid's default font


@pytest.fixture(scope="module", autouse=True)
def _mermaid_here():
    require_tool(MMDC.is_file() and bool(CHROMIUM),
                 "the real Mermaid is not installed: .ci/run installs it (`npm ci "
                 "--ignore-scripts` in tools/mermaid, Debian's chromium)")


def render(tmp_path: Path, blocks: list[str]) -> list[str]:
    """Each block rendered by mermaid-cli in one browser: the SVGs, in order. Fails on a
    non-zero exit or on the error diagram Mermaid draws for a block it cannot parse."""
    source = tmp_path / "diagrams.md"
    source.write_text("".join(f"```mermaid\n{b.rstrip()}\n```\n\n" for b in blocks))
    config = tmp_path / "puppeteer.json"
    # The tests run as root in CI's containers, where Chromium's sandbox cannot start.
    config.write_text(json.dumps({"executablePath": CHROMIUM, "args": ["--no-sandbox"]}))
    result = subprocess.run([str(MMDC), "--quiet", "--puppeteerConfigFile", str(config),
                             "--input", str(source), "--output", str(tmp_path / "out.md")],
                            capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    svgs = [(tmp_path / f"out-{n}.svg").read_text() for n in range(1, len(blocks) + 1)]
    for block, svg in zip(blocks, svgs, strict=True):
        drawn = re.search(r'aria-roledescription="([^"]+)"', svg)
        assert drawn and drawn.group(1) != "error" and "Syntax error" not in svg, (
            f"Mermaid could not draw:\n{block}")
    return svgs


def overlapping_labels(svg: str) -> list[tuple[str, str]]:
    """Pairs of a pie's slice labels ("48%") whose boxes overlap, from where Mermaid put them."""
    labels = [(float(x), float(y), text) for x, y, text in LABEL.findall(svg)]
    boxes = [(x, y, len(text) * CHAR_EM * SECTION_TEXT_PX / 2, SECTION_TEXT_PX / 2, text)
             for x, y, text in labels]
    return [(a[4], b[4]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if abs(a[0] - b[0]) < a[2] + b[2] and abs(a[1] - b[1]) < a[3] + b[3]]


def pies_hold(blocks: list[str], svgs: list[str]) -> None:
    """Every slice written is drawn (none dropped as under 1%) and no two labels overlap."""
    for block, svg in zip(blocks, svgs, strict=True):
        if not block.startswith("pie"):
            continue
        slices = [line for line in block.splitlines() if re.match(r'\s+".*" : [\d.]+$', line)]
        assert len(LABEL.findall(svg)) == len(slices), block
        assert not overlapping_labels(svg), (block, overlapping_labels(svg))


def test_every_diagram_of_the_docs_renders(tmp_path):
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    blocks = [b for path in files for b in BLOCK.findall(path.read_text())]
    assert len(blocks) >= 4  # the README's two, the design's flowchart, the review's sample
    assert any(b.startswith("flowchart") for b in blocks)  # docs/design.md, generated
    pies_hold(blocks, render(tmp_path, blocks))


def test_the_review_comment_and_its_change_pies_render(tmp_path, one_review_per_stack):
    """prod's comment against a base where the change moves money between components: the
    cost pie, the pie of what it adds and of what it removes."""
    head = copy.deepcopy(cli.review_document("prod", REPO))
    base = copy.deepcopy(head)
    by = base["cost"]["by_component"]
    by["Network"] = round(by["Network"] + 12.5, 2)
    by["Cluster"] = round(by["Cluster"] - 30.25, 2)
    by["Database"] = round(by["Database"] - 4.0, 2)
    base["total_monthly_usd"] = round(base["total_monthly_usd"] - 21.75, 2)
    review.attach_diff(base, head)
    blocks = BLOCK.findall(report.render_markdown(head))
    assert len(blocks) == 3
    pies_hold(blocks, render(tmp_path, blocks))


SHARES = {
    "even": [0.04] * 25,                               # every slice at the threshold
    "one large": [0.5, *[0.025] * 20],                 # one large, many small
    "slivers": [0.6, 0.2, 0.1, 0.05, *[0.005] * 10],   # slivers Mermaid would drop
    "two small": [0.3, 0.3, 0.3, 0.045, 0.045, 0.01],
    "lone sliver": [0.7, 0.295, 0.005],                # under 1% even on its own
}


def test_pie_slices_never_overlap_nor_vanish(tmp_path):
    """Shares that put many small slices side by side, through pie_slices, drawn by Mermaid
    (one browser for all); and the measure itself: two 1% slices side by side, which
    pie_slices never writes, put their labels on top of each other."""
    blocks = []
    for name, shares in SHARES.items():
        rows = [(f"component-{n}", 1, round(1000 * share, 2)) for n, share in enumerate(shares)]
        blocks.append(f"pie showData\n    title {name}\n" + "".join(
            f'    "{n}" : {a:.2f}\n' for n, a in report.pie_slices(rows)))
    raw = 'pie\n    "a" : 49\n    "b" : 49\n    "c" : 1\n    "d" : 1'
    svgs = render(tmp_path, [*blocks, raw])
    pies_hold(blocks, svgs[:-1])
    assert overlapping_labels(svgs[-1]) == [("1%", "1%")]


def test_a_pie_mermaid_cannot_parse_fails(tmp_path):
    """The check is not mermaid-cli's exit code alone: it exits 0 on this."""
    with pytest.raises(AssertionError, match="Mermaid could not draw"):
        render(tmp_path, ['pie showData\n    "Cluster" 84.29'])

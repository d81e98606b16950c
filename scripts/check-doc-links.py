#!/usr/bin/env python3
"""Checks the links of the book (docs/src/) and of README.md; run by scripts/check-book.sh.

    check-doc-links.py summary   every page SUMMARY.md names exists (run before the build)
    check-doc-links.py links     every relative link resolves (run after `mdbook build docs`)

A relative link must name a file or folder of the repository and, with a #fragment, a
heading of the page it points to, its id made as mdBook makes it (lowercase, whitespace to
'-', punctuation dropped, repeats numbered -1, -2). A book page may not link to a .md file
outside docs/src or to one SUMMARY.md leaves out: mdBook turns such links into .html
files it never writes. `{{#include}}` targets and their anchors must exist. After the
build, the ids computed here must be ids of the built HTML, so the two cannot drift apart.
Prints every broken link with its file and line, and exits 1 if there is one.
"""

import html
import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = DOCS / "src"
BUILT = DOCS / "book"
SUMMARY = SRC / "SUMMARY.md"

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s]+)\s*\}\}")
# [text](target) and ![alt](target), with an optional "title"; <target> for odd paths.
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ATTR = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]*)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
HTML_ID = re.compile(r"<h[1-6][^>]*\bid=\"([^\"]*)\"")


def summary_pages():
    """(line, path) of every page SUMMARY.md links to, relative to docs/src."""
    pages = []
    for number, line in enumerate(SUMMARY.read_text(encoding="utf-8").splitlines(), 1):
        for match in INLINE_LINK.finditer(line):
            target = match.group(1).strip("<>")
            if target and not SCHEME.match(target):
                pages.append((number, target.split("#")[0]))
    return pages


def include_lines(text, spec):
    """The lines `{{#include file:spec}}` takes: a line, a range or an anchor's lines."""
    lines = text.splitlines()
    if not spec:
        return lines
    parts = spec.split(":")
    if all(p == "" or p.isdigit() for p in parts) and len(parts) <= 2:
        if len(parts) == 1:
            n = int(parts[0])
            return lines[n - 1 : n]
        start = int(parts[0]) - 1 if parts[0] else 0
        end = int(parts[1]) if parts[1] else len(lines)
        return lines[start:end]
    inside, kept, found = False, [], False
    for line in lines:
        if re.search(rf"ANCHOR_END:\s*{re.escape(spec)}\b", line):
            inside = False
        elif re.search(rf"ANCHOR:\s*{re.escape(spec)}\b", line):
            inside, found = True, True
        elif inside and not re.search(r"ANCHOR(_END)?:", line):
            kept.append(line)
    return kept if found else None


def expand_lines(lines, origin, problems, depth=0):
    """`origin`'s lines with their includes expanded, as mdBook renders them:
    (index into `lines`, text); included lines carry the index of their include."""
    out = []
    for index, line in enumerate(lines):
        match = INCLUDE.search(line)
        if not match:
            out.append((index, line))
            continue
        file, _, spec = match.group(1).partition(":")
        target = (origin.parent / file).resolve()
        where = f"{rel(origin)}:{index + 1}: include {match.group(1)}"
        if not target.is_file():
            problems.append(f"{where}: no such file")
            continue
        taken = include_lines(target.read_text(encoding="utf-8"), spec)
        if taken is None:
            problems.append(f"{where}: no anchor '{spec}' in {rel(target)}")
            continue
        # Includes inside the included text resolve from the included file's folder.
        if depth < 10:
            taken = [text for _, text in expand_lines(taken, target, problems, depth + 1)]
        out.extend((index, text) for text in taken)
    return out


def expanded(path, problems):
    """(line number, text) of a page with its includes expanded."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(index + 1, text) for index, text in expand_lines(lines, path, problems)]


def outside_fences(lines):
    """The lines that are not inside fenced code blocks."""
    fenced = None
    for number, line in lines:
        match = FENCE.match(line)
        if match:
            if fenced is None:
                fenced = match.group(1)
            elif match.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            yield number, line


def slug(heading):
    """The id mdBook gives a heading, from its markdown text."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("*", "")  # emphasis markers
    text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", text)  # _emphasis_, not snake_case
    text = html.unescape(text).strip()
    out = []
    for ch in text:
        if ch.isalnum() or ch in "_-":
            out.append(ch.lower() if ch.isascii() else ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def heading_ids(path, problems):
    """Every heading id of a page, numbered as mdBook numbers repeats."""
    ids, seen = [], {}
    for _, line in outside_fences(expanded(path, problems)):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        ids.append(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return ids


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def links_of(lines):
    """(line number, target) of every link outside code."""
    for number, line in outside_fences(lines):
        line = CODE_SPAN.sub("", line)
        for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_ATTR):
            for match in pattern.finditer(line):
                yield number, match.group(1).strip("<>")


def check_summary():
    problems = []
    if not SUMMARY.is_file():
        return [f"{rel(SUMMARY)}: missing"]
    for number, page in summary_pages():
        if not (SRC / page).is_file():
            problems.append(f"{rel(SUMMARY)}:{number}: page {page} does not exist")
    return problems


def check_links():
    problems = check_summary()
    chapters = {(SRC / page).resolve() for _, page in summary_pages()}
    pages = sorted(SRC.rglob("*.md")) + [ROOT / "README.md"]
    ids_cache = {}

    def ids_of(target):
        if target not in ids_cache:
            ids_cache[target] = set(heading_ids(target, []))
        return ids_cache[target]

    for page in pages:
        in_book = SRC in page.resolve().parents
        for number, target in links_of(expanded(page, problems)):
            where = f"{rel(page)}:{number}: link {target}"
            if not target or SCHEME.match(target):
                continue
            path_part, _, fragment = target.partition("#")
            path_part = unquote(path_part)
            resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
            if ROOT not in resolved.parents and resolved != ROOT:
                problems.append(f"{where}: points outside the repository")
                continue
            if not resolved.exists():
                problems.append(f"{where}: {rel(resolved)} does not exist")
                continue
            if in_book and path_part and resolved.suffix == ".md":
                if SRC not in resolved.parents:
                    problems.append(
                        f"{where}: a .md file outside docs/src is not in the built book "
                        "(mdBook links it as .html); name it as code instead"
                    )
                    continue
                if resolved not in chapters and resolved != SUMMARY.resolve():
                    problems.append(f"{where}: {rel(resolved)} is not a page of SUMMARY.md")
                    continue
            if fragment:
                if resolved.suffix != ".md" or not resolved.is_file():
                    problems.append(f"{where}: a #fragment on a file that is not a page")
                elif unquote(fragment) not in ids_of(resolved):
                    problems.append(f"{where}: no heading with id '{fragment}' in {rel(resolved)}")

    # The ids computed here must be those mdBook wrote, or the anchor checks mean nothing.
    if BUILT.is_dir():
        for chapter in sorted(chapters):
            built = BUILT / chapter.relative_to(SRC.resolve()).with_suffix(".html")
            if not built.is_file():
                problems.append(f"{rel(built)}: not built (run mdbook build docs first)")
                continue
            written = {html.unescape(i) for i in HTML_ID.findall(built.read_text(encoding="utf-8"))}
            for missing in sorted(set(heading_ids(chapter, [])) - written):
                problems.append(
                    f"{rel(chapter)}: heading id '{missing}' computed here is not in "
                    f"{rel(built)}: this checker's id rule disagrees with mdBook's"
                )
    else:
        problems.append(f"{rel(BUILT)}: not built (run mdbook build docs first)")
    return problems


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "links"
    if mode == "summary":
        problems = check_summary()
    elif mode == "links":
        problems = check_links()
    else:
        print(f"usage: {sys.argv[0]} summary|links", file=sys.stderr)
        return 2
    for problem in dict.fromkeys(problems):
        print(f"broken: {problem}", file=sys.stderr)
    if problems:
        print(f"error: {len(dict.fromkeys(problems))} broken link(s) or page(s)", file=sys.stderr)
        return 1
    what = "pages of SUMMARY.md exist" if mode == "summary" else "links resolve"
    print(f"book: all {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Model output as safe HTML: Markdown without raw HTML, then an nh3 allow-list, citations as links.

Two layers on purpose: markdown-it never passes HTML through (``html=False`` escapes it), and nh3
removes whatever the renderer still emitted that is not on the allow-list (tags, ``on*`` attributes,
``javascript:`` and other non-web URLs). Citations are read by ``parse_citations``, as the grounding
check reads them: ``[n]`` becomes a link to the answer's n-th source when that source exists, and in a
group or range (``[1, 2]``, ``[1-3]``) each number written links to its own source.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

from medchat.chat.safety.citations import parse_citations

_NUMBER = re.compile(r"\d+")

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "h3", "h4", "h5", "h6", "a", "sup",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _citation_links(state: StateCore) -> None:
    """Link citations in text to ``#<prefix>-n`` (``env["citations"]`` = (prefix, count))."""
    prefix, count = state.env.get("citations", ("", 0))
    if not prefix or not count:
        return
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        inside_link = False
        for child in block.children:
            if child.type == "link_open":
                inside_link = True
            elif child.type == "link_close":
                inside_link = False
            if child.type != "text" or inside_link:
                children.append(child)
            else:
                children += _linked(child.content, prefix, count)
        block.children = children


def _linked(content: str, prefix: str, count: int) -> list[Token]:
    """``content`` as text tokens with a link on every number of a citation group that names a source.

    A lone ``[n]`` is linked whole (the bigger target); in ``[1, 2]`` or ``[1-3]`` each number written is."""
    tokens: list[Token] = []
    position = 0
    for group in parse_citations(content):
        numbers = [match for match in _NUMBER.finditer(content, group.start, group.end) if 1 <= int(match[0]) <= count]
        if not numbers:
            continue
        whole = len(numbers) == 1 and len(group.items) == 1 and group.items[0].low == group.items[0].high
        spans = (
            [(group.start, group.end, int(numbers[0][0]))]
            if whole
            else [(match.start(), match.end(), int(match[0])) for match in numbers]
        )
        for start, end, number in spans:
            if start > position:
                tokens.append(_text(content[position:start]))
            link = Token("link_open", "a", 1)
            link.attrs = {"href": f"#{prefix}-{number}", "class": "cite"}
            tokens += [link, _text(content[start:end]), Token("link_close", "a", -1)]
            position = end
    if position < len(content) or not tokens:
        tokens.append(_text(content[position:]))
    return tokens


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.core.ruler.push("citation_links", _citation_links)
    return parser


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener nofollow noreferrer",
        strip_comments=True,
    )


def render_markdown(text: str, *, citation_prefix: str = "", source_count: int = 0) -> Markup:
    """Safe HTML for ``text``; with a prefix, each cited ``n`` (1 ≤ n ≤ ``source_count``) links to ``#prefix-n``."""
    if not text:
        return Markup("")
    html = _parser().render(text, {"citations": (citation_prefix, source_count)})
    return Markup(sanitize(html))  # noqa: S704 - sanitised by nh3 on the line above

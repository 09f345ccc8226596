"""Model output is rendered as Markdown and sanitised: nothing executable survives."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from medchat.chat.markdown import render_markdown

ALLOWED = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "sup",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "h1",
    "h2",
}


class Markup(HTMLParser):
    """The tags and attributes a browser would build from the HTML (text is ignored)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script>",
        "Hello <SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "```html\n</code></pre><script>alert(1)</script>\n```",
        "<img src=x onerror=alert(1)>",
        '<a href="#" onclick="alert(1)">click</a>',
        '<div onmouseover="alert(1)">hover</div>',
        "<iframe src='https://evil.example'></iframe>",
        "<style>body{display:none}</style>",
    ],
)
def test_raw_html_never_becomes_markup(text: str) -> None:
    parsed = Markup(str(render_markdown(text)))
    assert set(parsed.tags) <= ALLOWED, parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
    ],
)
def test_script_urls_are_dropped(link: str) -> None:
    parsed = Markup(str(render_markdown(link)))
    assert "img" not in parsed.tags
    urls = [value.lower() for name, value in parsed.attributes if name in ("href", "src")]
    assert not [url for url in urls if not url.startswith(("http:", "https:", "mailto:", "#"))], urls


def test_markdown_formatting_survives_with_safe_links() -> None:
    html = str(render_markdown("**Bold** and *em*\n\n- one\n- two\n\n[NICE](https://www.nice.org.uk/)\n\n`code`"))
    assert "<strong>Bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<li>one</li>" in html
    assert '<a href="https://www.nice.org.uk/" rel="noopener nofollow noreferrer">NICE</a>' in html
    assert "<code>code</code>" in html


def test_tables_render() -> None:
    html = str(render_markdown("| drug | dose |\n|---|---|\n| a | 1 mg |"))
    assert "<table>" in html
    assert "<td>1 mg</td>" in html


def test_citations_link_to_existing_sources_only() -> None:
    html = str(render_markdown("Raised pressure [1][2], see also [7].", citation_prefix="src-m1", source_count=2))
    assert '<a href="#src-m1-1" class="cite"' in html
    assert '<a href="#src-m1-2" class="cite"' in html
    assert "#src-m1-7" not in html
    assert "[7]" in html


def test_citations_inside_code_stay_text() -> None:
    html = str(render_markdown("`x[1]`\n\n    y[1]", citation_prefix="src-m1", source_count=2))
    assert "cite" not in html


def test_empty_text_renders_nothing() -> None:
    assert str(render_markdown("")) == ""


@pytest.mark.parametrize(
    ("text", "linked"),
    [
        ("Raised pressure [1, 2].", [1, 2]),
        ("Raised pressure [1; 2].", [1, 2]),
        ("Raised pressure [1-2].", [1, 2]),
        ("Raised pressure [1–3].", [1, 3]),
        ("Raised pressure [1-2, 3].", [1, 2, 3]),
        ("Raised pressure [2, 7].", [2]),
    ],
)
def test_every_number_of_a_citation_group_or_range_links_to_its_source(text: str, linked: list[int]) -> None:
    """The UI reads citations as the grounding check does (``parse_citations``): groups and ranges too."""
    html = str(render_markdown(text, citation_prefix="src-m1", source_count=3))
    hrefs = [value for name, value in Markup(html).attributes if name == "href"]
    assert hrefs == [f"#src-m1-{number}" for number in linked]
    assert "#src-m1-7" not in html
    assert html.count('class="cite"') == len(linked)


def test_a_markdown_link_label_is_not_a_citation() -> None:
    html = str(render_markdown("See [1](https://example.org/) and [2].", citation_prefix="src-m1", source_count=2))
    assert '<a href="#src-m1-2" class="cite"' in html
    assert "#src-m1-1" not in html

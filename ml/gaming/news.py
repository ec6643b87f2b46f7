"""Esports news from RSS 2.0 and Atom feeds: parsing, cleaning and de-duplication.

Pure functions: a feed body (text, as stored in the raw table) goes in, news items come out.
`parse_feed` raises `FeedError` for an answer that is not a usable feed (malformed XML, an HTML
page, an empty body); `deduplicate` folds together the items of several feeds and the ones
already stored, so one story is one item however many feeds carry it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import xml.sax
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

SUMMARY_MAX_CHARS = 500
TITLE_MAX_CHARS = 300
MAX_TAGS = 20
DEFAULT_TITLE_WINDOW = timedelta(hours=48)

# Query parameters that only say where a click came from: the same article with and without
# them is the same article.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "igshid", "mc_cid", "mc_eid", "ref", "ref_src", "cmpid", "_ga"}
)
TRACKING_PREFIXES = ("utm_", "at_", "pk_")


class FeedError(ValueError):
    """The answer is not a usable RSS or Atom feed."""


@dataclass(frozen=True)
class NewsItem:
    source: str  # the feed's name in the tenant's settings
    title: str
    title_key: str
    url: str | None  # the link without tracking parameters
    url_key: str | None  # canonical form of the link, for matching
    guid: str | None
    summary: str | None
    author: str | None
    tags: tuple[str, ...]
    published_at: datetime  # UTC; the fetch time when the feed gives none
    published_inferred: bool
    sources: tuple[str, ...] = ()
    item_key: str = ""


@dataclass(frozen=True)
class ParsedFeed:
    format: str  # feedparser's version: rss20, atom10, ...
    title: str | None
    items: list[NewsItem]
    skipped: int  # entries with neither a title nor a link


# --- text -----------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "tr", "blockquote"})
    _SKIP = frozenset({"script", "style", "iframe", "noscript"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def strip_html(text: str | None) -> str:
    """Visible text of an HTML fragment, entities decoded, whitespace collapsed."""
    if not text:
        return ""
    extractor = _TextExtractor()
    extractor.feed(text)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def title_key(title: str) -> str:
    """Title for matching: accents, case and punctuation ignored."""
    decomposed = unicodedata.normalize("NFKD", title)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


# --- links ----------------------------------------------------------------------------------------


def _is_tracking(param: str) -> bool:
    name = param.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def clean_url(link: str | None) -> str | None:
    """The link without tracking parameters or fragment; None unless it is http(s)."""
    if not link or not isinstance(link, str):
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", urlencode(query), ""))


def canonical_url(link: str | None) -> str | None:
    """One form per article: https, lowercase host without www., default port, sorted query
    without tracking parameters, no trailing slash."""
    cleaned = clean_url(link)
    if cleaned is None:
        return None
    parts = urlsplit(cleaned)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/") or "/"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit(("https", host, path, query, ""))


# --- parsing --------------------------------------------------------------------------------------

_ENCODING_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*)([\"'])[^\"']*\2", re.IGNORECASE)


def decode_body(content: bytes, content_type: str | None = None) -> str:
    """A feed's bytes as text, by the charset of its Content-Type, else its XML declaration or
    byte-order mark, else UTF-8 (never a guess that would garble an ISO-8859-1 feed)."""
    charset = None
    if content_type:
        match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.IGNORECASE)
        charset = match.group(1) if match else None
    if charset is None and content.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        charset = "utf-16" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    if charset is None:
        match = re.match(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)[\"']", content[:300])
        charset = match.group(1).decode("ascii") if match else "utf-8"
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _as_utc(value: Any) -> datetime | None:
    # feedparser gives struct_time already converted to UTC.
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _looks_like_html(body: str) -> bool:
    head = body.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head


def _html_title(body: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split())[:60] if match else ""


def parse_feed(body: str, *, source: str, fetched_at: datetime) -> ParsedFeed:
    """The items of one RSS 2.0 / Atom answer. Raises FeedError when it is not a feed."""
    if not body or not body.strip():
        raise FeedError("empty response body (expected an RSS or Atom feed)")
    # The text is already decoded; the declaration must not make feedparser decode it again.
    data = _ENCODING_DECLARATION.sub(rb'\1"utf-8"', body.encode("utf-8"), count=1)
    parsed = feedparser.parse(data)
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        if _looks_like_html(body):
            title = _html_title(body)
            raise FeedError(
                "an HTML page instead of a feed" + (f" ({title!r})" if title else "") + ": the site may be "
                "blocking the request or the feed moved; check the URL in a browser"
            )
        raise FeedError(f"not an RSS or Atom feed: {' '.join(body[:80].split())!r}")
    if isinstance(problem, xml.sax.SAXException):
        # A truncated or broken document: the loose parser would return whatever it salvaged,
        # possibly cut-off items, so the answer is refused and kept in the raw table instead.
        raise FeedError(f"malformed XML ({problem}); the answer is kept in the raw table")

    fetched_at = fetched_at.astimezone(UTC)
    items, skipped = [], 0
    for entry in parsed.entries:
        item = _item(entry, source, fetched_at)
        if item is None:
            skipped += 1
        else:
            items.append(item)
    title = strip_html(parsed.feed.get("title")) or None
    return ParsedFeed(parsed.version, title, items, skipped)


def _item(entry: Mapping[str, Any], source: str, fetched_at: datetime) -> NewsItem | None:
    url = clean_url(entry.get("link"))
    summary_html = entry.get("summary") or ""
    if not summary_html and entry.get("content"):
        summary_html = entry["content"][0].get("value") or ""
    summary = truncate(strip_html(summary_html), SUMMARY_MAX_CHARS) or None
    title = strip_html(entry.get("title"))
    if not title:
        if url is None and summary is None:
            return None
        title = truncate(summary, 120) if summary else url
    title = truncate(title, TITLE_MAX_CHARS)
    # dict.get: feedparser's own get() maps a missing date to the other one, with a warning.
    published = _as_utc(dict.get(entry, "published_parsed")) or _as_utc(dict.get(entry, "updated_parsed"))
    author = entry.get("author_detail", {}).get("name") or entry.get("author") or None
    tags: dict[str, str] = {}
    for tag in entry.get("tags") or []:
        term = " ".join(str(tag.get("term") or "").split())
        if term and term.casefold() not in tags and len(tags) < MAX_TAGS:
            tags[term.casefold()] = term[:60]
    guid = str(entry.get("id") or "").strip() or None
    return NewsItem(
        source=source,
        title=title,
        title_key=title_key(title),
        url=url,
        url_key=canonical_url(url),
        guid=guid[:500] if guid else None,
        summary=summary,
        author=strip_html(author)[:200] or None if author else None,
        tags=tuple(tags.values()),
        published_at=published or fetched_at,
        published_inferred=published is None,
    )


# --- de-duplication -------------------------------------------------------------------------------


def _guid_scope(guid: str, source: str) -> str:
    # A URI-like guid is global; a bare number or slug is only unique within its own feed.
    if "://" in guid or guid.startswith(("urn:", "tag:")):
        return guid
    return f"{source}#{guid}"


def item_key(item: NewsItem) -> str:
    basis = item.url_key or (item.guid and _guid_scope(item.guid, item.source))
    if not basis:
        basis = f"{item.title_key}|{item.published_at:%Y-%m-%d}"
    return hashlib.sha256(basis.encode()).hexdigest()[:24]


@dataclass
class Deduplicated:
    items: list[NewsItem]  # one per story, with its item_key and every feed that carried it
    duplicates: int  # incoming items folded into another incoming item of the same story
    matched_existing: int  # stories already in the table (their rows are updated)
    by_rule: dict[str, int] = field(default_factory=dict)  # guid / url / title: links that merged


class _Stories:
    """Union-find over items: linked items are one story, whatever order they come in."""

    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, node: int) -> int:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: int, b: int) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        self.parent[max(a, b)] = min(a, b)
        return True


def deduplicate(
    items: Iterable[NewsItem],
    existing: Sequence[Mapping[str, Any]] = (),
    *,
    window: timedelta = DEFAULT_TITLE_WINDOW,
) -> Deduplicated:
    """Fold items that are the same story: linked by the same guid, the same canonical link, or
    the same normalised title published within `window`, across feeds and across runs.

    `existing` are stored items that may match (item_key, source, guid, url_key, title_key,
    published_at): a story that includes one keeps its key, so the stored row is updated, not
    duplicated. A story's content comes from its earliest published item (feed order breaks
    ties), except that an item from the stored row's own feed wins, so a feed's corrections to
    its own story are applied.
    """
    incoming = list(items)
    stored = list(existing)
    # Nodes: stored rows first, then incoming items, each as (guid, url_key, title_key, published, source).
    nodes = [(r["guid"], r["url_key"], r["title_key"], r["published_at"], r["source"]) for r in stored]
    nodes += [(i.guid, i.url_key, i.title_key, i.published_at, i.source) for i in incoming]
    stories = _Stories(len(nodes))
    rules = {"guid": 0, "url": 0, "title": 0}
    first: dict[tuple[str, str], int] = {}
    by_title: dict[str, list[int]] = {}
    for node, (guid, url_key, title, _, source) in enumerate(nodes):
        for rule, value in (("guid", guid and _guid_scope(guid, source)), ("url", url_key)):
            if value:
                other = first.setdefault((rule, value), node)
                if other != node and stories.union(other, node):
                    rules[rule] += 1
        by_title.setdefault(title, []).append(node)
    for group in by_title.values():
        group.sort(key=lambda n: nodes[n][3])
        for a, b in zip(group, group[1:], strict=False):
            if nodes[b][3] - nodes[a][3] <= window and stories.union(a, b):
                rules["title"] += 1

    offset = len(stored)
    members: dict[int, list[int]] = {}
    for node in range(len(nodes)):
        members.setdefault(stories.find(node), []).append(node)
    folded: list[NewsItem] = []
    keys_taken = {r["item_key"] for r in stored}
    matched = duplicates = 0
    for root in sorted(members):
        group = members[root]
        news = [n - offset for n in group if n >= offset]
        if not news:
            continue
        duplicates += len(news) - 1
        olds = [n for n in group if n < offset]
        candidates = sorted(news, key=lambda i: (incoming[i].published_at, i))
        chosen = incoming[candidates[0]]
        if olds:
            matched += 1
            # Several stored rows in one story (linked only now): the earliest keeps the story.
            old = min(olds, key=lambda n: (stored[n]["published_at"], stored[n]["item_key"]))
            key, own_feed = stored[old]["item_key"], stored[old]["source"]
            chosen = next((incoming[i] for i in candidates if incoming[i].source == own_feed), chosen)
        else:
            key = item_key(chosen)
            while key in keys_taken:  # two stories with the same hash basis
                key = hashlib.sha256(f"{key}|{chosen.source}|{chosen.title_key}".encode()).hexdigest()[:24]
            keys_taken.add(key)
        sources = tuple(sorted({incoming[i].source for i in news}))
        folded.append(replace(chosen, item_key=key, sources=sources))
    return Deduplicated(folded, duplicates, matched, rules)

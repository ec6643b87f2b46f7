"""Feed parsing (RSS 2.0, Atom, broken answers) and news de-duplication, on the recorded
fixtures and on small hand-written feeds."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ml.gaming.news import (
    FeedError,
    NewsItem,
    canonical_url,
    clean_url,
    decode_body,
    deduplicate,
    parse_feed,
    strip_html,
    title_key,
    truncate,
)
from orchestration.settings import PROJECT_ROOT

FEEDS = PROJECT_ROOT / "fixtures" / "feeds"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def recorded(name: str) -> str:
    return json.loads((FEEDS / f"{name}.json").read_text())["responses"][-1]["text"]


def test_wordpress_rss_items_come_out_clean():
    feed = parse_feed(recorded("dotesports_feed"), source="Dot Esports", fetched_at=NOW)
    assert feed.format == "rss20" and feed.title == "Dot Esports"
    assert len(feed.items) == 13  # 12 posts and a sticky post repeated
    first = feed.items[0]
    assert first.title == "Team Vitality win IEM Chengdu 2026 after reverse sweep against MOUZ"
    assert (
        first.url
        == "https://dotesports.com/counter-strike/news/vitality-win-iem-chengdu-2026-reverse-sweep-mouz/"
    )
    assert first.guid.startswith("https://dotesports.com/?p=")
    assert first.author == "Nadia Okafor" and first.tags == ("CS2", "IEM")
    assert first.published_at == datetime(2026, 11, 24, 21, 0, tzinfo=UTC) and not first.published_inferred
    assert "<" not in first.summary and first.summary.startswith("Team Vitality win IEM Chengdu 2026")


def test_atom_entries_with_and_without_dates():
    feed = parse_feed(recorded("esportsinsider_feed_atom"), source="Esports Insider", fetched_at=NOW)
    assert feed.format == "atom10" and len(feed.items) == 9
    undated = [i for i in feed.items if i.published_inferred]
    assert [i.title for i in undated] == ["Interview: the organisers keeping grassroots esports alive"]
    assert undated[0].published_at == NOW  # missing -> first seen
    partner = next(i for i in feed.items if i.title.startswith("Partner story"))
    assert partner.url_key == canonical_url(
        "https://dotesports.com/counter-strike/news/vitality-win-iem-chengdu-2026-reverse-sweep-mouz/"
    )
    assert all(i.author for i in feed.items) and all(i.tags for i in feed.items)


def test_published_times_are_converted_to_utc():
    rss = """<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
      <item><title>One</title><link>https://a.example/1</link>
            <pubDate>Tue, 24 Nov 2026 18:30:00 +0100</pubDate></item>
      <item><title>Two</title><link>https://a.example/2</link><pubDate>not a date</pubDate></item>
    </channel></rss>"""
    one, two = parse_feed(rss, source="T", fetched_at=NOW).items
    assert one.published_at == datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    assert two.published_inferred and two.published_at == NOW


def test_a_latin1_feed_keeps_its_accents():
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>Fr</title>'
        "<item><title>Caf\xe9 des joueurs</title><link>https://fr.example/a</link></item></channel></rss>"
    ).encode("latin-1")
    text = decode_body(body, "application/rss+xml")
    assert parse_feed(text, source="Fr", fetched_at=NOW).items[0].title == "Café des joueurs"
    assert decode_body("é".encode(), "text/xml; charset=utf-8") == "é"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (recorded("broken_xml"), "malformed XML"),
        (recorded("html_instead_of_feed"), "an HTML page instead of a feed ('Just a moment...')"),
        ('{"error": "nope"}', "not an RSS or Atom feed"),
        ("   ", "empty response body"),
    ],
)
def test_answers_that_are_not_feeds_are_refused(body, message):
    with pytest.raises(FeedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_feed(body, source="X", fetched_at=NOW)


def test_items_without_title_or_link_are_skipped_and_titles_fall_back():
    rss = """<rss version="2.0"><channel><title>T</title>
      <item><description>only words here</description></item>
      <item><guid>x1</guid></item>
      <item><link>javascript:alert(1)</link><title>Bad link</title></item>
    </channel></rss>"""
    feed = parse_feed(rss, source="T", fetched_at=NOW)
    assert [i.title for i in feed.items] == ["only words here", "Bad link"]
    assert feed.items[1].url is None and feed.skipped == 1


def test_text_and_link_cleaning():
    html = "<p>Hello&nbsp;<b>world</b></p><script>x()</script><p>again &amp; again</p>"
    assert strip_html(html) == "Hello world again & again"
    assert truncate("word " * 200, 50).endswith("…") and len(truncate("word " * 200, 50)) <= 50
    assert title_key("Vitality WIN — IEM Chengdu!") == title_key("vitality win iem chengdu")
    assert title_key("Café") == "cafe"
    assert clean_url("https://x.example/a/?utm_source=rss&id=3&fbclid=Z#top") == "https://x.example/a/?id=3"
    assert (
        canonical_url("HTTP://WWW.X.example:443/a//b/?b=2&a=1&utm_medium=x")
        == "https://x.example/a/b?a=1&b=2"
    )
    assert canonical_url("ftp://x.example/file") is None and clean_url(None) is None


def _item(source, title, *, url=None, guid=None, hours=0.0, inferred=False):
    return NewsItem(
        source=source,
        title=title,
        title_key=title_key(title),
        url=url,
        url_key=canonical_url(url),
        guid=guid,
        summary=None,
        author=None,
        tags=(),
        published_at=NOW - timedelta(hours=hours),
        published_inferred=inferred,
    )


def test_dedup_by_guid_link_and_title_window_in_any_order():
    items = [
        _item(
            "A", "Story one", url="https://a.example/1?utm_source=a", guid="https://a.example/?p=1", hours=5
        ),
        _item("B", "Story ONE!", url="https://b.example/x", hours=2),  # same title, 3 h later
        _item("C", "Partner: story", url="https://www.a.example/1/", hours=1),  # same canonical link
        _item("A", "Story one (updated)", guid="https://a.example/?p=1", hours=0.5),  # same guid
        _item("D", "Weekly roundup", url="https://d.example/w47", hours=1),
        _item("D", "Weekly roundup", url="https://d.example/w46", hours=1 + 24 * 7),  # a week apart
        _item("E", "Numbered", guid="1001", url="https://e.example/n"),
        _item("F", "Other numbered", guid="1001", url="https://f.example/n"),  # bare guids are per feed
    ]
    for ordering in (items, list(reversed(items))):
        result = deduplicate(ordering)
        stories = {tuple(sorted(i.sources)): i for i in result.items}
        assert len(result.items) == 5
        assert ("A", "B", "C") in stories and stories[("A", "B", "C")].title == "Story one"  # earliest kept
        assert result.duplicates == 3 and result.matched_existing == 0
        assert len({i.item_key for i in result.items}) == 5


def test_dedup_against_stored_items_keeps_their_keys_and_prefers_their_own_feed():
    first = deduplicate([_item("A", "Story one", url="https://a.example/1", hours=5)]).items[0]
    stored = [
        {
            "item_key": first.item_key,
            "source": "A",
            "guid": None,
            "url_key": first.url_key,
            "title_key": first.title_key,
            "published_at": first.published_at,
        }
    ]
    again = deduplicate(
        [
            _item("B", "Story one", url="https://b.example/1", hours=6),  # earlier, but another feed
            _item("A", "Story one, corrected", url="https://a.example/1", hours=5),
            _item("A", "Brand new", url="https://a.example/2", hours=1),
        ],
        stored,
    )
    by_key = {i.item_key: i for i in again.items}
    assert by_key[first.item_key].title == "Story one, corrected" and by_key[first.item_key].sources == (
        "A",
        "B",
    )
    assert again.matched_existing == 1 and again.duplicates == 1 and len(again.items) == 2


def test_title_window_is_configurable():
    items = [
        _item("A", "Same", url="https://a.example/1", hours=30),
        _item("B", "Same", url="https://b.example/1"),
    ]
    assert len(deduplicate(items).items) == 1
    assert len(deduplicate(items, window=timedelta(hours=12)).items) == 2

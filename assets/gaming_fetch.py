"""How the game catalogue gets its answers: from the three APIs (`CatalogueFetch`, every
exchange stored in raw.gaming_api_responses before it is parsed), or from the answers an earlier
run stored (`StoredAnswers`, for `reparse` after a parser fix: no API is called)."""

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import MetadataValue

from ml.gaming.catalogue import (
    assign_steam_ids,
    critic_action,
    critic_from_detail,
    critic_no_match,
    empty_steam,
    kept_critic,
    unique_critic_ids,
)
from ml.gaming.igdb import parse_games
from ml.gaming.names import best_match
from ml.gaming.opencritic import parse_game, search_hits
from ml.gaming.steam import entry_for, parse_appdetails, parse_review_summary
from orchestration.api_limits import ApiLedger, BudgetExhaustedError
from orchestration.errors import PlatformError
from orchestration.gaming_sources import OFFLINE_STATUSES
from orchestration.sources import Attempt, SourceError
from orchestration.warehouse import WarehouseResource, append_rows, set_tenant

RAW_TABLE = "raw.gaming_api_responses"
SOURCES = ("igdb", "twitch", "steam", "opencritic")


@dataclass(frozen=True)
class Matching:
    min_match_confidence: float
    research_unmatched_after_days: int


def rank_games(records: list[Any], featured: int) -> tuple[list[dict], int]:
    """IGDB's records as the featured games, in its popularity order, Steam ids made unique."""
    games, dropped = parse_games(records)
    ranked = [{**g, "popularity_rank": i} for i, g in enumerate(games[:featured], 1)]
    return assign_steam_ids(ranked), dropped


def steam_fields(appid: int, details: Any, review_body: Any) -> dict:
    parsed = parse_appdetails(entry_for(details, appid))
    if not parsed.pop("steam_available"):
        return empty_steam("unavailable")
    return {"steam_status": "ok", **parsed, **(parse_review_summary(review_body) or {})}


class RawAnswers:
    """Stores each batch of HTTP exchanges in its own transaction as soon as its requests are
    done (whatever their outcome), before anything parses them; counts calls per source. One
    connection serves the run's batches (a catalogue stores hundreds): `close()` it at the end."""

    def __init__(self, warehouse: WarehouseResource, tenant_id: str, asset: str, partition: str, run_id):
        self.warehouse, self.tenant_id, self.asset, self.partition = warehouse, tenant_id, asset, partition
        self.run_id = run_id
        self.calls: Counter[str] = Counter()
        self._conn = None

    def store(self, attempts: list[Attempt], igdb_id: int | None = None) -> None:
        if not attempts:
            return
        rows = [
            {
                "asset": self.asset,
                "partition_key": self.partition,
                "source": a.source,
                "igdb_id": igdb_id,
                "request": a.request,
                "status": a.status,
                "body": a.body,
                "attempt": a.attempt,
                "fetched_at": a.fetched_at,
                "dagster_run_id": self.run_id,
            }
            for a in attempts
        ]
        if self._conn is None or self._conn.closed:
            self._conn = self.warehouse.connect()
        with self._conn.transaction():
            set_tenant(self._conn, self.tenant_id)
            append_rows(self._conn, self.tenant_id, RAW_TABLE, rows)
        self.calls.update(a.source for a in attempts)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def metadata(self, games: int) -> dict[str, MetadataValue]:
        total = sum(self.calls.values())
        return {
            **{f"api_calls_{s}": MetadataValue.int(self.calls.get(s, 0)) for s in SOURCES},
            "api_calls_total": MetadataValue.int(total),
            "requests_per_game": MetadataValue.float(round(total / games, 3) if games else 0.0),
        }


@dataclass
class CriticReport:
    searches: int = 0
    details: int = 0
    skipped_budget: int = 0
    kept_recent_no_match: int = 0
    lost_shared_id: int = 0
    note: str | None = None


class CatalogueFetch:
    """The three sources' calls for one tenant's catalogue, under the platform's rate slots and
    budgets; every exchange goes to `raw` as soon as its game's requests are done."""

    def __init__(
        self, igdb, steam, opencritic, ledger: ApiLedger, raw: RawAnswers, featured: int, country: str
    ):
        self.igdb, self.steam, self.opencritic = igdb, steam, opencritic
        self.ledger, self.raw, self.featured, self.country = ledger, raw, featured, country
        self.clients = {r.source: r.http_client() for r in (igdb, steam, opencritic)}
        self.quota: dict[str, str] = {}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def games(self) -> tuple[list[dict], int, datetime]:
        """The featured games in IGDB's popularity order (ranked, Steam ids made unique)."""
        records: list[dict] = []
        fetched_at = datetime.now(UTC)
        for limit, offset in self.igdb.pages(self.featured):
            attempts: list[Attempt] = []
            try:
                page = self.igdb.games_page(
                    self.clients["igdb"],
                    limit,
                    offset,
                    before_attempt=lambda: self.ledger.wait_for_slot("igdb", self.igdb.min_interval_s),
                    attempts=attempts,
                )
            finally:
                self.raw.store(attempts)
            records += page
            if len(page) < limit:
                break  # IGDB has no more games matching the query
        return (*rank_games(records, self.featured), fetched_at)

    def steam_slot(self) -> None:
        self.ledger.wait_for_slot("steam", self.steam.min_interval_s)

    def steam_data(self, game: dict) -> tuple[dict, datetime | None]:
        appid = game["steam_appid"]
        if appid is None:
            return empty_steam("not_on_steam"), None
        attempts: list[Attempt] = []
        fetched_at = datetime.now(UTC)
        review_body = None
        try:
            details = self.steam.appdetails(
                self.clients["steam"], appid, self.country, before_attempt=self.steam_slot, attempts=attempts
            )
            if entry_for(details, appid)["success"]:
                review_body = self.steam.reviews(
                    self.clients["steam"], appid, before_attempt=self.steam_slot, attempts=attempts
                )
        finally:
            self.raw.store(attempts, game["igdb_id"])
        return steam_fields(appid, details, review_body), fetched_at

    def critics(self, games: list[dict], previous: dict[int, dict], matching: Matching):
        """Critic fields per game (popularity order): by id when known, by name once, else the
        previous fields; a spent budget or an unreachable OpenCritic keeps previous data."""
        report = CriticReport()
        now = datetime.now(UTC)
        research_after = timedelta(days=matching.research_unmatched_after_days)
        searching = True
        # Why OpenCritic is not asked any more in this run: disabled, offline or budget_spent.
        stop: str | None = None
        if not self.opencritic.enabled:
            stop, report.note = (
                "disabled",
                "OpenCritic skipped: OPENCRITIC_RAPIDAPI_KEY is not set (live mode)",
            )
        critics = []
        for game in games:
            before = previous.get(game["igdb_id"])
            action = critic_action(before, now, research_after)
            if action == "keep":  # a recent no-match: searching again would only spend budget
                report.kept_recent_no_match += 1
                critics.append(kept_critic(before))
                continue
            if stop or (action == "search" and not searching):
                report.skipped_budget += stop in (None, "budget_spent")
                critics.append(kept_critic(before, stop or "budget_spent"))
                continue
            attempts: list[Attempt] = []
            try:
                critic = self._critic(game, before, action, matching, attempts, report)
            except BudgetExhaustedError as exc:
                report.skipped_budget += 1
                if exc.source == "opencritic_search":
                    searching = False
                else:
                    stop, report.note = "budget_spent", f"OpenCritic skipped for the rest of this run: {exc}"
                critic = kept_critic(before, "budget_spent")
            except SourceError as exc:
                if exc.attempts and exc.attempts[-1].status in OFFLINE_STATUSES:
                    stop, report.note = "offline", f"OpenCritic offline for the rest of this run: {exc}"
                critic = kept_critic(before, stop or "error")
            finally:
                self.raw.store(attempts, game["igdb_id"])
            critics.append(critic)
        report.lost_shared_id = unique_critic_ids(critics)
        return critics, report

    def _critic(self, game, before, action, matching, attempts, report) -> dict:
        client, oc = self.clients["opencritic"], self.opencritic

        def spend_request() -> None:
            self.ledger.spend("opencritic", oc.daily_limit)

        def spend_search() -> None:
            self.ledger.spend("opencritic_search", oc.search_daily_limit)
            spend_request()

        fetched_at = datetime.now(UTC)
        if action == "detail":
            body = oc.game(
                client,
                before["opencritic_id"],
                before_attempt=spend_request,
                attempts=attempts,
                quota=self.quota,
            )
            report.details += 1
            return critic_from_detail(parse_game(body), before, fetched_at)
        hits = oc.search(
            client, game["name"], before_attempt=spend_search, attempts=attempts, quota=self.quota
        )
        report.searches += 1
        match = best_match(game["name"], search_hits(hits), matching.min_match_confidence)
        if not match.matched:
            return critic_no_match(match, fetched_at)
        body = oc.game(
            client, match.candidate_id, before_attempt=spend_request, attempts=attempts, quota=self.quota
        )
        report.details += 1
        return critic_from_detail(parse_game(body), before, fetched_at, match)


class StoredAnswers:
    """The answers the run that wrote the current catalogue stored, served in place of the
    APIs: the same parsing and fusing, no request, no budget spent."""

    def __init__(self, warehouse: WarehouseResource, tenant_id: str, featured: int):
        rows = warehouse.query(
            tenant_id,
            f"""SELECT r.source, r.igdb_id, r.request, r.body, r.fetched_at, r.dagster_run_id
                  FROM {RAW_TABLE} r
                 WHERE r.tenant_id = %s AND r.asset = 'game_catalogue' AND r.status = 200
                   AND r.dagster_run_id = (SELECT max(answers_run_id) FROM core.gaming_catalogue
                                            WHERE tenant_id = %s)
                 ORDER BY r.response_id""",
            (tenant_id, tenant_id),
        )
        if not rows:
            raise PlatformError(
                f"no stored answers for the current catalogue of {tenant_id!r}; refresh it without reparse"
            )
        self.run_id = rows[0]["dagster_run_id"]
        self.featured = featured
        self.pages = [r for r in rows if r["source"] == "igdb"]
        self.answers: dict[int, list[dict]] = defaultdict(list)
        for row in rows:
            if row["igdb_id"] is not None:
                self.answers[row["igdb_id"]].append(row)
        self.quota: dict[str, str] = {}

    def close(self) -> None:
        pass

    def _answer(self, igdb_id: int, source: str, path: str) -> dict | None:
        """The game's last stored answer from `source` to a request whose URL path matches."""
        pattern = re.compile(path)
        found = [r for r in self.answers[igdb_id] if r["source"] == source and pattern.search(r["request"])]
        return found[-1] if found else None

    def games(self) -> tuple[list[dict], int, datetime]:
        records = [record for page in self.pages for record in json.loads(page["body"])]
        return (*rank_games(records, self.featured), self.pages[0]["fetched_at"])

    def steam_data(self, game: dict) -> tuple[dict, datetime | None]:
        appid = game["steam_appid"]
        if appid is None:
            return empty_steam("not_on_steam"), None
        details = self._answer(game["igdb_id"], "steam", r"/api/appdetails\?")
        if details is None:
            raise PlatformError(f"no stored Steam answer for {game['name']!r}; refresh without reparse")
        reviews = self._answer(game["igdb_id"], "steam", r"/appreviews/\d+")
        review_body = json.loads(reviews["body"]) if reviews else None
        return steam_fields(appid, json.loads(details["body"]), review_body), details["fetched_at"]

    def critics(self, games: list[dict], previous: dict[int, dict], matching: Matching):
        report = CriticReport(note=f"reparsed from the answers of run {self.run_id}")
        critics = []
        for game in games:
            before = previous.get(game["igdb_id"])
            search = self._answer(game["igdb_id"], "opencritic", r"/game/search\?")
            detail = self._answer(game["igdb_id"], "opencritic", r"/game/\d+$")
            match = None
            if search is not None:
                report.searches += 1
                hits = search_hits(json.loads(search["body"]))
                match = best_match(game["name"], hits, matching.min_match_confidence)
                if not match.matched:
                    critics.append(critic_no_match(match, search["fetched_at"]))
                    continue
            if detail is not None:
                report.details += 1
                body = parse_game(json.loads(detail["body"]))
                critics.append(critic_from_detail(body, before, detail["fetched_at"], match))
            else:  # OpenCritic was not asked for this game then: its fields stay as they are
                kept = kept_critic(before)
                kept["flags"] = [f for f in (before or {}).get("flags", []) if f.startswith("opencritic_")]
                critics.append(kept)
        report.lost_shared_id = unique_critic_ids(critics)
        return critics, report

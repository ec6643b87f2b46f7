from bench.soak_stats import (
    api_error_rate,
    compare_counts,
    growth_verdict,
    missing_partitions,
    schedule_tick,
    slope_per_minute,
    utc,
)


def test_slope_is_megabytes_per_minute_by_least_squares():
    assert slope_per_minute([(0, 100.0), (60, 102.0), (120, 104.0)]) == 2.0
    assert abs(slope_per_minute([(0, 100.0), (30, 103.0), (60, 101.0), (90, 104.0)]) - 2.0) < 1e-9
    assert slope_per_minute([(0, 5.0)]) == 0.0 and slope_per_minute([(10, 1.0), (10, 2.0)]) == 0.0


def test_growth_that_flattens_is_bounded_and_steady_growth_is_not():
    warming = [(t * 15, 200 + min(t, 20) * 3.0) for t in range(80)]  # grows, then flat
    verdict = growth_verdict(warming)
    assert verdict["bounded"] is True and verdict["second_half_mb_per_min"] == 0.0
    assert verdict["first_half_mb_per_min"] > 5 and verdict["peak_mb"] == 260.0
    leaking = [(t * 15, 200 + t * 1.0) for t in range(80)]  # 4 MB/min all along
    verdict = growth_verdict(leaking)
    assert verdict["bounded"] is False and abs(verdict["second_half_mb_per_min"] - 4.0) < 1e-6
    # growth that slows to under half its first-half rate counts as settling
    slowing = [(t * 60, 100 + (t * 8.0 if t < 10 else 80 + (t - 10) * 3.0)) for t in range(20)]
    assert growth_verdict(slowing)["bounded"] is True
    assert growth_verdict([(0, 1.0), (1, 2.0)])["bounded"] is None  # too few samples to judge
    short = [(t * 15, 200 + t * 1.0) for t in range(12)]  # 3 minutes: start-up, not a trend
    assert (
        growth_verdict(short)["bounded"] is None and growth_verdict(short, min_span_s=60)["bounded"] is False
    )


def test_error_rate_counts_5xx_and_connection_errors_not_4xx():
    assert api_error_rate({"total": 1000, "2xx": 980, "4xx": 15, "5xx": 3, "connection_errors": 2}) == 0.005
    assert api_error_rate({"total": 0}) == 0.0 and api_error_rate({}) == 0.0
    assert api_error_rate({"total": 200, "4xx": 200}) == 0.0


def test_schedule_ticks_on_the_replay_day():
    day = utc("2026-11-25")
    assert [schedule_tick("17 * * * *", "UTC", day, i).hour for i in (0, 1, 23, 24)] == [0, 1, 23, 0]
    assert schedule_tick("30 1 * * *", "UTC", day, 5).isoformat() == "2026-11-25T01:30:00+00:00"
    assert schedule_tick("15 */4 * * *", "UTC", day, 1).isoformat() == "2026-11-25T04:15:00+00:00"
    # a weekly schedule not firing that day: its next tick
    assert schedule_tick("0 5 * * 1", "UTC", day, 0).isoformat() == "2026-11-30T05:00:00+00:00"


def test_counts_compare_with_the_baseline_allowing_history_tables_to_grow():
    baseline = {("core.a", "t1"): 10, ("core.a", "t2"): 5, ("core.log", "t1"): 3, ("core.b", "t1"): 4}
    final = {("core.a", "t1"): 10, ("core.a", "t2"): 4, ("core.log", "t1"): 9, ("core.b", "t1"): 6,
             ("core.c", "t3"): 1}  # fmt: skip
    out = compare_counts(baseline, final, accumulating={"core.log"})
    assert out["lost"] == [{"table": "core.a", "tenant": "t2", "baseline": 5, "final": 4}]
    assert [(r["table"], r["tenant"]) for r in out["extra"]] == [("core.b", "t1"), ("core.c", "t3")]
    shrunk = compare_counts({("core.log", "t1"): 3}, {}, accumulating={"core.log"})
    assert shrunk["lost"][0]["final"] == 0


def test_missing_partitions_are_those_of_the_baseline_no_longer_materialized():
    base = {"orders": {"a", "b"}, "leads": {"x"}}
    assert missing_partitions(base, {"orders": {"a", "b", "c"}, "leads": {"x"}}) == {}
    assert missing_partitions(base, {"orders": {"a"}}) == {"orders": ["b"], "leads": ["x"]}

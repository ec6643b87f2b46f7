"""The scale benchmark's arithmetic and parsing (bench/scale.py): the numbers the report quotes."""

import math

import pytest

from bench.scale import extrapolate_seconds, growth, parse_progress, parse_refresh, parse_sizes, summary


def test_summary_takes_the_median_of_an_even_count_and_keeps_the_worst():
    assert summary([4.0, 1.0, 3.0, 2.0]) == {"median": 2.5, "max": 4.0, "min": 1.0, "n": 4}
    with pytest.raises(ValueError):
        summary([])


def test_refresh_modes_default_to_none_and_reject_unknown_sizes_and_modes():
    assert parse_refresh("5=full, 200=cheap", [5, 50, 200]) == {5: "full", 50: "none", 200: "cheap"}
    with pytest.raises(ValueError, match="not in --sizes"):
        parse_refresh("20=full", [5, 50])
    with pytest.raises(ValueError, match="SIZE=MODE"):
        parse_refresh("5=fast", [5])


def test_sizes_are_sorted_unique_and_at_least_the_seeded_tenants():
    assert parse_sizes("200,5,50,5") == [5, 50, 200]
    with pytest.raises(ValueError):
        parse_sizes("3,50")


def test_growth_is_relative_to_the_smallest_size():
    assert growth({50: 120.0, 5: 60.0, 200: 60.0}) == {"50/5": 2.0, "200/5": 1.0}
    assert math.isnan(growth({5: 0.0, 50: 1.0})["50/5"])


def test_extrapolation_scales_only_the_per_run_part():
    # 20 s start-up, then 10 runs in 100 s: 10 s a run, so 40 runs take 20 + 400.
    assert extrapolate_seconds(10, 120.0, 40, fixed_s=20.0) == 420.0
    with pytest.raises(ValueError):
        extrapolate_seconds(0, 1.0, 5)


def test_progress_lines_of_bizosaas_materialize_parse_with_their_outcome():
    assert parse_progress("[3/16] orders @ 2026-11-24|coreldove ... ok (1.2s)\n") == (3, 16, True, 1.2)
    failed = "[4/16] market_prices @ quanttrade ... FAILED: replay: no recording for GET x (0.8s)"
    assert parse_progress(failed) == (4, 16, False, 0.8)
    assert parse_progress("materializing 16 run(s)") is None

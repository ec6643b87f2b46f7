from ml.directory.search import business_words, city_key, facet_counts, prefix_range, query_words


def test_business_words_cover_name_subcategory_and_cuisine():
    words = business_words(
        {"name_key": "cafe no se", "subcategory": "fast_food", "cuisine": ["coffee_shop", "breakfast"]}
    )
    assert words == {"cafe", "no", "se", "fast", "food", "coffee", "shop", "breakfast"}
    assert business_words({"name_key": "ラーメン 一番", "subcategory": "restaurant", "cuisine": None}) >= {
        "ラーメン",
        "一番",
    }


def test_query_words_fold_like_names_and_are_bounded():
    assert query_words("  Café  NO sé!! ") == ["cafe", "no", "se"]
    assert query_words("!!!") == []
    assert len(query_words(" ".join(f"w{i}" for i in range(30)))) == 10
    assert query_words("tacos tacos") == ["tacos"]


def test_prefix_range_contains_exactly_the_words_with_the_prefix():
    low, high = prefix_range("cof")
    inside = ["cof", "coffee", "cofz", "cof\U0010fff0"]
    outside = ["co", "cog", "coe", "cafe", "cog0"]
    assert all(low <= w < high for w in inside)
    assert not any(low <= w < high for w in outside)
    assert prefix_range("一")[1] == chr(ord("一") + 1)


def test_facet_counts_group_status_category_and_city():
    rows = [
        {"status": "active", "category": "health", "city": "Portland"},
        {"status": "active", "category": "health", "city": " portland "},
        {"status": "missing", "category": "health", "city": "Portland"},
        {"status": "active", "category": "food_and_drink", "city": None},
    ]
    assert facet_counts(rows) == [
        {"status": "active", "category": "food_and_drink", "city_key": "", "businesses": 1},
        {"status": "active", "category": "health", "city_key": "portland", "businesses": 2},
        {"status": "missing", "category": "health", "city_key": "portland", "businesses": 1},
    ]
    assert city_key(None) == ""


def test_prefix_range_at_the_edges_of_unicode():
    # the next code point after U+D7FF is a surrogate, which cannot be encoded: skip to U+E000
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")
    # nothing sorts after U+10FFFF: the bound moves to the previous character, or disappears
    assert prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert prefix_range("\U0010ffff") == ("\U0010ffff", None)

"""Finding a value's own bytes in a JSON text: one pass over an array gives what `locate` gives."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import spans

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)
LAYOUTS = st.sampled_from([{}, {"indent": 2}, {"indent": "\t"}, {"separators": (",", ":")}, {"ensure_ascii": False}])


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=6), LAYOUTS, st.sampled_from(["", " ", "\r\n", "\n\t "]))
def test_elements_are_the_slices_locate_finds(array: list[object], layout: dict[str, object], pad: str) -> None:
    """Every element's bytes, however the array is laid out, are those `locate` finds for its index."""
    text = (pad + json.dumps(array, **layout) + pad).encode()  # type: ignore[arg-type]
    found = spans.elements(text)
    assert found == [spans.locate(text, (i,)) for i in range(len(array))]
    assert [orjson.loads(piece) for piece in found or []] == orjson.loads(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"[]", []),
        (b"[ \n ]", []),
        (b'[1.50,"a,]b" , {"x": [1, {"y": "}"}]}, true]', [b"1.50", b'"a,]b"', b'{"x": [1, {"y": "}"}]}', b"true"]),
        (b'["\\"],", "\\\\"]', [b'"\\"],"', b'"\\\\"']),
    ],
)
def test_elements_keep_each_element_as_sent(text: bytes, expected: list[bytes]) -> None:
    """Commas and brackets inside strings (escaped quotes too) do not cut an element."""
    assert spans.elements(text) == expected


@pytest.mark.parametrize("text", [b"", b"   ", b'{"a": [1]}', b"1", b"[1, 2", b'["open'])
def test_elements_of_what_is_not_a_whole_array_is_none(text: bytes) -> None:
    """An object, a scalar, or an array cut short has no elements to give."""
    assert spans.elements(text) is None


JSON_VALUES = st.recursive(
    st.none() | st.text() | st.integers(-(2**53), 2**53),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(JSON_VALUES)
@settings(max_examples=200)
def test_a_value_cut_anywhere_has_no_end_and_whole_it_ends_where_it_does(value: object) -> None:
    """Cut at any byte (inside an escape, after an escaped quote), a value is unfinished: a reader
    refills its buffer and scans again instead of taking a bracket inside a string for the end."""
    text = orjson.dumps([value, '\\"]}'])  # an escaped quote and brackets in a string, always
    for cut in range(1, len(text)):
        assert spans.value_end(text[:cut], 0) is None, text[:cut]
    assert spans.value_end(text + b" ", 0) == len(text)


@pytest.mark.parametrize("cut", [b'"a\\', b'"a\\"', b'["a\\"]', b'{"k": "\\\\\\"}'])
def test_a_string_the_text_ends_in_is_unfinished(cut: bytes) -> None:
    assert spans.value_end(cut, 0) is None
    assert spans.value_end(bytearray(cut), 0) is None

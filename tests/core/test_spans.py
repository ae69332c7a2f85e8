"""Finding a value's own bytes in a JSON text: one pass over an array gives what `locate` gives."""

from __future__ import annotations

import json
import re
import tracemalloc

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


@pytest.mark.parametrize("body", [b'\\"', b"a\\n", b"\\u00e9]"], ids=["escaped quotes", "escapes", "unicode"])
def test_a_string_of_escapes_is_scanned_in_constant_memory(body: bytes) -> None:
    """The regex engine keeps no state per escape: a string of 4 MB of `\\"` is not 250 MB of scan.

    A repeated group it may backtrack into costs it about 120 bytes an iteration; an escape-dense
    string (a JSON document sent as a string) near 8 MiB took half a gigabyte to find its end.
    """
    text = b'["' + body * (4 * 10**6 // len(body)) + b'"]'
    padded, cut = text + b" ", text[:-2]
    tracemalloc.start()
    try:
        assert spans.value_end(padded, 0) == len(text)
        assert spans.value_end(cut, 0) is None
        assert spans.elements(text) == [text[1:-1]]  # the one element's bytes: 4 MB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 10**6, f"peak {peak / 10**6:.0f} MB"


@given(st.lists(st.sampled_from([b'"', b"\\", b"a", b"[", b"]", b"{", b"}", b",", b"\n"]), max_size=40))
def test_possessive_tokens_are_the_tokens_a_backtracking_regex_finds(pieces: list[bytes]) -> None:
    """A string's body can be read only one way, so not backtracking into it changes no token."""
    text = b"".join(pieces)
    for possessive in (spans.TOKEN, spans._STRUCTURE):
        backtracking = re.compile(possessive.pattern.replace(b"*+", b"*"), re.DOTALL)
        assert [m.span() for m in possessive.finditer(text)] == [m.span() for m in backtracking.finditer(text)]

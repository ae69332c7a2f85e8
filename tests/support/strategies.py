"""Hypothesis strategies for arbitrary JSON, shared by the property tests of every normalizer."""

from __future__ import annotations

from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)


def containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Lists and objects of `children` (a named function: Hypothesis inspects a lambda's source)."""
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)


JSON = st.recursive(SCALARS, containers, max_leaves=25)
"""Any JSON value a decoder can produce."""

JSON_OBJECTS = st.dictionaries(st.text(max_size=15), JSON, max_size=6)
"""Any JSON object."""

"""``is_id`` is a compiled match on every request that names an id: it must accept exactly
what a ULID decoder accepts, or a valid id would be a 404 (or garbage would reach the
database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ulid import ULID

from renderlab.ids import is_id, new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The alphabet, its lower case, the letters it leaves out, and look-alikes that a Unicode
# case-insensitive match would take (Kelvin sign, dotless i, long s, full-width digits).
NEAR = CROCKFORD + CROCKFORD.lower() + "ILOUilou-_ \n\u212a\u0131\u017f\uff10\u00e9"


def decodes(value: str) -> bool:
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=NEAR, min_size=24, max_size=28))
def test_is_id_accepts_what_a_ulid_decoder_accepts(value: str) -> None:
    assert is_id(value) == decodes(value)


@given(st.sampled_from(["0", "7", "8", "Z"]), st.text(alphabet=CROCKFORD, min_size=25, max_size=25))
def test_the_first_character_bounds_the_timestamp(first: str, rest: str) -> None:
    assert is_id(first + rest) == decodes(first + rest) == (first in "07")


def test_new_ids_are_ids_in_either_case() -> None:
    value = new_id()
    assert is_id(value) and is_id(value.lower())
    assert not is_id(value + "\n") and not is_id(value[:-1])

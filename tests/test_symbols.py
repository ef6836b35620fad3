"""Symbols as people type them, normalised to ccxt's `BASE/QUOTE`, with clear errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intel.errors import UnknownSymbolError, UserInputError
from intel.symbols import base_asset, normalize_symbol, resolve_symbol

SUPPORTED = ("BTC/USDT", "ETH/USDT")
CANONICAL = re.compile(r"[A-Z0-9]+/[A-Z0-9]+")


@pytest.mark.parametrize(
    "typed",
    [
        "eth",
        "ETH",
        "ETH/USDT",
        "ethusdt",
        "ETH-USDT",
        "Eth",
        " eth ",
        "eth/usdt",
        "eth_usdt",
        "ETH:USDT",
        "eth usdt",
    ],
)
def test_every_contract_form_of_eth(typed) -> None:
    assert normalize_symbol(typed) == "ETH/USDT"


@pytest.mark.parametrize("typed", ["btc", "BTC", "BTC/USDT", "btcusdt", "BTC-USDT"])
def test_every_contract_form_of_btc(typed) -> None:
    assert normalize_symbol(typed) == "BTC/USDT"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [("ethbtc", "ETH/BTC"), ("sol/usdc", "SOL/USDC"), ("btc-eur", "BTC/EUR")],
)
def test_other_quotes_are_kept(typed, canonical) -> None:
    assert normalize_symbol(typed) == canonical


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "x" * 40, "$$$", "ETH/", "/ETH", "a/b/c", "🚀", "eth🚀", "ETH\n/USDT", "ETH/US DT"],
    ids=[
        "empty",
        "spaces",
        "too-long",
        "dollars",
        "trailing-slash",
        "leading-slash",
        "three-parts",
        "emoji",
        "emoji-suffix",
        "newline",
        "inner-space",
    ],
)
def test_malformed_symbols_are_user_errors(typed) -> None:
    with pytest.raises(UserInputError, match="malformed symbol"):
        normalize_symbol(typed)


def test_a_malformed_symbol_message_is_one_bounded_line() -> None:
    with pytest.raises(UserInputError) as caught:
        normalize_symbol("\x1b[31m" + "Z" * 500)
    message = str(caught.value)
    assert "\n" not in message
    assert "\x1b" not in message
    assert len(message) < 120


def test_unknown_symbol_suggests_the_closest() -> None:
    with pytest.raises(UnknownSymbolError, match=r"did you mean BTC/USDT\?"):
        resolve_symbol("BTX", SUPPORTED)


def test_unknown_symbol_far_from_any_lists_the_supported() -> None:
    with pytest.raises(UnknownSymbolError, match="supported: BTC/USDT, ETH/USDT"):
        resolve_symbol("qqqqqq/zzz", SUPPORTED)


def test_resolve_accepts_any_typed_form() -> None:
    assert resolve_symbol("ethusdt", SUPPORTED) == "ETH/USDT"
    assert base_asset("ETH/USDT") == "ETH"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(
            alphabet=st.sampled_from(list("abetcusdETHBTCUSD0129/-_: \n\t$ßſı🚀é")), max_size=30
        ),
    )
)
@example("ETH\n/USDT")
@example("ſol")
def test_normalize_returns_canonical_form_or_raises_user_error(text) -> None:
    try:
        symbol = normalize_symbol(text)
    except UserInputError:
        return
    assert CANONICAL.fullmatch(symbol), repr(symbol)

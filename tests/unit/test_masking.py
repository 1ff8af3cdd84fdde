"""Secret masking: one-shot results, and streaming that agrees with them for every split."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from domain.masking import DEFAULT_REPLACEMENT, SecretMasker


def mask_all(data: bytes, secrets: list[str], replacement: bytes = DEFAULT_REPLACEMENT) -> bytes:
    """Mask ``data`` in one go (the one-shot result streaming must agree with)."""
    masker = SecretMasker(secrets, replacement)
    return masker.feed(data) + masker.flush()


def naive_mask(data: bytes, secrets: list[str], replacement: bytes) -> bytes:
    """Position by position, the longest secret starting here wins (an independent oracle).

    Secrets of fewer than four characters are left alone, as documented.
    """
    encoded = sorted({s.encode() for s in secrets if len(s) >= 4}, key=len, reverse=True)
    out = bytearray()
    pos = 0
    while pos < len(data):
        for secret in encoded:
            if data.startswith(secret, pos):
                out += replacement
                pos += len(secret)
                break
        else:
            out.append(data[pos])
            pos += 1
    return bytes(out)


def stream(secrets: list[str], chunks: list[bytes], replacement: bytes = b"<>") -> bytes:
    """Feed ``chunks`` one by one, checking the held-back bound after each, then flush."""
    masker = SecretMasker(secrets, replacement)
    longest = max((len(s.encode()) for s in secrets if len(s) >= 4), default=0)
    out = bytearray()
    for chunk in chunks:
        out += masker.feed(chunk)
        assert masker.held_back <= max(longest - 1, 0)
    out += masker.flush()
    assert masker.held_back == 0
    return bytes(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (clamped and sorted)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# Lowercase only: the default replacement is uppercase and dashes, so masking can never glue a
# new secret together out of the replacement and its neighbours.
small_text = st.text(alphabet="abc", max_size=60)
# Some below the four characters masking needs, most at or above it.
secret_lists = st.lists(st.text(alphabet="abc", min_size=1, max_size=7), max_size=4)


def test_a_secret_in_the_middle_of_a_line_is_replaced() -> None:
    assert mask_all(b"token=s3cr3t;\n", ["s3cr3t"]) == b"token=HIDDEN-BY-CIRRUS-CI;\n"


def test_every_occurrence_is_replaced() -> None:
    assert mask_all(b"xxxx-xxxx", ["xxxx"], b"*") == b"*-*"


def test_secrets_under_four_characters_are_left_visible_and_counted() -> None:
    masker = SecretMasker(["e", "ok", "abc", "abc", "", "abcd"], b"*")
    assert masker.feed(b"exit ok abc abcd") + masker.flush() == b"exit ok abc *"
    assert masker.unmaskable == 3


def test_four_characters_are_counted_as_characters_not_bytes() -> None:
    assert mask_all("été!".encode(), ["été!"], b"*") == b"*"
    assert mask_all("été".encode(), ["été"], b"*") == "été".encode()


def test_empty_secrets_are_ignored() -> None:
    masker = SecretMasker(["", ""])
    assert masker.feed(b"hello") == b"hello"
    assert masker.flush() == b""


def test_without_secrets_bytes_pass_through_unbuffered() -> None:
    masker = SecretMasker([])
    assert masker.feed(b"partial") == b"partial"
    assert masker.held_back == 0


def test_the_longest_secret_starting_at_a_position_wins() -> None:
    assert mask_all(b"abcdefg", ["abcd", "abcdef"], b"*") == b"*g"


def test_a_nested_shorter_secret_inside_a_longer_one_is_covered_by_it() -> None:
    assert mask_all(b"xpasswordx", ["password", "sword"], b"*") == b"x*x"


def test_overlapping_secrets_mask_the_leftmost_first() -> None:
    assert mask_all(b"abcdefg", ["abcd", "defg"], b"*") == b"*efg"


def test_secrets_are_compared_as_utf8_bytes() -> None:
    assert mask_all("mot de passe: étés\n".encode(), ["étés"], b"*") == b"mot de passe: *\n"


def test_a_secret_split_across_two_chunks_is_replaced() -> None:
    masker = SecretMasker(["hunter2"])
    first = masker.feed(b"pw: hun")
    second = masker.feed(b"ter2 ok")
    assert first == b"pw: "
    assert first + second + masker.flush() == b"pw: HIDDEN-BY-CIRRUS-CI ok"


def test_a_tail_that_cannot_start_a_secret_is_emitted_at_once() -> None:
    masker = SecretMasker(["hunter2"])
    assert masker.feed(b"hello world") == b"hello world"
    assert masker.held_back == 0


def test_a_shorter_complete_secret_waits_until_a_longer_one_is_ruled_out() -> None:
    masker = SecretMasker(["abcd", "abcdefgh"], b"*")
    assert masker.feed(b"xabcd") == b"x"
    assert masker.feed(b"ex") == b"*ex"


def test_a_held_back_prefix_that_ends_the_stream_is_flushed_unmasked() -> None:
    masker = SecretMasker(["secret"])
    assert masker.feed(b"a sec") == b"a "
    assert masker.flush() == b"sec"


def test_a_long_stream_in_small_chunks_keeps_only_a_short_tail() -> None:
    masker = SecretMasker(["0123456789"], b"#")
    data = b"xy0123456789" * 1000
    out = bytearray()
    for i in range(0, len(data), 7):
        out += masker.feed(data[i : i + 7])
        assert masker.held_back <= 9
    out += masker.flush()
    assert bytes(out) == b"xy#" * 1000


@given(small_text, secret_lists)
def test_one_shot_masking_agrees_with_the_naive_oracle(text: str, secrets: list[str]) -> None:
    assert mask_all(text.encode(), secrets, b"<>") == naive_mask(text.encode(), secrets, b"<>")


@given(small_text, secret_lists, st.lists(st.integers(min_value=0, max_value=60), max_size=12))
def test_any_split_into_chunks_gives_the_one_shot_result(
    text: str, secrets: list[str], cuts: list[int]
) -> None:
    data = text.encode()
    chunks = split(data, cuts)
    assert stream(secrets, chunks) == mask_all(data, secrets, b"<>")


@given(small_text, secret_lists, st.lists(st.integers(min_value=0, max_value=60), max_size=12))
def test_no_secret_survives_streaming(text: str, secrets: list[str], cuts: list[int]) -> None:
    data = text.encode()
    out = stream(secrets, split(data, cuts), DEFAULT_REPLACEMENT)
    maskable = [s for s in secrets if len(s) >= 4]
    assert [s for s in maskable if s.encode() in out] == []
    if any(s.encode() in data for s in maskable):
        assert DEFAULT_REPLACEMENT in out


@given(secret_lists, st.lists(small_text, max_size=20))
def test_byte_at_a_time_streaming_gives_the_one_shot_result(
    secrets: list[str], pieces: list[str]
) -> None:
    data = "".join(pieces).encode()
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert stream(secrets, chunks) == mask_all(data, secrets, b"<>")

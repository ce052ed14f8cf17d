"""The shared rule language for user numbers (nnunetv2.utilities.parameters)."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.exceptions import InferenceError, NnUNetError
from nnunetv2.utilities.parameters import check_number, check_numbers, is_valid, requirement


@pytest.mark.parametrize(
    ("value", "rule", "valid"),
    [
        (0.5, "(0, 1]", True),
        (1, "(0, 1]", True),
        (0, "(0, 1]", False),
        (1.0000001, "(0, 1]", False),
        (0, "[0, 1)", True),
        (1, "[0, 1)", False),
        (3, "integer >= 1", True),
        (np.int64(3), "integer >= 1", True),
        (3.0, "integer >= 1", False),  # a count given as a float is a mistake
        (0, "integer >= 1", False),
        (5, "integer [1, 999]", True),
        (1000, "integer [1, 999]", False),
        (-2.5, "number", True),
        (np.float32(2.5), "> 0", True),
        (float("nan"), "number", False),
        (float("inf"), ">= 0", False),
        (True, "> 0", False),  # bool is an int to Python, not to a user
        ("1", "> 0", False),
        (None, "> 0", False),
    ],
)
def test_rules(value, rule, valid):
    assert is_valid(value, rule) is valid


def test_requirements_read_as_words():
    assert requirement("(0, 1]") == "a number in (0, 1]"
    assert requirement("integer >= 0") == "an integer >= 0"
    assert requirement("number") == "a number"


def test_check_number_raises_one_line_of_the_callers_type():
    with pytest.raises(InferenceError, match=r"^predict: step_size must be a number in \(0, 1\], got 0$"):
        check_number("step_size", 0, "(0, 1]", where="predict", error=InferenceError)
    assert check_number("seed", None, "integer >= 0", optional=True) is None
    assert check_number("seed", 7, "integer >= 0") == 7


def test_check_numbers_names_the_first_bad_one():
    with pytest.raises(NnUNetError, match="b must be a number > 0, got -1"):
        check_numbers({"a": ">= 0", "b": "> 0"}, {"a": 0, "b": -1})


def test_a_malformed_rule_is_a_programming_error():
    with pytest.raises(ValueError, match="not a parameter rule"):
        is_valid(1, "between 0 and 1")

from __future__ import annotations

import sys
from collections import namedtuple
from dataclasses import dataclass

import pytest

import membound as mb


class Plain:
    def __init__(self) -> None:
        self.id = 1
        self.name = "ada"
        self.email = "ada@example.com"


class Slotted:
    __slots__ = ("email", "id", "name")

    def __init__(self) -> None:
        self.id = 1
        self.name = "ada"
        self.email = "ada@example.com"


@dataclass(slots=True)
class SlottedData:
    id: int = 1
    name: str = "ada"
    email: str = "ada@example.com"


Row = namedtuple("Row", "id name email")


def test_deep_sizeof_counts_nested_containers_once() -> None:
    inner = [1000, 2000]
    outer = [inner, inner]
    expected = sys.getsizeof(outer) + sys.getsizeof(inner) + 2 * sys.getsizeof(1000)
    assert expected == mb.deep_sizeof(outer)


def test_deep_sizeof_skips_shared_program_state() -> None:
    obj = Plain()
    size = mb.deep_sizeof(obj)
    assert size < 1000  # the class, its methods and the module are not counted
    assert size > sys.getsizeof(obj)  # the instance dict and its values are


def test_instance_sizes_rank_as_expected() -> None:
    sizes = {
        "dict": mb.instance_size(lambda: {"id": 1, "name": "ada", "email": "ada@example.com"}),
        "class": mb.instance_size(Plain),
        "slots": mb.instance_size(Slotted),
        "dataclass(slots)": mb.instance_size(SlottedData),
        "namedtuple": mb.instance_size(lambda: Row(1, "ada", "ada@example.com")),
    }
    assert sizes["slots"] < sizes["class"] < sizes["dict"]
    assert abs(sizes["slots"] - sizes["dataclass(slots)"]) < 8
    assert sizes["namedtuple"] < sizes["class"]
    assert sizes["slots"] >= sys.getsizeof(Slotted())


def test_instance_size_includes_what_the_constructor_allocates() -> None:
    per = mb.instance_size(lambda: [0] * 1000, n=1000)
    assert 8000 <= per <= 8200


def test_instance_size_rejects_n_below_1() -> None:
    with pytest.raises(mb.TargetError):
        mb.instance_size(Plain, n=0)

"""lightnas.registry: names to objects; an unknown name is bad input naming the key."""

import pytest

from lightnas.errors import ConfigError
from lightnas.registry import Registry


def test_registered_names_are_found_listed_and_sorted():
    things: Registry[int] = Registry("thing", "section.thing")
    assert things.register("b")(2) == 2  # the decorator hands the object back
    things.add("a", 1)
    assert things["a"] == 1 and "b" in things and "c" not in things
    assert list(things) == things.names() == ["a", "b"] and len(things) == 2
    assert things.valid() == "a, b"


def test_an_unknown_name_is_a_config_error_naming_the_key_and_the_valid_names():
    things: Registry[int] = Registry("thing", "section.thing")
    things.add("a", 1)
    with pytest.raises(ConfigError, match=r"section.thing='z' is not known; valid: a$"):
        things["z"]


def test_a_name_registered_twice_is_refused_unless_it_is_the_same_object():
    things: Registry[object] = Registry("thing", "section.thing")
    obj = object()
    things.add("a", obj)
    things.add("a", obj)  # importing a module twice registers the same object again
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        things.add("a", object())

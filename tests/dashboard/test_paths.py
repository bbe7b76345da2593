"""Paths named by requests stay inside the root."""

import pytest

from lightnas.dashboard.paths import OutsideRoot, relative_to_root, resolve_inside


@pytest.mark.parametrize(
    "path",
    [
        "",
        "..",
        "../x",
        "a/../../x",
        "/etc/passwd",
        ".dashboard/launches/x.log",
        "a/.hidden",
        "a\\..\\b",
        "a\x00b",
    ],
)
def test_paths_leaving_the_root_or_hidden_are_refused(tmp_path, path):
    (tmp_path / "a").mkdir()
    with pytest.raises(OutsideRoot):
        resolve_inside(tmp_path, path)


def test_a_symbolic_link_out_of_the_root_is_refused_and_one_inside_is_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "run").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "run" / "config.yml").write_text("epochs: 1\n")
    (root / "escape").symlink_to(outside)
    (root / "alias").symlink_to(root / "run")
    with pytest.raises(OutsideRoot):
        resolve_inside(root, "escape/secret.txt")
    assert resolve_inside(root, "alias/config.yml") == (root / "run" / "config.yml").resolve()


def test_inside_paths_resolve_and_name_themselves_relative_to_the_root(tmp_path):
    (tmp_path / "sweeps" / "s").mkdir(parents=True)
    full = resolve_inside(tmp_path, "sweeps/s")
    assert full == (tmp_path / "sweeps" / "s").resolve()
    assert relative_to_root(tmp_path, full) == "sweeps/s"

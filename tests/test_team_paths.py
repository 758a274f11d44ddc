"""Typed paths confined to the data roots: `..`, symbolic links and absolute paths outside.

Real folders and links in tmp_path; each refusal happens before anything is opened, and the
message says what was wrong and that nothing was read or written.
"""

from __future__ import annotations

import os

import pytest

from reflection.errors import PermissionDenied
from reflection.team.paths import confine, parse_roots, resolve_roots


@pytest.fixture
def tree(tmp_path):
    """root/ (with data.json, sub/), root2/, and outside/secret.txt beside them."""
    root, root2, outside = tmp_path / "root", tmp_path / "root2", tmp_path / "outside"
    for folder in (root / "sub", root2, outside):
        folder.mkdir(parents=True)
    (root / "data.json").write_text("[]")
    (outside / "secret.txt").write_text("secret")
    return root, root2, outside


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("data.json", "root/data.json"),  # relative: from the first root
        ("sub/new.json", "root/sub/new.json"),  # not there yet: an export target
        ("sub/../data.json", "root/data.json"),  # `..` that stays inside
        ("{root}/data.json", "root/data.json"),  # absolute, inside
        ("{root2}/out.jsonl", "root2/out.jsonl"),  # the second root
        ("{root}", "root"),  # the root itself (a datasets folder export)
    ],
)
def test_paths_inside_a_root_resolve(tree, typed, expected):
    root, root2, _ = tree
    base = root.parent
    path = confine(typed.format(root=root, root2=root2), [root, root2])
    assert path == base.resolve() / expected


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("../outside/secret.txt", "`..` leads out"),
        ("sub/../../outside/secret.txt", "`..` leads out"),
        ("..", "`..` leads out"),
        ("{outside}/secret.txt", "outside the data roots"),
        ("/etc/passwd", "outside the data roots"),
        ("{root}/../outside/secret.txt", "`..` leads out"),
        ("{root}x/file.json", "outside the data roots"),  # a sibling sharing the prefix
        ("~/anything.json", "outside the data roots"),
    ],
)
def test_paths_leaving_the_roots_are_refused(tree, typed, problem):
    root, root2, outside = tree
    with pytest.raises(PermissionDenied) as caught:
        confine(typed.format(root=root, outside=outside), [root, root2])
    message = str(caught.value)
    assert problem in message
    assert "nothing was read or written" in message
    assert message.startswith(typed.format(root=root, outside=outside))


def test_a_link_to_a_file_outside_is_refused(tree):
    root, _, outside = tree
    (root / "innocent.json").symlink_to(outside / "secret.txt")
    with pytest.raises(PermissionDenied, match="symbolic link leads out") as caught:
        confine("innocent.json", [root])
    assert str(outside / "secret.txt") in str(caught.value)


def test_a_linked_folder_leading_outside_is_refused_for_new_files_too(tree):
    root, _, outside = tree
    (root / "exports").symlink_to(outside, target_is_directory=True)
    for typed in ("exports/secret.txt", "exports/new.json", "exports/deeper/new.json"):
        with pytest.raises(PermissionDenied, match="symbolic link leads out"):
            confine(typed, [root])
    assert sorted(os.listdir(outside)) == ["secret.txt"]  # nothing was created there


def test_a_link_that_stays_inside_is_followed(tree):
    root, _, _ = tree
    (root / "alias.json").symlink_to(root / "data.json")
    assert confine("alias.json", [root]) == (root / "data.json").resolve()


def test_a_root_that_is_itself_a_link_works(tree, tmp_path):
    root, _, _ = tree
    (tmp_path / "linked_root").symlink_to(root, target_is_directory=True)
    assert (
        confine(tmp_path / "linked_root" / "data.json", [tmp_path / "linked_root"])
        == (root / "data.json").resolve()
    )


def test_no_roots_or_no_path(tree):
    root, _, _ = tree
    with pytest.raises(PermissionDenied, match="No data root"):
        confine("data.json", [])
    with pytest.raises(PermissionDenied, match="No path given"):
        confine("  ", [root])


def test_roots_from_the_environment_value(tree):
    root, root2, _ = tree
    value = os.pathsep.join([str(root), "", str(root2), str(root)])
    assert parse_roots(value) == [root, root2, root]
    assert resolve_roots(parse_roots(value)) == [root.resolve(), root2.resolve()]
    assert parse_roots(None) == []

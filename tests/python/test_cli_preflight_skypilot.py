"""``sky-async preflight --skypilot``: the upload it reports is SkyPilot 0.14.1's own.

Each count, byte total and blob id is compared with what SkyPilot's
``storage_utils.zip_files_and_folders`` and ``client.common._compute_zip_blob_id`` give for
the same source (the absolute path, as ``upload_mounts_to_api_server`` passes it).
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, import_skypilot
from test_cli_preflight import run_cli

sky, sky_storage, sky_common = import_skypilot("data.storage_utils", "client.common")


def skypilot_upload(sources: list[Path], out: Path) -> dict[str, Any]:
    """What SkyPilot itself zips for *sources*: counts, bytes, archive size and blob id."""
    sky_storage.zip_files_and_folders([str(source) for source in sources], str(out))
    with zipfile.ZipFile(out) as zipf:
        infos = zipf.infolist()
    symlinks = [i for i in infos if (i.external_attr >> 28) == 0xA]
    files = [i for i in infos if not i.is_dir() and (i.external_attr >> 28) != 0xA]
    return {
        "files": len(files),
        "directories": len(infos) - len(files) - len(symlinks),
        "symlinks": len(symlinks),
        "bytes": sum(i.file_size for i in files),
        "archive_bytes": out.stat().st_size,
        "blob_id": sky_common._compute_zip_blob_id(str(out)),
    }


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "src" / "build").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=clean_env())
    (root / ".gitignore").write_text("node_modules/\n*.log\n")
    (root / "src" / ".gitignore").write_text("build/\n")
    (root / "node_modules" / "pkg" / "index.js").write_bytes(os.urandom(200_000))
    (root / "src" / "build" / "out.o").write_bytes(os.urandom(50_000))
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "debug.log").write_text("log\n")
    (root / "README").write_text("readme\n")
    (root / "link").symlink_to("README")
    return root


@pytest.fixture
def sky_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "code").mkdir()
    (root / ".skyignore").write_text("# comment\ndata/raw\n*.ckpt\n")
    (root / "data" / "raw" / "x.bin").write_bytes(os.urandom(120_000))
    (root / "data" / "keep.csv").write_text("a,b\n")
    (root / "code" / "model.ckpt").write_bytes(os.urandom(30_000))
    (root / "code" / "train.py").write_text("pass\n")
    return root


def preflight_json(*args: str) -> dict[str, Any]:
    done = run_cli("--skypilot", "--json", *args)
    assert done.returncode == 0, done.stderr
    payload: dict[str, Any] = json.loads(done.stdout)
    return payload


@pytest.mark.parametrize("fixture", ["git_repo", "sky_tree"])
def test_reported_upload_is_skypilots(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    root: Path = request.getfixturevalue(fixture)
    expected = skypilot_upload([root], tmp_path / "sky.zip")
    payload = preflight_json(str(root))
    info = payload["trees"][0]["skypilot"]
    assert info["source"] == str(root)
    assert info["error"] is None
    for key, value in expected.items():
        assert info[key] == value, key
    # one source: the launch archive is that source's
    assert payload["skypilot"]["blob_id"] == expected["blob_id"]
    assert payload["skypilot"]["sources"] == [str(root)]


def test_pack_writes_skypilots_zip_byte_for_byte(git_repo: Path, tmp_path: Path) -> None:
    ours = tmp_path / "ours.zip"
    theirs = tmp_path / "theirs.zip"
    done = run_cli("--skypilot", "--pack", str(ours), str(git_repo))
    assert done.returncode == 0, done.stderr
    expected = skypilot_upload([git_repo], theirs)
    assert ours.read_bytes() == theirs.read_bytes()
    assert expected["blob_id"] in done.stdout
    assert f"-> {ours}" in done.stdout


def test_several_sources_make_one_launch_archive(git_repo: Path, sky_tree: Path, tmp_path: Path) -> None:
    ours = tmp_path / "ours.zip"
    payload = json.loads(
        run_cli("--skypilot", "--json", "--pack", str(ours), str(git_repo), str(sky_tree)).stdout
    )
    expected = skypilot_upload([git_repo, sky_tree], tmp_path / "theirs.zip")
    assert ours.read_bytes() == (tmp_path / "theirs.zip").read_bytes()
    assert payload["skypilot"]["blob_id"] == expected["blob_id"]
    assert payload["skypilot"]["files"] == expected["files"]
    # each tree alone has its own archive and blob id
    alone = [tree["skypilot"]["blob_id"] for tree in payload["trees"]]
    assert len(set(alone)) == 2 and expected["blob_id"] not in alone


def test_several_sources_are_packed_again_when_their_parts_cannot_be_joined(
    git_repo: Path, sky_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A part over zip64's limits cannot be copied into the launch archive as it is
    # (``concatenate`` raises ValueError): the launch archive is then packed from the sources.
    from sky_async._upload import pack as _pack
    from sky_async.cli import _preflight_skypilot

    def refuse(archives: list[str], output: str) -> int:
        raise ValueError(f"{archives[0]}: 2 GiB or more, zip64: pack again")

    monkeypatch.setattr(_pack, "concatenate", refuse)
    ours = tmp_path / "ours.zip"
    _, upload = _preflight_skypilot.analyze([str(git_repo), str(sky_tree)], None, str(ours))
    expected = skypilot_upload([git_repo, sky_tree], tmp_path / "theirs.zip")
    assert upload["error"] is None
    assert ours.read_bytes() == (tmp_path / "theirs.zip").read_bytes()
    assert upload["blob_id"] == expected["blob_id"]
    assert upload["archive_bytes"] == expected["archive_bytes"]


def test_excluded_paths_name_their_rule(git_repo: Path, sky_tree: Path) -> None:
    git_info = preflight_json(str(git_repo))["trees"][0]["skypilot"]
    assert git_info["ignore"] == "git"
    assert git_info["excluded"] == [
        {"path": "node_modules/", "size": 200_000, "rule": ".gitignore:1"},
        {"path": "src/build/", "size": 50_000, "rule": "src/.gitignore:1"},
        {"path": "debug.log", "size": 4, "rule": ".gitignore:2"},
    ]
    assert git_info["excluded_count"] == 3
    assert git_info["excluded_bytes"] == 250_004
    sky_info = preflight_json(str(sky_tree))["trees"][0]["skypilot"]
    assert sky_info["ignore"] == ".skyignore"
    assert sky_info["excluded"] == [
        {"path": "data/raw/", "size": 120_000, "rule": ".skyignore:2"},
        {"path": "code/model.ckpt", "size": 30_000, "rule": ".skyignore:3"},
    ]
    text = run_cli("--skypilot", str(git_repo)).stdout
    assert "node_modules/" in text and ".gitignore:1" in text and "src/.gitignore:1" in text
    assert "excluded       3 path(s)" in text


def test_only_the_ten_biggest_exclusions_are_listed(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    (root / ".skyignore").write_text("*.tmp\n")
    for i in range(15):
        (root / f"f{i:02}.tmp").write_bytes(b"x" * (i + 1))
    info = preflight_json(str(root))["trees"][0]["skypilot"]
    assert info["excluded_count"] == 15
    assert [item["size"] for item in info["excluded"]] == list(range(15, 5, -1))
    assert "... and 5 more" in run_cli("--skypilot", str(root)).stdout


def test_skypilots_warnings_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / ".gitignore").write_text("*.log\n")  # not a repository: SkyPilot warns it is ignored
    (root / "a.log").write_text("x")
    link = tmp_path / "via-link"
    link.symlink_to(root)
    payload = preflight_json(str(root), str(link))
    first, second = (tree["skypilot"] for tree in payload["trees"])
    assert any(
        ".gitignore" in warning and "not in a git repository" in warning for warning in first["warnings"]
    )
    assert first["excluded_count"] == 0 and first["ignore"] is None
    assert any("is a symlink" in warning for warning in second["warnings"])
    assert "warning" in run_cli("--skypilot", str(root)).stdout


def test_mounts_task_yaml_uploads_workdir_then_file_mounts(
    git_repo: Path, sky_tree: Path, tmp_path: Path
) -> None:
    task = tmp_path / "task.json"
    task.write_text(
        json.dumps({"workdir": str(git_repo), "file_mounts": {"/data": str(sky_tree), "/c": "s3://b"}})
    )
    payload = preflight_json("--mounts", str(task))
    expected = skypilot_upload([git_repo, sky_tree], tmp_path / "theirs.zip")
    assert payload["skypilot"]["sources"] == [str(git_repo), str(sky_tree)]
    assert payload["skypilot"]["blob_id"] == expected["blob_id"]
    assert [tree["path"] for tree in payload["trees"]] == [str(git_repo), str(sky_tree)]


def test_json_shape_is_the_documented_one(git_repo: Path) -> None:
    payload = preflight_json(str(git_repo))
    assert set(payload["trees"][0]["skypilot"]) == {
        "source", "ignore", "files", "directories", "symlinks", "bytes", "archive_bytes", "blob_id",
        "pack", "excluded_count", "excluded_bytes", "excluded", "warnings", "error",
    }  # fmt: skip
    assert set(payload["skypilot"]) == {
        "sources", "pack", "error", "files", "directories", "symlinks", "bytes", "archive_bytes", "blob_id",
    }  # fmt: skip
    # the old keys are all still there, and without --skypilot the new ones are null
    plain = json.loads(run_cli("--json", str(git_repo)).stdout)
    assert plain["skypilot"] is None and plain["trees"][0]["skypilot"] is None
    assert set(plain) == set(payload)
    assert set(plain["trees"][0]) == set(payload["trees"][0])
    assert plain["schema"] == payload["schema"] == "sky-async.preflight/1"


def test_an_archive_that_cannot_be_written_is_a_problem(git_repo: Path) -> None:
    done = run_cli("--skypilot", "--json", "--pack", str(git_repo / "inside.zip"), str(git_repo))
    assert done.returncode == 1
    payload = json.loads(done.stdout)
    assert "inside the source directory" in payload["trees"][0]["skypilot"]["error"]
    assert not (git_repo / "inside.zip").exists()


def test_pack_without_skypilot_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("--pack", str(tmp_path / "x.zip"), str(tmp_path))
    assert done.returncode == 2
    assert "--pack needs --skypilot" in done.stderr


def test_a_fifo_breaks_the_upload_and_is_reported_once(git_repo: Path) -> None:
    os.mkfifo(git_repo / "src" / "pipe")
    done = run_cli("--skypilot", "-q", str(git_repo))
    assert done.returncode == 1
    assert "upload         ERROR: the upload archive cannot be written:" in done.stdout
    assert "FIFO" in done.stdout and "more (see --max-problems)" not in done.stdout
    assert "verdict: 2 problem(s) found" in done.stdout


def test_a_dangling_skyignore_link_is_no_skyignore(git_repo: Path) -> None:
    # SkyPilot tests os.path.exists: a .skyignore that is a dangling link leaves git's rules on.
    from sky_async.cli import _preflight_skypilot

    root = git_repo
    (root / ".skyignore").symlink_to("nowhere")
    info = _preflight_skypilot.analyze_source(str(root), {})
    assert info["error"] is None
    assert info["ignore"] == "git"
    assert {"path": "node_modules/", "size": 200_000, "rule": ".gitignore:1"} in info["excluded"]

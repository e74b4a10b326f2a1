"""The generator writes the world one block of employees at a time: the bytes of every file must
not depend on the block size, and a block's random draws must not depend on its neighbours."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from sandbox.generate import generate_world
from sandbox.generate.blocks import Parts
from sandbox.generate.cli import main as cli_main
from sandbox.generate.common import Keyed, record_key
from sandbox.generate.presets import PRESETS


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def one_block(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("blocks") / "one"
    generate_world("tiny", 7, out, block_employees=PRESETS["tiny"].employees)
    return _digests(out)


@pytest.mark.parametrize("block", [1, 3, 7])
def test_every_file_is_byte_identical_whatever_the_block_size(one_block, tmp_path, block) -> None:
    out = tmp_path / f"block-{block}"
    generate_world("tiny", 7, out, block_employees=block)
    digests = _digests(out)
    assert sorted(digests) == sorted(one_block), "the same files, no scratch left behind"
    differing = [name for name in one_block if digests[name] != one_block[name]]
    assert not differing, f"block size {block} changed {differing}"
    assert "time/time_entries.parquet" in digests and "erp/TimeActivity.parquet" in digests


def test_a_different_seed_still_changes_the_blocked_files(one_block, tmp_path) -> None:
    out = tmp_path / "seed-8"
    generate_world("tiny", 8, out, block_employees=3)
    digests = _digests(out)
    assert digests["time/time_entries.parquet"] != one_block["time/time_entries.parquet"]
    assert digests["erp/TimeActivity.parquet"] != one_block["erp/TimeActivity.parquet"]


def test_keyed_draws_depend_on_the_record_not_on_its_neighbours() -> None:
    keys = record_key(np.arange(1000), 5)
    whole = Keyed(7, "phase", keys)
    part = Keyed(7, "phase", keys[400:450])
    first, second = whole.random(), whole.integers(3, 9)
    assert np.array_equal(part.random(), first[400:450])
    assert np.array_equal(part.integers(3, 9), second[400:450])
    assert ((second >= 3) & (second < 9)).all()
    assert not np.array_equal(Keyed(8, "phase", keys).random(), first), "the seed matters"
    assert not np.array_equal(Keyed(7, "other", keys).random(), first), "the phase matters"
    assert 0.45 < first.mean() < 0.55


def test_parts_cut_row_groups_at_fixed_sizes(tmp_path) -> None:
    import polars as pl
    import pyarrow.parquet as pq

    frame = pl.DataFrame({"id": np.arange(25), "x": [None] * 5 + [f"v{i}" for i in range(20)]})
    files = []
    for cuts in ([25], [5, 20], [1, 2, 3, 4, 15]):
        parts = Parts(tmp_path / f"{len(cuts)}" / "e.parquet", rows_per_group=4)
        start = 0
        for size in cuts:
            parts.add(frame.slice(start, size))
            start += size
        files.append(parts.finish())
    contents = {path.read_bytes() for path in files}
    assert len(contents) == 1
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 7
    assert pl.read_parquet(files[1]).equals(frame)
    assert not any(list(path.parent.glob(".*parts")) for path in files)


def test_cli_refuses_a_block_size_below_one(tmp_path, capsys) -> None:
    out = tmp_path / "w"
    assert cli_main(["--preset", "tiny", "--out", str(out), "--block-employees", "0"]) == 2
    assert "--block-employees must be at least 1" in capsys.readouterr().err
    assert not out.exists()


def test_the_memory_estimate_follows_the_block_size() -> None:
    from sandbox.generate.presets import estimated_peak_gib

    xl = PRESETS["xl"]
    assert estimated_peak_gib(xl, 100) < estimated_peak_gib(xl, 1000) < estimated_peak_gib(xl, 30_000)
    assert estimated_peak_gib(xl) < 4.0, "xl fits an 8 GiB laptop with the default blocks"
    tiny = PRESETS["tiny"]
    assert estimated_peak_gib(tiny, 10**6) == estimated_peak_gib(tiny, tiny.employees), (
        "a block holds at most the firm"
    )


def test_one_block_of_the_whole_xl_firm_is_refused_up_front(tmp_path, capsys) -> None:
    from sandbox.generate.presets import available_gib, estimated_peak_gib

    if estimated_peak_gib(PRESETS["xl"], 30_000) <= 0.9 * available_gib():
        pytest.skip("this machine has the memory for xl in one block")
    out = tmp_path / "w"
    assert cli_main(["--preset", "xl", "--out", str(out), "--block-employees", "30000"]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory to generate" in err and "--block-employees 30000" in err
    assert not out.exists()

import os
import stat

import numpy as np
import pytest

from common.fileio import atomic_path, write_json, write_npy, write_text


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "data.txt"
    write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.txt"]


def test_written_files_are_readable_by_others(tmp_path):
    import torch

    from common.checkpoint import save_weights

    write_json(tmp_path / "a.json", {"a": 1})
    save_weights(tmp_path / "w.safetensors", torch.nn.Linear(2, 2))  # replaces its file
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.json", "w.safetensors"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask, name


def test_npy_round_trip_without_pickle(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_npy(tmp_path / "m.npy", arr)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy", allow_pickle=False), arr)

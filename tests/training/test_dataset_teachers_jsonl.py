"""The training dataset reads the index `drive-jepa teachers` writes (teachers.jsonl), by file or folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.data.dataset import DataLayoutError, load_teacher_index


def test_teachers_jsonl_by_file_and_folder(tmp_path):
    rows = [
        {"scene_id": "clipA/00005", "file": "a.json.gz", "teachers": [3, 17, 42], "scores": [1.0, 0.99, 0.96]},
        {"scene_id": "tok_b", "file": "b.json.gz", "teachers": [], "scores": []},
    ]
    (tmp_path / "teachers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"scene_id": "cut')
    for src in (tmp_path, tmp_path / "teachers.jsonl"):
        index = load_teacher_index(src)
        assert set(index) == {"clipA/00005", "tok_b"}  # the interrupted last line is dropped, not fatal
        assert index["clipA/00005"].tolist() == [3, 17, 42] and index["clipA/00005"].dtype == np.int64
        assert index["tok_b"].size == 0
    with pytest.raises(DataLayoutError, match="not found"):
        load_teacher_index(tmp_path / "nothing" / "teachers.jsonl")

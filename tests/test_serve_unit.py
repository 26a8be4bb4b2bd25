import json

import pytest

from seqlab.errors import SeqlabError
from seqlab.serve import BadInput, check_texts, resolve_checkpoint


@pytest.mark.parametrize("texts,status,message", [
    ([], 422, "texts is empty"),
    (["ok", "  "], 422, "texts[1] is empty"),
    (["x" * 11], 413, "texts[0] has 11 characters; at most 10"),
    (["a"] * 4, 413, "4 texts in one request; at most 3"),
])
def test_check_texts(texts, status, message):
    with pytest.raises(BadInput) as err:
        check_texts(texts, max_texts=3, max_chars=10)
    assert err.value.status == status and message in err.value.message


def test_check_texts_accepts_good_input():
    check_texts(["fine", "also fine"], max_texts=3, max_chars=10)


def test_resolve_checkpoint(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"checkpoint": "/runs/x/epoch_003"}))
    assert resolve_checkpoint(str(tmp_path)) == "/runs/x/epoch_003"
    assert resolve_checkpoint(str(tmp_path / "best.json")) == "/runs/x/epoch_003"
    assert resolve_checkpoint("/some/checkpoint") == "/some/checkpoint"
    with pytest.raises(SeqlabError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "other.json"))

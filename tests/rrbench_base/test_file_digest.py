"""One file digest for every cache key and checkpoint identity: the plain SHA-256 of the bytes."""

import hashlib

from eval.trec import file_sha256 as trec_sha256
from rrbench_base.file_digest import BLOCK_BYTES, file_sha256
from stage1_dual.trainable.file_identity import sha256_hex
from stage2_rerank.content_identity import file_sha256 as content_sha256


def test_digest_is_sha256_of_the_bytes_across_block_boundaries(tmp_path):
    path = tmp_path / "blob"
    data = bytes(range(256)) * ((BLOCK_BYTES // 256) + 3)
    path.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == want
    assert trec_sha256(path) == sha256_hex(path) == content_sha256(path) == want

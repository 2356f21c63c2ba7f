import pytest

from workflow.local_runner.storage import LocalS3, StorageError


@pytest.fixture
def s3(tmp_path):
    store = LocalS3(tmp_path)
    for key in (
        "b/data/entities/part-0.parquet",
        "b/data/entities/part-1.parquet",
        "b/data/entities/part-2.parquet",
        "b/data/history/part-0.parquet",
        "b/spec/credit.yaml",
    ):
        path = store.path(f"s3://{key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key)
    return store


def test_prefixes_behave_like_s3(s3):
    assert [k for k, _ in s3.objects("s3://b/data/entities/")] == [
        "part-0.parquet",
        "part-1.parquet",
        "part-2.parquet",
    ]
    assert [k for k, _ in s3.objects("s3://b/spec/credit.yaml")] == ["credit.yaml"]
    # A prefix that stops mid-name still matches, as in S3.
    assert {k for k, _ in s3.objects("s3://b/data/ent")} == {
        "ities/part-0.parquet",
        "ities/part-1.parquet",
        "ities/part-2.parquet",
    }


def test_sharded_download_splits_objects_across_instances(s3, tmp_path):
    got = []
    for index in range(2):
        dest = tmp_path / f"host{index}"
        s3.download("s3://b/data/entities/", dest, shard=(index, 2))
        got.append(sorted(p.name for p in dest.iterdir()))
    assert got == [["part-0.parquet", "part-2.parquet"], ["part-1.parquet"]]


def test_missing_input_and_bad_uri_are_named(s3, tmp_path):
    with pytest.raises(StorageError, match="no objects at s3://b/nothing/"):
        s3.download("s3://b/nothing/", tmp_path / "x")
    with pytest.raises(StorageError, match="not a usable S3 URI"):
        s3.path("s3://b/../../etc")


def test_digest_changes_with_content(s3):
    before = s3.digest("s3://b/data/")
    s3.path("s3://b/data/history/part-0.parquet").write_text("changed")
    assert s3.digest("s3://b/data/") != before

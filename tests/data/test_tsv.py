"""Loading GLUE from a local directory in the original TSV layout: the real files in the shared GLUE
directory (counts from its PROVENANCE.md), and small files written here for the formats of the tasks
that are not on disk (QQP, MNLI, QNLI, WNLI) and for malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from nxm_deploy.data import get_task, load_split, resolve_data_dir
from nxm_deploy.errors import DataError

# Rows per file, header excluded, from /work/shared/data/glue/PROVENANCE.md.
COUNTS = [
    ("SST-2", "train", 67_349),
    ("SST-2", "dev", 872),
    ("CoLA", "train", 8_551),
    ("CoLA", "dev", 1_043),
    ("MRPC", "train", 3_668),
    ("MRPC", "dev", 408),
    ("RTE", "train", 2_490),
    ("RTE", "dev", 277),
    ("STS-B", "train", 5_749),
    ("STS-B", "dev", 1_500),
]


@pytest.mark.parametrize(("task", "split", "rows"), COUNTS)
def test_real_files_have_the_published_row_counts(glue_dir: Path, task: str, split: str, rows: int):
    data = load_split(task, split, data_dir=glue_dir)
    assert len(data) == len(data.texts_a) == len(data.labels) == rows
    assert data.name == split and data.task is get_task(task)
    assert data.source == str(glue_dir / task / f"{split}.tsv")
    if data.task.is_pair:
        assert data.texts_b is not None and len(data.texts_b) == rows
    else:
        assert data.texts_b is None
    if data.task.is_regression:
        assert all(isinstance(v, float) and 0.0 <= v <= 5.0 for v in data.labels)
    else:
        assert set(data.labels) == set(range(data.task.num_labels))


@pytest.mark.parametrize(
    ("task", "counts"),
    [
        ("SST-2", {0: 428, 1: 444}),
        ("CoLA", {0: 322, 1: 721}),
        ("MRPC", {0: 129, 1: 279}),
        ("RTE", {0: 146, 1: 131}),
    ],
)
def test_dev_label_counts(glue_dir: Path, task: str, counts: dict[int, int]):
    labels = load_split(task, "dev", data_dir=glue_dir).labels
    assert {k: labels.count(k) for k in counts} == counts


def test_mrpc_first_dev_row_keeps_quotes_and_drops_the_bom(glue_dir: Path):
    dev = load_split("mrpc", "dev", data_dir=glue_dir)
    assert dev.texts_a[0] == (
        "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy ."
    )
    assert dev.texts_b[0] == '" The foodservice pie business does not fit our long-term growth strategy .'
    assert dev.labels[0] == 1  # equivalent
    assert dev.labels[1] == 0


def test_cola_rows_without_header_or_final_newline(glue_dir: Path):
    dev = load_split("CoLA", "dev", data_dir=glue_dir)
    assert dev.texts_a[0] == "The sailors rode the breeze clear of the rocks."
    assert (dev.texts_a[4], dev.labels[4]) == ("As you eat the most, you want the least.", 0)
    assert (dev.texts_a[-1], dev.labels[-1]) == ("John talked to Bill about himself.", 1)


def test_stsb_scores_are_floats_from_the_last_column(glue_dir: Path):
    dev = load_split("sts-b", "dev", data_dir=glue_dir)
    assert dev.texts_a[1] == "A young child is riding a horse."
    assert dev.texts_b[1] == "A child is riding a horse."
    assert dev.labels[:2] == [5.0, 4.75]
    assert sum(dev.labels) == pytest.approx(3545.86)
    # "2.33333333333333" in the file is held at float32 precision, as the hub holds it.
    assert dev.labels[1275] == 2.3333333


def test_sst2_and_rte_rows(glue_dir: Path):
    train = load_split("sst2", "train", data_dir=glue_dir)
    assert (train.texts_a[0], train.labels[0]) == ("hide new secretions from the parental units ", 0)
    rte = load_split("rte", "dev", data_dir=glue_dir)
    assert rte.texts_b[0] == "Christopher Reeve had an accident."
    assert rte.labels[:2] == [1, 0]  # not_entailment, entailment


def test_fingerprint_is_stable_across_loads(glue_dir: Path):
    a = load_split("RTE", "dev", data_dir=glue_dir)
    b = load_split("rte", "dev", data_dir=str(glue_dir))
    assert a.fingerprint() == b.fingerprint()
    assert a.select(100).fingerprint() == b.select(100).fingerprint() != a.fingerprint()


def test_glue_dir_env_and_task_directory(glue_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    assert resolve_data_dir(None) == glue_dir
    assert len(load_split("RTE", "dev")) == 277  # None -> $GLUE_DIR
    # A directory that directly holds the task's files.
    assert load_split("RTE", "dev", data_dir=glue_dir / "RTE").source == str(glue_dir / "RTE" / "dev.tsv")


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    assert resolve_data_dir(None) is None
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(str(tmp_path)) == tmp_path
    with pytest.raises(DataError, match=r"^GLUE data directory \S+ does not exist$"):
        resolve_data_dir(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a directory"):
        resolve_data_dir(tmp_path / "file")
    monkeypatch.setenv("GLUE_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\(from \$GLUE_DIR\) does not exist"):
        resolve_data_dir(None)
    assert resolve_data_dir(tmp_path) == tmp_path  # the argument wins over $GLUE_DIR


def test_missing_file(tmp_path: Path):
    (tmp_path / "RTE").mkdir()
    with pytest.raises(DataError) as err:
        load_split("RTE", "train", data_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"no RTE train file: looked for {tmp_path / 'RTE' / 'train.tsv'}")
    with pytest.raises(DataError, match=r"MNLI/dev_mismatched\.tsv"):
        load_split("MNLI", "dev_mismatched", data_dir=tmp_path)


# --- small files in the formats of the tasks that are not on disk ------------------------------------

MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER.replace("label1\t", "label1\tlabel2\tlabel3\tlabel4\tlabel5\t")


def _write(root: Path, task: str, name: str, lines: list[str], bom: bool = False, end: str = "\n") -> Path:
    path = root / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((("\ufeff" if bom else "") + end.join(lines) + end).encode("utf-8"))
    return path


def _mnli_row(i: int, s1: str, s2: str, gold: str, dev: bool) -> str:
    labels = [gold] * (5 if dev else 1)
    return "\t".join(
        [str(i), "31193", f"{i}n", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", s1, s2, *labels, gold]
    )


def test_qqp_format(tmp_path: Path):
    _write(
        tmp_path,
        "QQP",
        "dev.tsv",
        [
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            '201359\t303345\t303346\tWhy are "African-Americans" so beautiful?\t'
            "Why are hispanics so beautiful?\t0",
            "263843\t69383\t380476\tI want to pursue PhD in Computer Science?\tHow can I get a PhD?\t1",
        ],
        bom=True,
        end="\r\n",
    )
    dev = load_split("QQP", "dev", data_dir=tmp_path)
    assert dev.texts_a == [
        'Why are "African-Americans" so beautiful?',
        "I want to pursue PhD in Computer Science?",
    ]
    assert dev.texts_b == ["Why are hispanics so beautiful?", "How can I get a PhD?"]
    assert dev.labels == [0, 1]


def test_mnli_format(tmp_path: Path):
    _write(
        tmp_path,
        "MNLI",
        "train.tsv",
        [MNLI_TRAIN_HEADER, _mnli_row(0, "A man sleeps.", "A man rests.", "entailment", dev=False)],
    )
    rows = [
        _mnli_row(0, "The new rights are nice.", "Everyone loves them.", "neutral", dev=True),
        _mnli_row(1, "This site includes a list.", "The site has no list.", "contradiction", dev=True),
    ]
    _write(tmp_path, "MNLI", "dev_matched.tsv", [MNLI_DEV_HEADER, *rows])
    _write(tmp_path, "MNLI", "dev_mismatched.tsv", [MNLI_DEV_HEADER, rows[1]])
    assert load_split("mnli", "train", data_dir=tmp_path).labels == [0]
    matched = load_split("mnli", "dev", data_dir=tmp_path)
    assert matched.name == "dev_matched"
    assert matched.texts_a == ["The new rights are nice.", "This site includes a list."]
    assert matched.texts_b == ["Everyone loves them.", "The site has no list."]
    assert matched.labels == [1, 2]  # neutral, contradiction
    mismatched = load_split("mnli", "dev_mismatched", data_dir=tmp_path)
    assert (mismatched.name, mismatched.labels) == ("dev_mismatched", [2])


def test_qnli_keeps_a_leading_quote(tmp_path: Path):
    _write(
        tmp_path,
        "QNLI",
        "dev.tsv",
        [
            "index\tquestion\tsentence\tlabel",
            '694\tWho won the Nobel Prize?\t" Luis Walter Alvarez, a physicist, won it.\tentailment',
            "695\tWhat is it?\tIt is not said.\tnot_entailment",
        ],
    )
    dev = load_split("qnli", "dev", data_dir=tmp_path)
    assert dev.texts_b[0] == '" Luis Walter Alvarez, a physicist, won it.'
    assert dev.labels == [0, 1]


def test_wnli_format_in_a_lowercase_task_directory(tmp_path: Path):
    _write(
        tmp_path,
        "wnli",
        "train.tsv",
        [
            "index\tsentence1\tsentence2\tlabel",
            "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\t"
            "The carrot had a hole.\t1",
            "1\tJohn couldn't see the stage with Billy in front of him.\tJohn is so short.\t0",
        ],
    )
    train = load_split("WNLI", "train", data_dir=tmp_path)
    assert train.labels == [1, 0]  # entailment, not_entailment
    assert train.source == str(tmp_path / "wnli" / "train.tsv")


# --- malformed input: one line each, naming file and line ---------------------------------------------

BAD = [
    # (task, file, lines, expected message after "<path> ")
    (
        "QQP",
        "dev.tsv",
        ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "1\t2\t3\tHow?\tWhy?\t0", "4\t5\t6\tHow?\t1"],
        "line 3: expected 6 tab-separated fields (id, qid1, qid2, question1, question2, is_duplicate), got 5",
    ),
    (
        "QQP",
        "dev.tsv",
        ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "1\t2\t3\tHow?\tWhy?\tyes"],
        "line 2: unknown QQP label 'yes' in column 'is_duplicate' (expected one of: 0, 1)",
    ),
    (
        "MNLI",
        "dev_matched.tsv",
        [MNLI_DEV_HEADER, _mnli_row(0, "a", "b", "entailment", dev=True), "0\tonly\tthree"],
        "line 3: expected at least 16 tab-separated fields",
    ),
    (
        "MNLI",
        "train.tsv",
        [MNLI_TRAIN_HEADER, "", _mnli_row(0, "a", "b", "-", dev=False)],
        "line 3: unknown MNLI label '-' in column 'gold_label' "
        "(expected one of: entailment, neutral, contradiction)",
    ),
    (
        "QNLI",
        "train.tsv",
        ["index\tquestion\tsentence\tlabel", "0\tq?\ts.\t1"],
        "line 2: unknown QNLI label '1' in column 'label' (expected one of: entailment, not_entailment)",
    ),
    (
        "QNLI",
        "train.tsv",
        ["index\tsentence1\tsentence2\tlabel", "0\tq?\ts.\tentailment"],
        "line 1: header lacks column 'question' that QNLI needs (header: index, sentence1, sentence2, label)",
    ),
    (
        "WNLI",
        "dev.tsv",
        ["index\tsentence1\tsentence2\tlabel", "0\ta\tb\t1\textra"],
        "line 2: expected 4 tab-separated fields (index, sentence1, sentence2, label), got 5",
    ),
    (
        "WNLI",
        "dev.tsv",
        ["index\tsentence1\tsentence2\tlabel", "0\ta\tb\t"],
        "line 2: unknown WNLI label '' in column 'label'",
    ),
    (
        "CoLA",
        "train.tsv",
        ["gj04\t1\t\tFine.", "gj04\t1\tA bad row without the mark column."],
        "line 2: expected 4 tab-separated fields (source, label, original_mark, sentence), got 3",
    ),
    (
        "STS-B",
        "dev.tsv",
        [
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            "0\tmain\tMSRvid\t2012\t0\tnone\tnone\ta\tb\t5.5",
        ],
        "line 2: STS-B score '5.5' in the last field is not a number from 0 to 5",
    ),
    ("SST-2", "dev.tsv", [], "empty file; expected a header line for SST-2"),
]


@pytest.mark.parametrize(
    ("task", "name", "lines", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)]
)
def test_malformed_files(tmp_path: Path, task: str, name: str, lines: list[str], message: str):
    path = _write(tmp_path, task, name, lines, end="\n" if lines else "")
    split = "dev" if name.startswith("dev") else "train"
    with pytest.raises(DataError) as err:
        load_split(task, split, data_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path} {message}") or msg.startswith(f"{path}: {message}")


def test_stsb_extra_fields_take_the_score_from_the_last(tmp_path: Path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    _write(tmp_path, "STS-B", "train.tsv", [header, "0\tg\tf\ty\t0\tn\tn\ta\tb\tleftover\t2.400"])
    train = load_split("STS-B", "train", data_dir=tmp_path)
    assert (train.texts_a, train.texts_b, train.labels) == (["a"], ["b"], [2.4])


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "SST-2" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(DataError, match=r"dev.tsv: not UTF-8 text"):
        load_split("SST-2", "dev", data_dir=tmp_path)

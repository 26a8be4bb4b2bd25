import math

import pandas as pd
import pytest

from seqlab.data.spans import (
    Mention,
    check_span_table,
    mention_rows,
    parse_ann,
    read_brat,
    read_brat_dir,
    split_sentences,
)
from seqlab.errors import SeqlabError

# A BioNLP-ST style document: two sentences, a Greek letter (one character, as brat counts it).
GE_TEXT = "TNF-\u03b1 induces IL-2 in T cells. In contrast, IL-4 binds p50.\n"
GE_ANN = (
    "E1\tPositive_regulation:T3 Theme:T2 Cause:T1\n"  # an event before its trigger's T line
    "T1\tProtein 0 5\tTNF-\u03b1\n"
    "T2\tProtein 14 18\tIL-2\n"
    "T3\tPositive_regulation 6 13\tinduces\n"
    "T4\tProtein 44 48\tIL-4\n"
    "T5\tProtein 55 58\tp50\n"
    "R1\tBinding Arg1:T4 Arg2:T5\n"
    "A1\tNegation E1\n"
    "M1\tSpeculation E1\n"
    "N1\tReference T4 Uniprot:P05112\tIL-4\n"
    "#1\tAnnotatorNotes T4\tchecked\n"
    "*\tEquiv T4 T5\n"
    "\n"
)


def write_pair(folder, name, text, ann, newline="\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8", newline=newline)
    (folder / f"{name}.ann").write_text(ann, encoding="utf-8", newline=newline)
    return folder / f"{name}.txt"


def test_read_brat_pair(tmp_path):
    text, mentions = read_brat(write_pair(tmp_path, "doc", GE_TEXT, GE_ANN))
    assert text == GE_TEXT
    # document order, not file order; the event's trigger is marked
    assert [(m.id, m.label, m.text, m.kind) for m in mentions] == [
        ("T1", "Protein", "TNF-\u03b1", "entity"),
        ("T3", "Positive_regulation", "induces", "trigger"),
        ("T2", "Protein", "IL-2", "entity"),
        ("T4", "Protein", "IL-4", "entity"),
        ("T5", "Protein", "p50", "entity"),
    ]
    assert mentions[2].fragments == ((14, 18),) and (mentions[2].start, mentions[2].end) == (14, 18)


def test_rows_share_their_sentence(tmp_path):
    text, mentions = read_brat(write_pair(tmp_path, "doc", GE_TEXT, GE_ANN))
    rows = mention_rows("doc", text, mentions)
    first, second = "TNF-\u03b1 induces IL-2 in T cells.", "In contrast, IL-4 binds p50."
    assert [r["text"] for r in rows] == [first] * 3 + [second] * 2
    assert rows[3] == {"text": second, "start": 13, "end": 17, "label": "Protein", "doc": "doc",
                       "mention": "IL-4", "kind": "entity", "fragments": "13-17", "id": "T4"}
    assert rows[1]["kind"] == "trigger" and rows[1]["mention"] == "induces"


def test_discontinuous_span(tmp_path):
    text = "All of my knees and elbow ached. It hurt."
    hurt = text.index("hurt")
    ann = f"T1\tADR 10 15;20 25\tknees elbow\nT2\tADR {hurt} {hurt + 4}\thurt\n"
    text, (m, _) = read_brat(write_pair(tmp_path, "cadec", text, ann))
    assert m.fragments == ((10, 15), (20, 25)) and (m.start, m.end) == (10, 25) and m.text == "knees elbow"
    rows = mention_rows("cadec", text, [m, _])
    assert rows[0]["mention"] == "knees and elbow" and rows[0]["fragments"] == "10-15;20-25"
    # offsets are relative to the sentence, not the document
    assert rows[1]["text"] == "It hurt." and (rows[1]["start"], rows[1]["end"]) == (3, 7)
    assert rows[1]["fragments"] == "3-7"


def test_offsets_that_do_not_match_the_text(tmp_path):
    ann = "T1\tProtein 0 5\tTNF-\u03b1\nT2\tProtein 15 19\tIL-2\n"  # one character too far
    with pytest.raises(SeqlabError) as err:
        read_brat(write_pair(tmp_path, "doc", GE_TEXT, ann))
    msg = str(err.value)
    assert "doc.ann: line 2 (T2): offsets 15-19" in msg and "'L-2 '" in msg and "'IL-2'" in msg
    assert "does not match its .txt" in msg and "\n" not in msg


def test_offsets_past_the_end():
    past = r"line 1 \(T1\): offsets 50-70 run past the end of the text \(60 characters\)"
    with pytest.raises(SeqlabError, match=past):
        parse_ann("T1\tProtein 50 70\tx\n", GE_TEXT, where="doc.ann")


@pytest.mark.parametrize("line", [
    "T1\tProtein 0 5",  # no text field
    "T1 Protein 0 5 TNF-a",  # spaces instead of tabs
    "T1\tProtein 0 five\tTNF-a",
    "T1\tProtein 0 5;7\tTNF-a",
    "T1\tProtein 5 5\t",  # start >= end
    "T1\tProtein -1 5\tTNF-a",
])
def test_malformed_t_line(line):
    with pytest.raises(SeqlabError, match=r"x\.ann: line 2 reads .*; expected T<n>\\t<Type> <start> <end>"):
        parse_ann("T9\tProtein 0 5\tTNF-\u03b1\n" + line + "\n", GE_TEXT, where="x.ann")


def test_event_with_unknown_trigger():
    with pytest.raises(SeqlabError, match=r"line 2 \(E1\): trigger 'T7' is not a T annotation"):
        parse_ann("T1\tProtein 0 5\tTNF-\u03b1\nE1\tBinding:T7 Theme:T1\n", GE_TEXT, where="x.ann")


def test_crlf_offsets_count_both_characters(tmp_path):
    # brat counts "\r\n" as two characters; reading with newline translation would shift IL-2 by one
    text = "First line.\nIL-2 is here.\n"
    txt = write_pair(tmp_path, "win", text, "T1\tProtein 13 17\tIL-2\n", newline="\r\n")
    text, mentions = read_brat(txt)
    assert text == "First line.\r\nIL-2 is here.\r\n"
    (row,) = mention_rows("win", text, mentions)
    assert row["text"] == "IL-2 is here." and (row["start"], row["end"], row["mention"]) == (0, 4, "IL-2")


def test_read_brat_dir(tmp_path):
    write_pair(tmp_path / "train", "b", GE_TEXT, GE_ANN)
    write_pair(tmp_path / "train", "a", "IL-2.", "T1\tProtein 0 4\tIL-2\n")
    write_pair(tmp_path, "z", "p50.", "T1\tProtein 0 3\tp50\n")
    (tmp_path / "LICENSE").write_text("not a document")
    (tmp_path / "only.txt").write_text("a .txt without .ann is not a document")
    docs = read_brat_dir(tmp_path)
    assert list(docs) == ["train/a", "train/b", "z"]
    assert docs["z"] == ("p50.", [Mention("T1", "Protein", ((0, 3),), "p50", "entity")])


def test_read_brat_dir_needs_txt_and_ann(tmp_path):
    write_pair(tmp_path, "a", "IL-2.", "T1\tProtein 0 4\tIL-2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.ann").write_text("T1\tProtein 0 4\tIL-2\n")
    with pytest.raises(SeqlabError, match=r"b\.ann has no b\.txt beside it; every \.ann needs the \.txt"):
        read_brat_dir(tmp_path)
    with pytest.raises(SeqlabError, match="missing is not a directory"):
        read_brat_dir(tmp_path / "missing")
    (tmp_path / "none").mkdir()
    with pytest.raises(SeqlabError, match=r"none has no \.ann file; expected brat"):
        read_brat_dir(tmp_path / "none")


ABSTRACT = (
    "IL-2 gene expression requires reactive oxygen production by 5-lipoxygenase (e.g. in T cells). "
    "As Smith et al. showed in Fig. 2, CD28 signals through NF-kappa B in human T cells. "
    "In contrast, NF-kappa B was activated in J. Smith's assay (p < 0.05)! "
    '"Quoted" findings vs. controls were ca. 3.5-fold higher.\n'
    "\n"
    "Conclusion\n"
    "12 patients responded."
)


def test_split_sentences_on_an_abstract():
    spans = split_sentences(ABSTRACT)
    assert [ABSTRACT[s:e] for s, e in spans] == [
        "IL-2 gene expression requires reactive oxygen production by 5-lipoxygenase (e.g. in T cells).",
        "As Smith et al. showed in Fig. 2, CD28 signals through NF-kappa B in human T cells.",
        "In contrast, NF-kappa B was activated in J. Smith's assay (p < 0.05)!",
        '"Quoted" findings vs. controls were ca. 3.5-fold higher.',
        "Conclusion",
        "12 patients responded.",
    ]
    # every non-space character belongs to exactly one sentence
    covered = "".join(ABSTRACT[s:e] for s, e in spans)
    assert covered.replace(" ", "") == "".join(ABSTRACT.split())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_split_sentences_lowercase_next_word_is_no_boundary():
    assert split_sentences("Grown in E. coli. cells were lysed.") == [(0, 35)]


def test_keep_together_merges_the_sentences_a_mention_crosses():
    text = "Treated with 5 mg. Daily doses helped. Then it stopped."
    assert len(split_sentences(text)) == 3
    across = (text.index("mg"), text.index("Daily") + 5)  # "mg. Daily", mis-split as two sentences
    assert split_sentences(text, keep_together=[across]) == [(0, 38), (39, 55)]
    assert split_sentences(text, keep_together=[(0, 4), (5, 6)]) == split_sentences(text)


def test_every_row_slices_back_to_the_document():
    text = ("Aspirin 5 mg. Daily use caused severe headache. Nausea? Yes.\n"
            "Later, the pain in both knees and elbows eased.")
    spans = [("Aspirin", "Drug"), ("mg. Daily", "Dose"), ("severe headache", "ADR"), ("headache", "ADR"),
             ("Nausea", "ADR"), ("pain", "ADR")]
    mentions = [Mention(f"T{i}", label, ((text.index(s), text.index(s) + len(s)),), s)
                for i, (s, label) in enumerate(spans, 1)]
    knees = text.index("knees")
    mentions.append(Mention("T9", "ADR", ((knees, knees + 5), (knees + 10, knees + 16)), "knees elbows"))
    rows = mention_rows("d1", text, list(reversed(mentions)))
    assert [r["id"] for r in rows] == ["T1", "T2", "T3", "T4", "T5", "T6", "T9"]
    for row, m in zip(rows, sorted(mentions, key=lambda m: m.start)):
        assert row["text"][row["start"]:row["end"]] == row["mention"] == text[m.start:m.end]
        assert row["text"] in text
        sentence_start = m.start - row["start"]
        parts = [tuple(map(int, p.split("-"))) for p in row["fragments"].split(";")]
        assert [(a + sentence_start, b + sentence_start) for a, b in parts] == list(m.fragments)
    # "mg. Daily" holds the first two sentences together
    assert rows[0]["text"] == "Aspirin 5 mg. Daily use caused severe headache."
    assert rows[4]["text"] == "Nausea?"


def test_check_span_table_good(tmp_path):
    path = tmp_path / "spans.csv"
    path.write_text("text,start,end,label,extra\n"
                    "IL-2 binds p50.,0,4.0,Protein,x\n"
                    "IL-2 binds p50.,11,14.0,Protein,y\n")
    out = check_span_table(pd.read_csv(path), where="spans.csv")
    assert list(out.columns) == ["text", "start", "end", "label", "doc", "mention"]
    assert out["start"].dtype == "int64" and out["end"].dtype == "int64"
    assert out["mention"].tolist() == ["IL-2", "p50"] and out["doc"].tolist() == ["row1", "row2"]
    with_doc = check_span_table(pd.DataFrame({"text": ["ab"], "start": [0], "end": [2], "label": [1],
                                              "doc": ["d7"]}), where="t")
    assert with_doc.loc[0, "doc"] == "d7" and with_doc.loc[0, "label"] == "1"


@pytest.mark.parametrize("bad, message", [
    ({"end": 99}, r"t\.jsonl: row 2 has start=0, end=99 but its text has 15 characters; "
                  r"expected 0 <= start < end <= 15"),
    ({"start": 4}, r"row 2 has start=4, end=4 .*expected 0 <= start < end"),
    ({"start": -1}, r"row 2 has start=-1"),
    ({"end": math.nan}, r"row 2 has end=nan; expected a whole number"),
    ({"end": 3.5}, r"row 2 has end=3\.5; expected a whole number"),
    ({"start": "one"}, r"row 2 has start='one'; expected a whole number"),
    ({"label": None}, r"row 2 has no label"),
])
def test_check_span_table_bad_rows(bad, message):
    rows = [{"text": "IL-2 binds p50.", "start": 0, "end": 4, "label": "Protein"} for _ in range(3)]
    rows[1].update(bad)
    with pytest.raises(SeqlabError, match=message):
        check_span_table(pd.DataFrame(rows), where="t.jsonl")


def test_check_span_table_missing_column():
    df = pd.DataFrame({"sentence": ["IL-2."], "start": [0], "end": [4], "label": ["Protein"]})
    with pytest.raises(SeqlabError, match=r"t\.csv has no column 'text'; columns are \['sentence', 'start', "
                                          r"'end', 'label'\]; expected text, start, end, label"):
        check_span_table(df, where="t.csv")

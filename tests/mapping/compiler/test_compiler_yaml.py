from __future__ import annotations

from pathlib import Path

from relay.mapping.yamlload import Map, Scalar, Seq, load_yaml, to_python

from compiler_helpers import source_of

BROKEN = Path(__file__).parent / "broken"


def test_scalars_stay_text_with_their_place() -> None:
    root, problems = load_yaml("zip: 01234\nconsent: yes\nflag: on\nbig: 1e3\nnone:\n", "f.yaml")
    assert problems == []
    assert isinstance(root, Map)
    assert to_python(root) == {"zip": "01234", "consent": "yes", "flag": "on", "big": "1e3", "none": None}
    zip_node = root.get("zip")
    assert isinstance(zip_node, Scalar) and (zip_node.line, zip_node.column) == (1, 6)


def test_quoted_empty_is_text_not_null() -> None:
    root, _ = load_yaml('a: ""\nb: "null"\n', "f.yaml")
    assert to_python(root) == {"a": "", "b": "null"}


def test_sequences_keep_positions() -> None:
    root, _ = load_yaml("items:\n  - one\n  - two\n", "f.yaml")
    assert isinstance(root, Map)
    items = root.get("items")
    assert isinstance(items, Seq)
    assert [(item.line, item.column) for item in items.items] == [(2, 5), (3, 5)]


def test_anchors_aliases_tags_merge_and_duplicates_are_refused() -> None:
    text = (BROKEN / "yaml_surprises.yaml").read_text()
    _, problems = load_yaml(text, "yaml_surprises.yaml")
    found = {(p.code, p.line, p.column) for p in problems}
    assert found == {("anchor", 3, 15), ("alias", 4, 15), ("yaml_tag", 6, 14),
                     ("duplicate_key", 7, 3), ("merge_key", 9, 3)}
    duplicate = next(p for p in problems if p.code == "duplicate_key")
    assert "first at line 6" in duplicate.message


def test_syntax_error_has_file_line_column() -> None:
    text = (BROKEN / "syntax_error.yaml").read_text()
    root, problems = load_yaml(text, "syntax_error.yaml")
    assert root is None
    assert [p.code for p in problems] == ["yaml_error"]
    assert str(problems[0]).startswith("syntax_error.yaml:6:")


def test_unquoted_env_reference_in_flow_mapping_gets_a_hint() -> None:
    _, problems = load_yaml("trackdrive: {lead_token: ${A}}\n", "f.yaml")
    assert problems[0].code == "yaml_error"
    assert 'quotes, e.g. "${NAME}"' in problems[0].message


def test_second_document_is_an_error() -> None:
    text = (BROKEN / "two_documents.yaml").read_text()
    _, problems = load_yaml(text, "two_documents.yaml")
    assert [(p.code, p.line) for p in problems] == [("multiple_documents", 4)]


def test_yaml_surprises_are_defused_in_a_mapping() -> None:
    source = source_of("""
        lead:
          caller_id: $.phone
        data:
          zip: {value: 01234}
          tcpa: yes
          code: 1e3
        """)
    call = source.map_payload({"phone": "+12105550136"})
    assert call.body["data"] == {"zip": "01234", "tcpa": "yes", "code": "1e3"}

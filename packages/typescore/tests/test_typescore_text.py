import json

import pytest

from typescore import Normalizer, PromptItem, builtin_prompts, instructed_text, load_prompts, quoted_spans


def test_normalizer_steps():
    norm = Normalizer()
    assert norm("  Hello,\tWORLD!!  ") == "hello world"
    assert norm("STRASSE") == norm("Straße")  # casefold maps ß to ss
    assert norm("sale!now") == "sale now"  # punctuation becomes a separator
    assert norm("30% OFF") == "30 off"
    assert norm("cafe\u0301") == "café"  # NFC composes
    keep = Normalizer(casefold=False, strip_punctuation=False)
    assert keep("  Hi,  There ") == "Hi, There"
    assert Normalizer(unicode_form="NFKC")("ﬁ") == "fi"
    assert Normalizer(drop_whitespace=True)(" Open  Now ") == "opennow"
    assert norm("DON'T") == norm("DONT") == "dont"  # an apostrophe inside a word joins it
    assert norm("Joe\u2019s rock 'n' roll") == "joes rock n roll"
    with pytest.raises(ValueError):
        Normalizer(unicode_form="NFX")
    with pytest.raises(TypeError):
        norm(3)


@pytest.mark.parametrize(
    "prompt, spans",
    [
        ('A sign that reads "OPEN" next to "CLOSED"', ["OPEN", "CLOSED"]),
        ("A mug saying “Best Dad” on it", ["Best Dad"]),
        ("A chalkboard with 'DON'T STOP' and Joe's name", ["DON'T STOP"]),
        ("Joe's cafe has no quoted text", []),
        ("Plakat „Guten Tag“ und «Bonjour» und ‘hi’", ["Guten Tag", "Bonjour", "hi"]),
        ("看板「東京」", ["東京"]),
        ('Empty "" quotes and "  padded  "', ["padded"]),
        ('The "Grandma\'s Jam" label', ["Grandma's Jam"]),
        # inch marks, curly quotes with an apostrophe inside, nested quotes (issue #22)
        ('A 12" pizza box that says "HOT AND FRESH"', ["HOT AND FRESH"]),
        ("A neon sign \u2018Joe\u2019s Diner\u2019", ["Joe\u2019s Diner"]),
        ("A banner: 'rock 'n' roll forever'", ["rock 'n' roll forever"]),
        ('A 6\'2" player holding a card "MVP"', ["MVP"]),
        ("the runners' club sign 'GO' and ('EXIT')", ["GO", "EXIT"]),
    ],
)
def test_quoted_spans(prompt, spans):
    assert quoted_spans(prompt) == spans


def test_instructed_text_joins_spans_and_rejects_unquoted_prompts():
    assert instructed_text('a "big" and a "small" sign') == "big small"
    with pytest.raises(ValueError, match="no quoted text"):
        instructed_text("a sign with nothing quoted")


def test_load_prompts_all_formats(tmp_path):
    (tmp_path / "p.txt").write_text('# comment\nA sign "ONE"\n\nA sign "TWO"\n')
    (tmp_path / "p.json").write_text(json.dumps(['A sign "ONE"', {"id": "b", "prompt": 'x "TWO"', "style": "neon"}]))
    (tmp_path / "p.jsonl").write_text('{"prompt": "a \\"ONE\\""}\n{"prompt": "no quotes", "text": "TWO"}\n')
    (tmp_path / "p.csv").write_text('id,prompt,text\na,"A sign ""ONE""",\nb,plain,TWO\n')
    for suffix in ("txt", "json", "jsonl", "csv"):
        items = load_prompts(tmp_path / f"p.{suffix}")
        assert [it.text for it in items] == ["ONE", "TWO"], suffix
    assert load_prompts(tmp_path / "p.json")[1] == PromptItem("b", 'x "TWO"', "TWO")
    assert load_prompts(tmp_path / "p.json")[1].meta == {"style": "neon"}


def test_load_prompts_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_prompts(tmp_path / "missing.txt")
    (tmp_path / "dup.jsonl").write_text('{"id": "a", "prompt": "\\"X\\""}\n{"id": "a", "prompt": "\\"Y\\""}\n')
    with pytest.raises(ValueError, match="unique"):
        load_prompts(tmp_path / "dup.jsonl")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompts(tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_text("no quotes here\n")
    with pytest.raises(ValueError, match="no quoted text"):
        load_prompts(tmp_path / "bad.txt")


def test_builtin_prompt_set():
    items = builtin_prompts()
    assert len(items) >= 20 and len({it.id for it in items}) == len(items)
    assert all(it.text and all(span in it.prompt for span in quoted_spans(it.prompt)) for it in items)
    assert {"style", "category"} <= set(items[0].meta)


def test_load_prompts_is_strict_about_types_and_fields(tmp_path):
    (tmp_path / "p.yaml").write_text('{"prompt": "a \\"ONE\\""}\n')  # JSONL under another name
    with pytest.raises(ValueError, match="unknown prompt-file type '.yaml'"):
        load_prompts(tmp_path / "p.yaml")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a \\"ONE\\""}\n\n{"prompt": oops}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not valid JSON"):
        load_prompts(tmp_path / "bad.jsonl")
    (tmp_path / "empty_text.jsonl").write_text('{"prompt": "a \\"ONE\\""}\n{"prompt": "x", "text": ""}\n')
    with pytest.raises(ValueError, match=r"empty_text.jsonl:2: 'text' must be a non-empty string"):
        load_prompts(tmp_path / "empty_text.jsonl")
    (tmp_path / "noprompt.csv").write_text("id,caption\na,hello\n")
    with pytest.raises(ValueError, match=r"noprompt.csv:1: .*'prompt' column"):
        load_prompts(tmp_path / "noprompt.csv")
    (tmp_path / "unquoted.txt").write_text('a "ONE"\n# c\nno quotes\n')
    with pytest.raises(ValueError, match=r"unquoted.txt:3: prompt has no quoted text"):
        load_prompts(tmp_path / "unquoted.txt")

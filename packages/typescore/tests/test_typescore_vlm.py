import json

import pytest

from typescore import render_text
from typescore.extract import get_extractor
from typescore.vlm import EXTRACTION_PROMPT, VLMExtractor, parse_yes_no, style_adherence


def test_vlm_extractor_prompt_and_image_plumbing(tiny_vlm):
    vlm = get_extractor("vlm", model_dir=tiny_vlm, max_new_tokens=4)
    assert isinstance(vlm, VLMExtractor)
    seen = {}
    generate = vlm.model.generate

    def spy(**inputs):
        seen.update(inputs)
        return generate(**inputs)

    vlm.model.generate = spy
    text = vlm.extract(render_text("OPEN", 64, 48, 16))
    assert isinstance(text, str)
    ids = seen["input_ids"][0]
    image_id = vlm.processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((ids == image_id).sum()) == (32 // 8) ** 2  # one token per patch (CLS dropped: "default" strategy)
    prompt = vlm.processor.tokenizer.decode(ids[ids != image_id])
    assert EXTRACTION_PROMPT in prompt and prompt.endswith("assistant: ")
    assert seen["pixel_values"].shape == (1, 3, 32, 32) and seen["do_sample"] is False


def test_vlm_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved VLM"):
        VLMExtractor(tmp_path)


def test_parse_yes_no_and_style_adherence():
    assert [parse_yes_no(a) for a in ["Yes.", "  yes, it is", "No", "nope", "maybe", "Nothing"]] == [
        1.0,
        1.0,
        0.0,
        0.0,
        None,
        None,
    ]

    class Asker:
        def ask(self, image, question):
            return {"neon": "Yes, it glows.", "script": "No.", "serif": "I cannot tell"}[question.split('"')[1]]

    res = style_adherence(Asker(), [None] * 3, ["neon", "script", "serif"])
    assert res.adherence == 0.5 and res.unparsed == 1 and res.answers[0] == "Yes, it glows."
    with pytest.raises(ValueError):
        style_adherence(Asker(), [None], ["neon", "serif"])


def test_cli_vlm_backend_and_style(tiny_vlm, tmp_path, capsys):
    from typescore.__main__ import main

    (tmp_path / "imgs").mkdir()
    render_text("OPEN", 64, 48, 16).save(tmp_path / "imgs" / "a.png")
    render_text("SALE", 64, 48, 16).save(tmp_path / "imgs" / "b.png")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "\\"OPEN\\"", "style": "neon"}\n{"id": "b", "prompt": "\\"SALE\\""}\n')
    out = tmp_path / "out"
    main(
        [
            "evaluate",
            str(tmp_path / "imgs"),
            "--prompts",
            str(prompts),
            "--backend",
            "vlm",
            "--weights",
            str(tiny_vlm),
            "--style-vlm",
            str(tiny_vlm),
            "--out",
            str(out),
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 and "style_adherence" in summary
    rows = json.loads((out / "style.json").read_text())
    assert [r["id"] for r in rows] == ["a"] and rows[0]["style"] == "neon"
    # the one styled image: its verdict is the parse of its answer, and the summary is that verdict (or unparsed)
    assert rows[0]["verdict"] == parse_yes_no(rows[0]["answer"])
    assert summary["style_unparsed"] == (rows[0]["verdict"] is None)
    if rows[0]["verdict"] is not None:
        assert summary["style_adherence"] == rows[0]["verdict"]
    with pytest.raises(SystemExit):
        main(["evaluate", str(tmp_path / "imgs"), "--prompts", str(prompts), "--backend", "vlm"])  # no --weights

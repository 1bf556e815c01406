import hashlib
import json
from pathlib import Path

import pytest

from typescore import render_text
from typescore.__main__ import main


def test_cli_score(capsys):
    main(["score", "Kitten!", "sitting"])
    out = json.loads(capsys.readouterr().out)
    assert out["instructed"] == "kitten" and out["ensemble"] == pytest.approx((4 / 7 + 4 / 7 + 7 / 12) / 3)
    main(["score", "Kitten", "kitten", "--keep-case"])
    assert json.loads(capsys.readouterr().out)["ned"] == pytest.approx(5 / 6)


def test_cli_prompts(capsys):
    main(["prompts"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 20 and lines[0].split("\t")[1] == "FRESH BREAD DAILY"


def test_cli_bad_input_exits_cleanly(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(tmp_path), "--prompts", str(tmp_path / "missing.txt")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--model", str(tmp_path)])  # no model_index.json
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["evaluate"])  # neither images nor --model


def test_cli_evaluate_generates_with_a_diffusers_pipeline(tiny_sd_pipeline, tiny_clip, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text('A sign "OPEN"\nA mug that says "Best Dad"\nA cake reading "HAPPY 40"\n')
    out = tmp_path / "run"
    args = f"evaluate --model {tiny_sd_pipeline} --prompts {prompts} --steps 2 --height 32 --batch-size 2"
    main([*args.split(), "--backend", "rapidocr", "--out", str(out), "--clip", str(tiny_clip)])
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3 and 0.0 <= summary["ci_low"] <= summary["typescore"] <= summary["ci_high"] <= 1.0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    samples = json.loads((out / "scores.json").read_text())["samples"]
    assert [s["instructed"] for s in samples] == ["OPEN", "Best Dad", "HAPPY 40"]
    assert (out / "report.png").is_file()
    clip = json.loads((out / "clipscore.json").read_text())
    assert summary["clipscore"] == pytest.approx(clip["mean"]) and len(clip["samples"]) == 3


def test_cli_validates_every_argument_before_any_ocr(tmp_path, monkeypatch, tiny_clip):
    import typescore.__main__ as cli

    def no_extractor(a):
        raise AssertionError("the extractor was built before the arguments were checked")

    monkeypatch.setattr(cli, "_extractor", no_extractor)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "sign \\"ONE\\""}\n{"id": "b", "prompt": "sign \\"TWO\\""}\n')
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        render_text(name, 16, 16, 8).save(images / f"{name}.png")
    bare_clip = tmp_path / "clip-without-processor"
    bare_clip.mkdir()
    (bare_clip / "config.json").write_text((tiny_clip / "config.json").read_text())
    (tmp_path / "p.yaml").write_text(prompts.read_text())
    (tmp_path / "empty.jsonl").write_text('{"id": "a", "prompt": "sign \\"...\\""}\n')  # punctuation only
    bad = {
        "processor": ["--clip", str(bare_clip)],
        "style": ["--style-vlm", str(tiny_clip)],  # a model folder, but no prompt has a style
        "style-folder": ["--style-vlm", str(tmp_path / "nowhere")],
        "confidence": ["--confidence", "1.5"],
        "prompt type": ["--prompts", str(tmp_path / "p.yaml")],
        "empty text": ["--prompts", str(tmp_path / "empty.jsonl")],
        "pairing": ["--prompts", str(tmp_path / "p.jsonl"), "--pair-by-order", "--model", str(tmp_path)],
    }
    for name, extra in bad.items():
        args = ["evaluate", "--out", str(tmp_path / "out")] + ([] if "--model" in extra else [str(images)])
        args += extra if "--prompts" in extra else [*extra, "--prompts", str(prompts)]
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2, name
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, name in enumerate(("a", "b")):
        render_text(name, 16, 16, 8).save(renamed / f"img_{i}.png")
    with pytest.raises(SystemExit) as e:  # names are not the prompt ids
        main(["evaluate", str(renamed), "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    assert e.value.code == 2


def test_cli_evaluate_records_provenance_and_both_modes(tmp_path, monkeypatch, capsys):
    import typescore.__main__ as cli
    from typescore import CallableExtractor

    read = {"a": "ONE and some other text", "b": "TW0"}
    monkeypatch.setattr(cli, "_extractor", lambda a: CallableExtractor(lambda path: read[Path(path).stem]))
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "sign \\"ONE\\"", "style": "neon"}\n{"id": "b", "prompt": "sign \\"TWO\\""}\n'
    )
    images = tmp_path / "images"
    images.mkdir()
    for name in ("b", "a"):
        render_text(name, 16, 16, 8).save(images / f"{name}.png")
    main(["evaluate", str(images), "--prompts", str(prompts), "--out", str(tmp_path / "run"), "--mode", "span"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "span" and summary["typescore"] == summary["typescore_span"] > summary["typescore_whole"]
    saved = json.loads((tmp_path / "run" / "scores.json").read_text())
    prov = saved["provenance"]
    assert prov["prompts"]["sha256"] == hashlib.sha256(prompts.read_bytes()).hexdigest()
    assert prov["pairing"] == "id" and prov["mode"] == "span" and prov["normalizer"]["drop_whitespace"] is False
    assert [s["id"] for s in saved["samples"]] == ["a", "b"] and saved["samples"][0]["style"] == "neon"
    assert saved["samples"][0]["extra_text"] == "and some other text"
    assert (tmp_path / "run" / "breakdown.png").is_file()

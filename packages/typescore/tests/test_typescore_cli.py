import json

import pytest

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

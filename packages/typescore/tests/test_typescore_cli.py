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

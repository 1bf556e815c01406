import pytest
import torch

pytest_plugins = ["pytester"]


def _write(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gpu
        def test_on_gpu():
            pass

        @pytest.mark.slow
        def test_slow():
            pass

        def test_plain():
            pass
        """
    )


OPT_IN = "from labcore.testing import enable as pytest_configure\n"


def test_installing_labcore_registers_no_plugin(pytester):
    """A user's own ``gpu``-marked tests run as they are: installing labcore changes no one's pytest."""
    from importlib.metadata import entry_points

    assert not [ep for ep in entry_points(group="pytest11") if ep.value.startswith("labcore")]
    _write(pytester)
    pytester.runpytest().assert_outcomes(passed=3)


def test_conftest_opt_in(pytester):
    _write(pytester)
    pytester.makeconftest(OPT_IN)
    result = pytester.runpytest("--strict-markers", "-m", "not slow")
    result.assert_outcomes(passed=1, skipped=0 if __import__("torch").cuda.is_available() else 1, deselected=1)


def test_markers_registered_under_strict_markers(pytester):
    _write(pytester)
    result = pytester.runpytest("-p", "labcore.testing", "--strict-markers", "-m", "not slow")
    result.assert_outcomes(passed=1, skipped=0 if __import__("torch").cuda.is_available() else 1, deselected=1)


def test_gpu_only_mode(pytester, monkeypatch):
    _write(pytester)
    monkeypatch.setenv("LABCORE_GPU_TESTS", "1")
    result = pytester.runpytest("-p", "labcore.testing", "--strict-markers")
    cuda = __import__("torch").cuda.is_available()
    result.assert_outcomes(passed=1 if cuda else 0, skipped=0 if cuda else 1, deselected=2)


def test_unknown_marker_rejected(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.gpux\ndef test_x():\n    pass\n")
    result = pytester.runpytest("-p", "labcore.testing", "--strict-markers")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'gpux' not found in `markers`*"])


def test_stop_at_device_stops_a_move_off_the_cpu(stop_at_device):
    layer = torch.nn.Linear(2, 2)
    assert layer.to("cpu") is layer and layer.to(torch.float64).weight.dtype == torch.float64
    with pytest.raises(stop_at_device, match="meta"):
        layer.to("meta")
    with pytest.raises(stop_at_device, match="meta"):
        layer.to(device=torch.device("meta"), dtype=torch.float32)

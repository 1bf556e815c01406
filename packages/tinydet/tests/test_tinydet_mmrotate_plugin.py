"""The optional OpenMMLab plugin: a clear ImportError without mmrotate, registration and adapters
(against the real mmrotate when installed, else against minimal stand-ins of the four APIs it uses)."""

import importlib
import importlib.util
import sys
import types

import pytest
import torch

from tinydet.assign import coarse_to_fine_assign

HAVE_MMROTATE = importlib.util.find_spec("mmrotate") is not None


def _fresh_import():
    sys.modules.pop("tinydet.mmrotate_plugin", None)
    return importlib.import_module("tinydet.mmrotate_plugin")


def test_plugin_without_mmrotate_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmrotate", None)  # hides an installed mmrotate too
    monkeypatch.setitem(sys.modules, "mmrotate.registry", None)
    with pytest.raises(ImportError, match="mim install .*mmrotate") as info:
        _fresh_import()
    assert "tinydet.RotatedDetector" in str(info.value)  # says what works without it
    sys.modules.pop("tinydet.mmrotate_plugin", None)


class _Registry:
    def __init__(self):
        self.modules = {}

    def register_module(self, name=None, module=None, force=False):
        assert name not in self.modules or force
        self.modules[name] = module
        return module


class _AssignResult:
    def __init__(self, num_gts, gt_inds, max_overlaps, labels=None):
        self.num_gts, self.gt_inds, self.max_overlaps, self.labels = num_gts, gt_inds, max_overlaps, labels


class _BaseMetric:
    def __init__(self, collect_device="cpu", prefix=None):
        self.results, self.prefix = [], prefix


class _BaseModule(torch.nn.Module):
    def __init__(self, init_cfg=None):
        super().__init__()


@pytest.fixture
def plugin(monkeypatch):
    """The plugin module: imported for real when mmrotate is installed, else over stand-in APIs."""
    if not HAVE_MMROTATE:
        registries = types.SimpleNamespace(MODELS=_Registry(), TASK_UTILS=_Registry(), METRICS=_Registry())
        fakes = {
            "mmrotate": types.ModuleType("mmrotate"),
            "mmrotate.registry": types.SimpleNamespace(**vars(registries)),
            "mmengine": types.ModuleType("mmengine"),
            "mmengine.evaluator": types.SimpleNamespace(BaseMetric=_BaseMetric),
            "mmengine.model": types.SimpleNamespace(BaseModule=_BaseModule),
            "mmdet": types.ModuleType("mmdet"),
            "mmdet.models": types.ModuleType("mmdet.models"),
            "mmdet.models.task_modules": types.ModuleType("mmdet.models.task_modules"),
            "mmdet.models.task_modules.assigners": types.SimpleNamespace(
                AssignResult=_AssignResult, BaseAssigner=object
            ),
        }
        for name, mod in fakes.items():
            monkeypatch.setitem(sys.modules, name, mod)
    module = _fresh_import()
    yield module
    sys.modules.pop("tinydet.mmrotate_plugin", None)


def test_plugin_registers_head_assigner_and_metric(plugin):
    reg = sys.modules["mmrotate.registry"]
    names = [
        (reg.MODELS, "TinyDetDCFLHead"),
        (reg.TASK_UTILS, "TinyDetCoarse2FineAssigner"),
        (reg.METRICS, "AITODRMetric"),
    ]
    for registry, name in names:
        found = registry.get(name) if HAVE_MMROTATE else registry.modules[name]
        assert found is getattr(plugin, name)


def test_head_adapter_gives_per_level_outputs(plugin):
    head = plugin.TinyDetDCFLHead(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2)
    feats = [torch.randn(1, 8, 16, 16), torch.randn(1, 8, 8, 8)]
    cls, reg = head(feats)
    assert [c.shape for c in cls] == [(1, 3, 16, 16), (1, 3, 8, 8)]
    assert [r.shape for r in reg] == [(1, 5, 16, 16), (1, 5, 8, 8)]
    assert head.offsets[0].shape[-2:] == (16, 16)
    # the pure head with the same weights (arguments passed in the right order) gives the same outputs
    from tinydet.model import DCFLHead

    pure = DCFLHead(3, 8, feat_channels=8, stacked_convs=2, dilation_rate=3)
    pure.load_state_dict(head.head.state_dict())
    ref_cls, ref_reg, ref_off = pure(feats)
    assert all(torch.equal(a, b) for a, b in zip(cls, ref_cls)) and all(torch.equal(a, b) for a, b in zip(reg, ref_reg))
    assert all(torch.equal(a, b) for a, b in zip(head.offsets, ref_off))
    assert all(o.abs().max() == 0 for o in head.offsets)  # zero-initialised: the dynamic prior starts unshifted


def test_assigner_adapter_matches_the_pure_assigner(plugin):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 64
    priors = torch.cat([xy, torch.full((60, 2), 8.0), torch.zeros(60, 1)], 1)
    preds = priors + torch.randn(60, 5, generator=g) * torch.tensor([1.0, 1.0, 0.5, 0.5, 0.05])
    logits = torch.randn(60, 3, generator=g)
    gt = torch.tensor([[20.0, 20.0, 10.0, 6.0, 0.3], [45.0, 40.0, 8.0, 8.0, 0.0]])
    pred = types.SimpleNamespace(priors=priors, bboxes=preds, scores=logits)
    gts = types.SimpleNamespace(bboxes=gt, labels=torch.tensor([2, 0]))
    res = plugin.TinyDetCoarse2FineAssigner(topk=8, topq=4).assign(pred, gts)
    expect = coarse_to_fine_assign(priors, preds, logits, gt, topk=8, topq=4)
    assert torch.equal(res.gt_inds, expect) and (expect > 0).any()
    pos = expect > 0
    assert torch.equal(res.labels[pos], torch.tensor([2, 0])[expect[pos] - 1])
    assert (res.labels[~pos] == -1).all() and res.num_gts == 2


def test_metric_adapter_gives_ap_one_for_perfect_detections_and_zero_for_misses(plugin):
    gt = torch.tensor([[20.0, 20.0, 10.0, 5.0, 0.3], [60.0, 50.0, 6.0, 6.0, 0.0]])
    labels = torch.tensor([0, 1])
    metric = plugin.AITODRMetric(num_classes=2)
    perfect = {
        "pred_instances": {"bboxes": gt, "scores": torch.tensor([0.9, 0.8]), "labels": labels},
        "gt_instances": {"bboxes": gt, "labels": labels},
    }
    metric.process(None, [perfect])
    res = metric.compute_metrics(metric.results)
    assert res["AP"] == pytest.approx(1.0) and res["AP_vt"] == pytest.approx(1.0)
    moved = gt + torch.tensor([30.0, 0, 0, 0, 0])
    shifted = dict(perfect, pred_instances={**perfect["pred_instances"], "bboxes": moved})
    miss = plugin.AITODRMetric(num_classes=2)
    miss.process(None, [shifted])
    assert miss.compute_metrics(miss.results)["AP"] == pytest.approx(0.0)


@pytest.mark.skipif(
    not HAVE_MMROTATE, reason="mmrotate 1.x is not installed (mim install mmrotate); stand-ins cover it"
)
def test_real_mmrotate_builds_the_plugin_classes_from_config_dicts():
    importlib.import_module("tinydet.mmrotate_plugin")
    from mmrotate.registry import METRICS, MODELS, TASK_UTILS

    assert type(METRICS.build(dict(type="AITODRMetric", num_classes=2))).__name__ == "AITODRMetric"
    assert type(TASK_UTILS.build(dict(type="TinyDetCoarse2FineAssigner"))).__name__ == "TinyDetCoarse2FineAssigner"
    head = MODELS.build(dict(type="TinyDetDCFLHead", num_classes=2, in_channels=8, feat_channels=8, stacked_convs=2))
    assert len(head([torch.randn(1, 8, 8, 8)])[0]) == 1

"""Named recipes build the real-size models (meta device), train two CPU steps, and load backbone weights."""

import math

import pytest
import torch

from tinydet import create
from tinydet.data import PointLabels, SyntheticTinyObjects
from tinydet.model import DCFLHead
from tinydet.recipes import RECIPES
from tinydet.train import DetectorModule, fit

# parameters (all, trainable): R-50 with stem + layer1 and every BatchNorm affine frozen; Point Teacher
# holds a frozen EMA copy of its student
PARAMS = {
    "dcfl_r50_aitodr_1x": (36317288, 36041768),
    "retinanet_r50_aitodr_1x": (36256077, 35980557),
    "oriented_rcnn_dcfl_r50_aitodr_1x": (41416304, 41140784),
    "point_teacher_r50_aitodr": (120544968, 60272484),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_the_real_size_model_on_meta(name):
    with torch.device("meta"):
        model = create(name)
    params = list(model.parameters())
    assert (sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)) == PARAMS[name]
    if name == "point_teacher_r50_aitodr":
        assert model.config.angle_version == "le90"  # sodaa_fcos_pointteacher_1x.py
    else:
        bb = model.backbone
        assert not bb.conv1.weight.requires_grad and not bb.layer1[0].conv1.weight.requires_grad
        assert bb.layer2[0].conv1.weight.requires_grad and not bb.layer2[0].bn1.weight.requires_grad


def test_unknown_recipe_names_the_choices():
    with pytest.raises(KeyError, match="did you mean 'dcfl_r50_aitodr_1x'"):
        create("dcfl_r50")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_trains_two_sgd_steps_on_cpu(name, tmp_path):
    torch.manual_seed(0)
    model = create(name, classes=["vehicle", "ship", "storage-tank"])
    data = SyntheticTinyObjects(2, size=128)
    if RECIPES[name].model == "point_teacher":
        data = PointLabels(data)
    frozen = model.backbone.conv1.weight.clone() if hasattr(model, "backbone") else None
    r = RECIPES[name]
    module = fit(
        model,
        data,
        tmp_path,
        max_steps=2,
        batch_size=1,
        lr=r.lr,
        optimizer="sgd",
        warmup=r.warmup_iters,
        resume=False,
        progress=False,
    )
    assert len(module.history) == 2 and all(math.isfinite(h["loss"]) for h in module.history)
    if frozen is not None:
        assert torch.equal(frozen, model.backbone.conv1.weight)  # frozen_stages=1


def test_reference_schedule():
    r = RECIPES["dcfl_r50_aitodr_1x"]
    assert r.schedule(100) == {"max_steps": 600, "warmup": 500}  # 12 epochs of 50 iterations (2 images each)
    module = DetectorModule(torch.nn.Linear(2, 2), lr=r.lr, optimizer="sgd", warmup=500, max_steps=1200)
    opt = module.configure_optimizers()
    sched, sgd = opt["lr_scheduler"]["scheduler"], opt["optimizer"]
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["weight_decay"] == 1e-4
    factors = [sched.lr_lambdas[0](s) for s in (0, 250, 500, 799, 800, 1099, 1100)]
    assert factors == pytest.approx([1 / 3, 2 / 3, 1, 1, 0.1, 0.1, 0.01])  # warm-up; ×0.1 at epochs 8 and 11


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(1)
    net = torchvision.models.resnet50()
    path = tmp_path_factory.mktemp("w") / "resnet50.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_backbone_weights_from_a_local_file(resnet50_file, tmp_path):
    path, state = resnet50_file
    model = create("dcfl_r50_aitodr_1x", backbone_weights=str(path))
    assert torch.equal(model.backbone.layer3[2].conv2.weight, state["layer3.2.conv2.weight"])
    assert torch.equal(model.backbone.bn1.running_var, state["bn1.running_var"])
    # an mmdet/mmrotate checkpoint (backbone.* keys under "state_dict") loads the same way
    mm = tmp_path / "mm.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in state.items()}, "meta": {}}, mm)
    rcnn = create("oriented_rcnn_dcfl_r50_aitodr_1x", backbone_weights=str(mm))
    assert torch.equal(rcnn.backbone.conv1.weight, state["conv1.weight"])


def test_backbone_weights_of_the_wrong_depth_or_name_raise(tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match="resnet18/34/50/101"):
        create("retinanet_r50_aitodr_1x", backbone_weights=str(path))
    with pytest.raises(ValueError, match="torchvision://resnet50"):
        create("retinanet_r50_aitodr_1x", backbone_weights="not-a-weight")


def test_deformable_convs_have_mmcv_init():
    torch.manual_seed(0)
    head = DCFLHead(3, 64, 64, 4)
    fan = 64 * 9
    for conv, bound in ((head.cls_convs[-2], math.sqrt(6 / fan)), (head.reg_convs[-1], 1 / math.sqrt(fan))):
        # DeformConv2d: kaiming_uniform_(relu); ModulatedDeformConv2d: uniform ±1/sqrt(fan_in) (MMCV-DCFL)
        w = conv.weight
        assert 0.95 * bound < w.abs().max() <= bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)

"""Every model class in float64 and bfloat16 on the CPU: a tiny forward (and the inverse / sampling step where the
class has one) runs, keeps the model's dtype (a bfloat16 model may return float32 logits / log-determinants,
never a float64 one), and agrees with the same weights in float32.

Tolerance: the largest difference from float32 is at most ``TOL[dtype]·(1 + max|float32 output|)``: float64 1e-4
(float32 rounding through a few layers), bfloat16 0.1 (8-bit mantissas: 0.4% per operation, compounded over the
layers and the flows' exponentials). Integer outputs (sampled tokens) must be identical in float64.
(TarFlow has its own tests: packages/tarflow/tests/test_tarflow_dtypes.py.)
"""

import copy

import pytest
import torch
from torch.utils._pytree import tree_leaves

TOL = {torch.float64: 1e-4, torch.bfloat16: 0.1}
G = torch.Generator().manual_seed(0)
FLOW_X, FLOW_Y = torch.randn(2, 4, 4, 4, generator=G), torch.randn(2, 3, 8, generator=G)
IDS = torch.randint(0, 12, (2, 8), generator=G)
U = torch.rand(2, generator=G)


def _starflow():
    from starflow import create

    return create("tiny"), [
        lambda m, d: m(FLOW_X.to(d), FLOW_Y.to(d)),
        lambda m, d: m.sample(FLOW_X.to(d), FLOW_Y.to(d)),
    ]


def _tarflow_lm():
    from tarflow_lm import create

    z = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(1))
    return create("tiny", max_seq_len=8), [
        lambda m, d: m(IDS, noise=torch.zeros(2, 8, 8, dtype=d)).elbo,
        lambda m, d: m.prior_forward(z.to(d))[-1],
        lambda m, d: m.prior_inverse(z.to(d), check=False)[-1],
    ]


def _diffucoder():
    from diffucoder import create

    return create("tiny"), [
        lambda m, d: m(IDS).logits,
        lambda m, d: m.diffusion_generate(IDS[:, :4], max_new_tokens=4, steps=4, temperature=0.0),
    ]


def _tcsm(process):
    from tcsm import create

    return create("tiny", process=process), [lambda m, d: m(IDS, U.to(d))]


def _dnfs(kind):
    from dnfs import LEGraphConfig, LocallyEquivariantGraphTransformer, create

    x = torch.randint(0, 2, (3, 9), generator=torch.Generator().manual_seed(1))
    if kind == "graph":
        ring = torch.roll(torch.eye(9), 1, 0) + torch.roll(torch.eye(9), -1, 0)
        model = LocallyEquivariantGraphTransformer(LEGraphConfig(9, 2, hidden_dim=16, head_dim=8), ring)
    else:
        model = create(kind, data_dim=9, hidden_dim=16)
    return model, [lambda m, d: m(x, U.repeat(2)[:3].to(d))]


def _unet():
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=4,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8,),
        down_block_types=("DownBlock2D",),
        up_block_types=("UpBlock2D",),
        layers_per_block=1,
        norm_num_groups=4,
    )


def _energy(kind):
    import energy_diffusion as ed

    image = kind.startswith("unet")
    if image:
        pytest.importorskip("diffusers")
    x = torch.randn(2, 1, 4, 4, generator=G) if image else torch.randn(2, 2, generator=G)
    model = {
        "mlp-energy": lambda: ed.create("tiny"),
        "mlp-denoiser": lambda: ed.MLPDenoiser(2, hidden=16, depth=2),
        "unet-energy": lambda: ed.UNetEnergy(_unet()),
        "unet-denoiser": lambda: ed.UNetDenoiser(_unet()),
    }[kind]()
    steps = [lambda m, d: m(x.to(d), U.to(d) + 0.1)]
    if "energy" in kind:
        steps.append(lambda m, d: m.energy(x.to(d), U.to(d) + 0.1))
    return model, steps


def _r2l():
    from r2l_lm import create

    return create("tiny"), [lambda m, d: m(input_ids=IDS).logits]


def _tinydet(name):
    from tinydet import create
    from tinydet.data import PointLabels, SyntheticTinyObjects, collate

    data = SyntheticTinyObjects(2, size=128)
    if name.startswith("point_teacher"):
        data = PointLabels(data)
    batch = collate([data[0], data[1]])

    def loss(m, d):  # the loss terms (the dict also counts positives)
        out = m.training_loss({k: v.to(d) if k == "image" else v for k, v in batch.items()})
        return {k: v for k, v in out.items() if k.startswith("loss")}

    return create(name), [loss]


CASES = {
    "starflow": _starflow,
    "tarflow_lm": _tarflow_lm,
    "diffucoder": _diffucoder,
    "tcsm-masked": lambda: _tcsm("masked"),
    "tcsm-uniform": lambda: _tcsm("uniform"),
    "dnfs-transformer": lambda: _dnfs("ising-5x5-demo"),
    "dnfs-mlp": lambda: _dnfs("ising-10x10-mlp"),
    "dnfs-graph": lambda: _dnfs("graph"),
    **{
        f"energy_diffusion-{k}": (lambda k=k: _energy(k))
        for k in ("mlp-energy", "mlp-denoiser", "unet-energy", "unet-denoiser")
    },
    "r2l_lm": _r2l,
    **{
        f"tinydet-{n}": (lambda n=n: _tinydet(n))
        for n in ("dcfl_tiny", "oriented_rcnn_dcfl_tiny", "point_teacher_tiny")
    },
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=["float64", "bfloat16"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_model_runs_in_dtype_and_agrees_with_float32(case, dtype):
    torch.manual_seed(0)
    ref, steps = CASES[case]()
    ref.eval()
    low = copy.deepcopy(ref).to(dtype)
    for i, step in enumerate(steps):
        torch.manual_seed(i)
        want = tree_leaves(step(ref, torch.float32))
        torch.manual_seed(i)
        got = tree_leaves(step(low, dtype))
        for w, g in zip(want, got, strict=True):
            if not isinstance(w, torch.Tensor):
                continue
            if not w.is_floating_point():
                if dtype == torch.float64:
                    assert torch.equal(g, w), f"step {i}: sampled tokens differ in float64"
                continue
            # a bfloat16 model may return float32 (logits and log-determinants kept in float32 on purpose)
            assert g.dtype in (dtype, torch.promote_types(dtype, torch.float32)), f"step {i}: {g.dtype} from {dtype}"
            err = (g.double() - w.double()).abs().max().item()
            assert err <= TOL[dtype] * (1 + w.abs().max().item()), f"step {i}: {err:.3g} from float32"


def test_float64_flows_invert_to_float64_precision():
    """Float32 arithmetic anywhere in a float64 flow would leave a round-trip error of ~1e-7."""
    from starflow import create as starflow
    from tarflow_lm import create as tarflow_lm

    torch.manual_seed(0)
    model = starflow("tiny").double().eval()
    x, y = FLOW_X.double(), FLOW_Y.double()
    with torch.no_grad():
        out = model(x, y)
        assert out.logdet.dtype == torch.float64
        assert (model.sample(model.image(out.z), y) - x).abs().max() < 1e-12
    lm = tarflow_lm("tiny", max_seq_len=8).double().eval()
    z = torch.randn(2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert (lm.prior_inverse(lm.prior_forward(z)[-1])[-1] - z).abs().max() < 1e-10

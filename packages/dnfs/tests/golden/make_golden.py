"""Write the golden fixtures of ``test_dnfs_golden.py`` from the authors' DNFS code (m-crabb/DNFS).

    python packages/dnfs/tests/golden/make_golden.py /path/to/DNFS   # needs einops, igraph, matplotlib

On the authors' own 3×3 periodic Ising target (``ising_models.LatticeIsingModel``, σ = 0.45, b = 0.1) and
two tiny ``LEquiTFRtModel`` rate networks with seeded noise added to EVERY weight (weights rounded to
float16 so they are stored exactly), records in float32 on CPU: the target's log-density and neighbour
log-ratios, the rate matrices G(x, t), ``kolmo_utils.make_forward_step_probs_with_weight_updating``'s jump
probabilities and weight increments, ``main.compute_loss`` for given control-variate values, and the
control variate ``dt_log_Zt`` that ``kolmo_utils.generate_train_data_using_rate_matrix`` computes over
its own simulated trajectories (trajectories, times and time indices are stored with it). Only outputs
are written, never the authors' code.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import load_file, save_file

from labcore.golden import write_golden_meta

HERE = Path(__file__).parent
MODELS = {  # LEquiTFRtModel keyword arguments; "ising" runs on the Ising target (D=9, S=2)
    "ising": dict(data_dim=9, vocab_size=2, hidden_dim=32, head_dim=8, num_blocks=3, layers_per_block=1),
    "potts": dict(data_dim=7, vocab_size=3, hidden_dim=32, head_dim=8, num_blocks=2, layers_per_block=2),
}
ISING = dict(dim=3, init_sigma=0.45, init_bias=0.1)  # strong coupling: log-ratios reach the clamp at 5
STEPS = [(0.0, 0.25), (0.5, 0.6), (0.2, 1.0)]  # the last: some Σ rates·dt exceed 1  # (t, t + dt) of the Euler steps
NUM_TIMES, NUM_TRAJ = 5, 8  # control-variate grid and trajectories


def authors_module(root: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("official", type=Path, help="checkout of m-crabb/DNFS")
    args = ap.parse_args()
    sys.modules["wandb"] = SimpleNamespace()  # main.py imports wandb; compute_loss does not use it
    model_mod = authors_module(args.official, "model")
    kolmo = authors_module(args.official, "kolmo_utils")
    ising_mod = authors_module(args.official, "ising_models")
    authors_main = authors_module(args.official, "main")
    out: dict[str, torch.Tensor] = {}

    for seed, (name, kw) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = model_mod.LEquiTFRtModel(**kw)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
                p.copy_(p.half().float())
        model.eval()
        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, HERE / f"{name}.safetensors")
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randint(0, kw["vocab_size"], (16, kw["data_dim"]), generator=g)
        t = torch.rand(16, generator=g)
        with torch.no_grad():
            out.update({f"{name}/x": x, f"{name}/t": t, f"{name}/G": model(x, t)})

    # everything below on the authors' Ising target with the "ising" rate network
    target = ising_mod.LatticeIsingModel(**ISING).eval()
    initial = kolmo.UniformInitialDist(D=9, S=2, device="cpu")

    def dt_log_density(x, t):
        return -initial.log_prob(x) + target.log_prob(x)

    model = model_mod.LEquiTFRtModel(**MODELS["ising"])

    model.load_state_dict({k: v.float() for k, v in load_file(HERE / "ising.safetensors").items()})
    model.eval()
    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, 2, (64, 9), generator=g)
    t = torch.rand(64, generator=g)
    out.update({"target/x": x, "target/t": t, "target/adjacency": target.G.detach().clone()})
    out["target/log_prob"] = target.log_prob(x).detach()
    out["target/log_ratio"] = target.get_diff_log_prob(x, t)
    w0 = torch.randn(64, generator=g)
    out["step/w0"] = w0
    args_ns = SimpleNamespace(device="cpu", vocab_size=2)
    for i, (t0, t1) in enumerate(STEPS):
        probs, w = kolmo.make_forward_step_probs_with_weight_updating(
            w0.clone(), t0, t1, x, model, dt_log_density, target, args_ns
        )
        out[f"step/{i}/probs"], out[f"step/{i}/weights"] = probs, w
    k = torch.randint(0, NUM_TIMES, (64,), generator=g)
    c_t = torch.randn(NUM_TIMES, generator=g)
    ts = torch.linspace(0, 1, NUM_TIMES)
    out.update({"loss/k": k, "loss/c_t": c_t})
    out["loss/value"] = authors_main.compute_loss(model, x, ts[k], c_t[k], dt_log_density, target).detach().reshape(1)

    torch.manual_seed(11)  # the authors' simulation draws from the global generator
    run = SimpleNamespace(device="cpu", vocab_size=2, N=NUM_TRAJ, T=NUM_TIMES, batch_size=4)
    kolmo.generate_train_data_using_rate_matrix(model, NUM_TRAJ, ts, initial.sample, dt_log_density, target, run)
    data = run.dataset
    out.update({"cv/x": data.samples, "cv/t": data.ts, "cv/k": data.time_idx, "cv/dt_log_Zt": data.dt_log_Zt.float()})

    save_file({k: v.contiguous() for k, v in out.items()}, HERE / "dnfs_golden.safetensors")
    write_golden_meta(
        HERE / "dnfs_golden.json",
        "https://github.com/m-crabb/DNFS",
        args.official,
        "python packages/dnfs/tests/golden/make_golden.py <checkout of m-crabb/DNFS>",
        models=MODELS,
        ising=ISING,
        steps=STEPS,
        num_times=NUM_TIMES,
    )


if __name__ == "__main__":
    main()

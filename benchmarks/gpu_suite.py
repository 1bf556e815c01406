"""One command for a lent GPU: every package's GPU tests and speed benchmarks side by side, as one Markdown table.

    python benchmarks/gpu_suite.py --out gpu_suite.md            # one GPU, full sizes (meant for < 10 min on an H100)
    python benchmarks/gpu_suite.py --smoke --out /tmp/suite.md   # CPU, tiny sizes, seconds, no GPU tests (a CI test)

Each row compares ours with the reference strategy on the same weights and inputs, using the functions of the
per-package benchmarks (``benchmarks/<pkg>/*.py``) and the packages' own baselines. Columns: device, package, metric
(lower is better), ours, baseline, ratio = baseline / ours (> 1: ours is faster / lower), and the peak memory of each
side: ``torch.cuda.max_memory_allocated`` on CUDA, the growth of the process's resident set (sampled every ms) on
CPU; ``n/a`` where one call times both sides. Times are medians over ``--repeats`` after one warm-up, with the
device synchronised before each clock read. bf16 autocast on CUDA where the paper trains/samples in bf16 (tarflow,
starflow, diffucoder); ``torch.compile`` rows compare a compiled with an eager model (backend ``eager`` in the smoke
run: Dynamo's capture only, no code generation, to stay within seconds). On CUDA, each package's ``gpu`` tests run
first in a subprocess (``LABCORE_GPU_TESTS=1 pytest -m gpu``): row "GPU tests passed", ours = passed, baseline =
collected. Timings depend on the machine and its load: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())


def bench_module(path: str):
    """Import ``benchmarks/<path>`` (the benchmark folders are scripts, not packages) to reuse its functions."""
    name = "gpu_suite_" + re.sub(r"\W", "_", path)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Ctx:
    device: torch.device
    smoke: bool
    repeats: int
    compile_backend: str

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def bf16(self):
        """bf16 autocast on CUDA (the papers' precision), a no-op on CPU."""
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


@dataclass
class Row:
    package: str
    metric: str
    ours: float
    baseline: float
    ours_mib: float = math.nan
    baseline_mib: float = math.nan


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_memory(ctx: Ctx, out: list):
    """Appends the peak memory (MiB) of the block to ``out``: CUDA allocator peak, or sampled RSS growth on CPU."""
    if ctx.cuda:
        ctx.sync()
        torch.cuda.reset_peak_memory_stats(ctx.device)
        base = torch.cuda.memory_allocated(ctx.device)
        yield
        ctx.sync()
        out.append((torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20)
        return
    if not os.path.exists("/proc/self/statm"):  # not Linux: no cheap RSS sampling
        yield
        out.append(math.nan)
        return
    start, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.wait(0.001):
            peak[0] = max(peak[0], _rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        out.append(max(0, max(peak[0], _rss()) - start) / 2**20)


def measure(ctx: Ctx, fn) -> tuple[float, float]:
    """``(median seconds, peak MiB)`` of ``fn()`` over ``ctx.repeats`` runs after one warm-up."""
    fn()
    times, mem = [], []
    with peak_memory(ctx, mem):
        for _ in range(ctx.repeats):
            ctx.sync()
            t = time.perf_counter()
            fn()
            ctx.sync()
            times.append(time.perf_counter() - t)
    return statistics.median(times), mem[0]


def pair(ctx: Ctx, package: str, metric: str, ours, baseline, scale: float = 1000.0) -> Row:
    """A timing row: ``ours`` and ``baseline`` (callables) in ms (``scale``), each with its peak memory."""
    t_base, m_base = measure(ctx, baseline)
    t_ours, m_ours = measure(ctx, ours)
    return Row(package, metric, t_ours * scale, t_base * scale, m_ours, m_base)


def compiled_pair(ctx: Ctx, package: str, metric: str, model, step) -> Row:
    """``step(m)`` with ``torch.compile(model)`` (ours) vs the eager ``model`` (baseline)."""
    compiled = torch.compile(model, backend=ctx.compile_backend)
    return pair(
        ctx,
        package,
        f"{metric}, torch.compile({ctx.compile_backend}) vs eager, ms",
        lambda: step(compiled),
        lambda: step(model),
    )


# ---------------------------------------------------------------------------------------------- per-package cases


def case_tarflow(ctx: Ctx) -> list[Row]:
    from tarflow import PRESETS, TarFlow, TarFlowConfig
    from tarflow.baseline import baseline_forward, baseline_inverse

    bench = bench_module("tarflow/bench_speed.py")
    if ctx.smoke:
        cfg = TarFlowConfig(
            in_channels=1, img_size=8, patch_size=2, channels=64, num_blocks=2, layers_per_block=1, num_classes=4
        )
        batch = 4
    else:
        cfg, batch = PRESETS["imagenet64-cond"](), 64
    torch.manual_seed(0)
    model = TarFlow(cfg).to(ctx.device)
    bench.randomize_output_layers(model)
    x = torch.rand(batch, cfg.in_channels, cfg.img_size, cfg.img_size, device=ctx.device) * 2 - 1
    y = torch.randint(cfg.num_classes, (batch,), device=ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def train(forward):
        opt.zero_grad(set_to_none=True)
        with ctx.bf16():
            z, logdet = forward(x, y)
            loss = 0.5 * z.float().pow(2).mean() - logdet.mean() / cfg.num_dims
        loss.backward()
        opt.step()

    rows = [
        pair(
            ctx,
            "tarflow",
            "train step (is_causal SDPA vs explicit mask), ms",
            lambda: train(lambda a, b: model(a, b)[:2]),
            lambda: train(lambda a, b: baseline_forward(model, a, b)),
        ),
        compiled_pair(ctx, "tarflow", "train step", model, lambda m: train(lambda a, b: m(a, b)[:2])),
    ]
    noise = torch.randn(batch, cfg.num_patches, cfg.token_dim, device=ctx.device)
    kw = dict(guidance=2.0, attn_temp=1.0, annealed_guidance=True)
    model.eval()
    with torch.no_grad(), ctx.bf16():
        rows.append(
            pair(
                ctx,
                "tarflow",
                "CFG sampling (prealloc KV, batched CFG vs concat + 2 calls), ms",
                lambda: model.inverse(noise, y, **kw),
                lambda: baseline_inverse(model, noise, y, **kw),
            )
        )
    return rows


def case_starflow(ctx: Ctx) -> list[Row]:
    from starflow import PRESETS, StarFlow, StarFlowConfig
    from starflow.conditioning import ClassEmbedder

    bench = bench_module("starflow/bench_starflow.py")
    if ctx.smoke:
        cfg = StarFlowConfig(
            channel_size=4, img_size=4, channels=64, head_dim=32, layers_per_block=[1, 2], num_classes=4
        )
        batch = 2
    else:
        cfg, batch = PRESETS["XL"](), 16
    torch.manual_seed(0)
    model = StarFlow(cfg).to(ctx.device).eval()
    with torch.no_grad():
        for blk in model.blocks:
            blk.proj_out.weight.normal_(0, 0.02)
    noise = torch.randn(batch, *model.input_shape, device=ctx.device)
    if cfg.num_classes:
        emb = ClassEmbedder(cfg.num_classes)
        y, y_null = emb(torch.arange(batch) % cfg.num_classes).to(ctx.device), emb.null().to(ctx.device)
    else:
        y = torch.randn(batch, cfg.txt_size, cfg.txt_dim, device=ctx.device)
        y_null = torch.zeros(1, cfg.txt_size, cfg.txt_dim, device=ctx.device)
    with ctx.bf16():
        rows = [
            pair(
                ctx,
                "starflow",
                "CFG sampling (prealloc KV, closed-form CFG vs concat + 2 calls), ms",
                lambda: model.sample(noise, y, y_null, 2.5),
                lambda: bench.baseline_sample(model, noise, y, y_null, 2.5),
            )
        ]
    lat = noise + cfg.noise_std * torch.randn_like(noise)
    rows.append(
        pair(
            ctx,
            "starflow",
            "train step (is_causal SDPA vs explicit mask), ms",
            bench.train_step(model, lat, y, ctx.device, explicit_mask=False),
            bench.train_step(model, lat, y, ctx.device, explicit_mask=True),
        )
    )
    return rows


def case_diffucoder(ctx: Ctx) -> list[Row]:
    """Fast-dLLM's setting on a 7B-shaped random model: 256 new tokens, blocks of 32, dual cache, vs Dream's
    sampler (one token per step) at equal output length. Random weights are never confident, so threshold 0.9
    decodes one token per call (the cache's gain alone); the fixed schedule with 4 tokens per call stands for a
    trained model's parallelism (agreement needs trained weights: ``benchmarks/diffucoder/bench.py``)."""
    from diffucoder import DreamModel

    bench = bench_module("diffucoder/bench.py")
    shape, prompt_len, new, block = ("tiny", 8, 16, 8) if ctx.smoke else ("7b", 64, 256, 32)
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(ctx.device):
            model = DreamModel(bench.SHAPES[shape]()).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    schedules = (
        ("threshold 0.9", {"threshold": 0.9}),
        (f"fixed {new // 4} steps (4 tokens/call)", {"steps": new // 4, "alg": "entropy"}),
    )
    rows = []
    with torch.no_grad():
        for batch in (2,) if ctx.smoke else (1, 4):
            prompt = torch.randint(0, 500, (batch, prompt_len), generator=torch.Generator().manual_seed(0))
            prompt = prompt.to(ctx.device)
            for name, kw in schedules:
                cached = {"block_length": block, "dual_cache": True, **kw}
                rows.append(
                    pair(
                        ctx,
                        "diffucoder",
                        f"decode {new} tokens, batch {batch} (dual cache, {name}, block {block} vs Dream's "
                        "1 token/step), ms",
                        lambda prompt=prompt, cached=cached: bench.decode(model, prompt, None, new, cached),
                        lambda prompt=prompt: bench.decode(model, prompt, None, new, None),
                    )
                )
    return rows


def case_tinydet(ctx: Ctx) -> list[Row]:
    bench = bench_module("tinydet/bench_rotated_ops.py")
    n = 64 if ctx.smoke else 2000
    rows = bench.bench_iou(n, ctx.device.type)
    ours = next((r for r in rows if r[1].startswith("labcore")), None)
    base = next((r for r in rows if "shapely" in r[1]), None)
    if ours is None or base is None:
        raise RuntimeError("tinydet: bench_iou gave no labcore/shapely pair; install shapely>=2")
    ms = 1000.0 * n * n  # rows hold pairs/s
    return [Row("tinydet", f"pairwise rotated IoU {n}x{n} ({ours[1]} vs {base[1]}), ms", ms / ours[2], ms / base[2])]


def case_tarflow_lm(ctx: Ctx) -> list[Row]:
    from tarflow_lm import PRESETS, TarFlowLMModel
    from tarflow_lm.baseline import ARBaselineLM

    batch, length, hidden = (2, 8, 32) if ctx.smoke else (64, 256, 512)
    torch.manual_seed(0)
    ours = TarFlowLMModel(PRESETS["tiny"](max_seq_len=length, hidden_size=hidden, patch_size=4)).to(ctx.device).eval()
    ar = ARBaselineLM(27, hidden, 3, 4, length).to(ctx.device).eval()
    with torch.no_grad():
        return [
            pair(
                ctx,
                "tarflow_lm",
                f"generate {batch}x{length} chars (patch 4 flow vs AR 1 token/step), ms",
                lambda: ours.generate(batch, length),
                lambda: ar.generate(batch, length),
            )
        ]


def case_tcsm(ctx: Ctx) -> list[Row]:
    from tcsm import TCSMConfig, TCSMDenoiser, TCSMObjective, factorised, make_process

    bench = bench_module("tcsm/bench_bpc.py")
    batch, length, hidden, layers = (4, 16, 32, 1) if ctx.smoke else (64, 256, 768, 12)
    torch.manual_seed(0)
    cfg = TCSMConfig(
        vocab_size=27,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=length,
    )
    model, process = TCSMDenoiser(cfg).to(ctx.device), make_process("masked", 27)
    x1 = torch.randint(26, (batch, length), device=ctx.device)
    obj = TCSMObjective(process, "distribution", "kl")
    g = torch.Generator(ctx.device).manual_seed(0)

    def step(loss_fn, m=model):
        loss = loss_fn(m)
        loss.backward()
        m.zero_grad(set_to_none=True)

    ours = lambda m=model: obj(factorised(m, process), x1, generator=g)  # noqa: E731
    return [
        pair(
            ctx,
            "tcsm",
            "train step (TCSM distribution/KL vs MDLM masked CE), ms",
            lambda: step(ours),
            lambda: step(lambda m: bench.mdlm_loss(m, process, x1, g)),
        ),
        compiled_pair(ctx, "tcsm", "TCSM train step", model, lambda m: step(lambda _: ours(m), m)),
    ]


def case_r2l_lm(ctx: Ctx) -> list[Row]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from r2l_lm.arithmetic import make_digit_tokenizer, make_mcqs, split_pairs
    from r2l_lm.scoring import MCQScorer
    from r2l_lm.training import tiny_llama

    questions, hidden, vocab, batch = (8, 32, 64, 8) if ctx.smoke else (512, 256, 32_000, 64)
    tok = make_digit_tokenizer()
    torch.manual_seed(0)
    model = (
        tiny_llama(
            max(vocab, len(tok)),
            hidden,
            2 if ctx.smoke else 4,
            4,
            64,
            tok.bos_token_id,
            tok.eos_token_id,
            tok.pad_token_id,
        )
        .to(ctx.device)
        .eval()
    )
    items = make_mcqs(split_pairs(2, 2, questions)[1], 2, 2, "l2r", "forward")
    qs, opts = [it.question for it in items], [it.options for it in items]
    reqs = [Instance("loglikelihood", {}, (q, " " + o), idx=i) for i, (q, os_) in enumerate(zip(qs, opts)) for o in os_]
    scorer = MCQScorer(model, tok, "l2r", batch_size=batch)
    lm = HFLM(model, tokenizer=tok, batch_size=batch, device=str(ctx.device))
    return [
        pair(
            ctx,
            "r2l_lm",
            f"score {len(qs)} 4-option MCQs (MCQScorer vs lm-eval HFLM), ms",
            lambda: scorer.score(qs, opts, normalize="none"),
            lambda: lm.loglikelihood(reqs, disable_tqdm=True),
        )
    ]


def case_energy_diffusion(ctx: Ctx) -> list[Row]:
    from energy_diffusion.experiment import composition_tasks, toy_pair
    from energy_diffusion.smc import reverse_diffusion, smc_sample

    n, steps = (128, 10) if ctx.smoke else (2000, 100)
    _, fk, _ = composition_tasks(list(toy_pair()))[0]
    gen = torch.Generator().manual_seed(0)
    smc = lambda: smc_sample(fk, n, (2,), steps=steps, weight_min_sigma=0.0, generator=gen).resampled(gen)  # noqa: E731
    score_sum = lambda: reverse_diffusion(fk, n, (2,), steps=steps, generator=gen)  # noqa: E731
    return [
        pair(
            ctx,
            "energy_diffusion",
            f"A·B sampling, {n} particles x {steps} steps (SMC vs score sum, CPU), ms",
            smc,
            score_sum,
        )
    ]


def case_dnfs(ctx: Ctx) -> list[Row]:
    from dnfs.io import lattice_rate_model
    from dnfs.kolmogorov import GeometricPath
    from dnfs.targets import LatticeIsing
    from dnfs.train import DNFSTrainer, TrainConfig

    side, trajectories = (4, 8) if ctx.smoke else (16, 256)
    target = LatticeIsing(side, sigma=0.22305).to(ctx.device)

    def trainer(control):
        torch.manual_seed(0)
        model = lattice_rate_model("transformer", target.dim, 2, 32, num_blocks=2).to(ctx.device)
        config = TrainConfig(
            num_times=9 if ctx.smoke else 33,
            num_trajectories=trajectories,
            batch_size=128,
            steps_per_epoch=1,
            control=control,
            eval_samples=16,
        )
        return DNFSTrainer(model, GeometricPath(target), config, seed=0)

    def epoch(t):  # one Lightning fit of one epoch: simulate the trajectories, update c_t, one optimiser step
        return lambda: t.fit(1, accelerator="gpu" if ctx.device.type == "cuda" else "cpu", devices=1)

    ours, leaps = trainer("stein"), trainer("learned")
    return [
        pair(
            ctx,
            "dnfs",
            f"train epoch (fit of 1 step), Ising {side}x{side} (Stein control variate vs LEAPS learned c(t)), ms",
            epoch(ours),
            epoch(leaps),
        )
    ]


def case_typescore(ctx: Ctx) -> list[Row]:
    import random

    from typescore import corrupt_text, smith_waterman_score

    bench = bench_module("typescore/bench_similarity.py")
    rng = random.Random(1)
    a = "".join(rng.choice("abcdefghij klmnop") for _ in range(60 if ctx.smoke else 1500))
    b = corrupt_text(a, 0.1, rng)
    return [
        pair(
            ctx,
            "typescore",
            f"Smith-Waterman, one {len(a)}-char pair (vectorised vs cell-by-cell DP, CPU), ms",
            lambda: smith_waterman_score(a, b),
            lambda: bench.cellwise_sw(a, b),
        )
    ]


CASES = {name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_")}


def gpu_tests(package: str) -> Row:
    """Runs ``packages/<package>/tests`` with ``LABCORE_GPU_TESTS=1 -m gpu`` in a subprocess."""
    env = {**os.environ, "LABCORE_GPU_TESTS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-q",
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        str(ROOT / "packages" / package / "tests"),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT).stdout
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", out)}
    passed = counts.get("passed", 0)
    total = passed + counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    return Row(package, "GPU tests passed (ours = passed, baseline = collected)", passed, total)


# ---------------------------------------------------------------------------------------------- table


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


def table(device: str, rows: list[Row]) -> str:
    lines = [
        "| device | package | metric | ours | baseline | ratio | peak MiB ours | peak MiB baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r.baseline / r.ours if r.ours else math.nan
        lines.append(
            f"| {device} | {r.package} | {r.metric} | {_fmt(r.ours)} | {_fmt(r.baseline)} | {_fmt(ratio)} | "
            f"{_fmt(r.ours_mib)} | {_fmt(r.baseline_mib)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, no GPU tests (the CI run)")
    p.add_argument("--device", default=None, help="default: cuda if available (never with --smoke), else cpu")
    p.add_argument("--packages", nargs="+", default=sorted(CASES), choices=sorted(CASES))
    p.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 1 smoke, 2 full)")
    p.add_argument("--out", default="gpu_suite.md", help="where the Markdown table goes")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.smoke else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible to torch")
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # graph-break notices: the rows time them anyway
    ctx = Ctx(device, args.smoke, args.repeats or (1 if args.smoke else 2), "eager" if args.smoke else "inductor")
    if ctx.cuda:
        name = f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    else:
        name = f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"
    rows: list[Row] = []
    start = time.perf_counter()
    for package in args.packages:
        if ctx.cuda:
            rows.append(gpu_tests(package))
        tic = time.perf_counter()
        rows += CASES[package](ctx)
        print(f"{package}: {time.perf_counter() - tic:.1f} s", file=sys.stderr)
    text = table(name, rows)
    header = (
        f"GPU suite ({'smoke, tiny sizes' if args.smoke else 'full sizes'}), {name}, {ctx.repeats} timed "
        f"run(s) per side after a warm-up, total {time.perf_counter() - start:.0f} s. ratio = baseline / ours.\n\n"
    )
    Path(args.out).write_text(header + text)
    print(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

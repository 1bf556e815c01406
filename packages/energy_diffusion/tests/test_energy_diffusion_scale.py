"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import torch

from energy_diffusion.cli import load_energy, main
from energy_diffusion.edm import EDMConfig, MLPDenoiser, train_denoiser
from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))

    def train(out, steps, opts):
        torch.manual_seed(0)
        model = MLPDenoiser(2, hidden=16, depth=2)
        train_denoiser(model, data, EDMConfig(), steps=steps, batch_size=32, checkpoint_dir=out, **opts)
        return out / "last.ckpt"

    diff = check_ddp_matches_single(train, tmp_path, steps=3, atol=1e-6)
    print(diff)


def test_sigterm_saves_the_step_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    def args(out):
        return ["energy_diffusion", "train", "--target", "toy-a", "--out", str(out), "--n-data", "256"] + [
            *("--hidden", "8", "--depth", "2", "--batch-size", "16", "--teacher-steps", "150", "--distill-steps", "2"),
            *("--checkpoint-every", "5", "--device", "cpu"),
        ]

    step = check_interrupt_and_resume(args(tmp_path / "a"), tmp_path / "a" / "teacher_ckpt" / "last.ckpt")
    assert 5 <= step < 150
    main(args(tmp_path / "b")[1:])  # uninterrupted
    for p, q in zip(
        load_energy(tmp_path / "a" / "energy").parameters(), load_energy(tmp_path / "b" / "energy").parameters()
    ):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

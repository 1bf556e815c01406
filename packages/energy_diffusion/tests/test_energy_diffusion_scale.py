"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import torch

from energy_diffusion.cli import load_energy, main
from energy_diffusion.distill import distill
from energy_diffusion.edm import EDMConfig, MLPDenoiser, train_denoiser
from energy_diffusion.energy import MLPEnergy
from labcore.lightning_testing import (
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)

DATA = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))


def run_tiny_distill(out, steps, opts):  # module level: the fsdp run loads it by file and name
    """Distil a frozen (random) teacher into an energy (its loss differentiates the score: double backward);
    the energy is saved as the CLI does (every process gathers)."""
    torch.manual_seed(0)
    teacher, energy = MLPDenoiser(2, hidden=16, depth=2), MLPEnergy(2, hidden=16, depth=2)
    distill(energy, teacher, DATA, EDMConfig(), steps=steps, batch_size=32, checkpoint_dir=out, **opts)
    energy.save_pretrained(out / "energy")
    return out / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))

    def train(out, steps, opts):
        torch.manual_seed(0)
        model = MLPDenoiser(2, hidden=16, depth=2)
        train_denoiser(model, data, EDMConfig(), steps=steps, batch_size=32, checkpoint_dir=out, **opts)
        return out / "last.ckpt"

    diff = check_ddp_matches_single(train, tmp_path, steps=3, atol=1e-6)
    print(diff)


@needs_fsdp2_on_cpu
def test_fsdp_distillation_equals_one_process_resumes_both_ways_and_saves_the_full_energy(tmp_path):
    check_fsdp_matches_single(run_tiny_distill, tmp_path, steps=3, atol=1e-6)
    # the single run's last step ran under fsdp: its saved energy holds the full weights of its last.ckpt, and
    # the checkpoint holds the energy only (the frozen teacher is no unit and not saved)
    saved = load_energy(tmp_path / "single" / "energy").state_dict()
    assert_saved_equals_checkpoint(saved, tmp_path / "single" / "last.ckpt")


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

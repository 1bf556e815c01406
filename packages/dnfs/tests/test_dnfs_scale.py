"""Multi-process training (Lightning DDP and FSDP2 on CPU/gloo) equals one process on the same global batch; resume."""

from dataclasses import replace

import pytest
import torch

from dnfs.io import load_rate_model, save_rate_model
from dnfs.kolmogorov import GeometricPath
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.sampler import simulate
from dnfs.targets import LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer
from labcore.lightning_testing import (
    CPU_ACCUMULATE,
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    max_weight_diff,
    needs_fsdp2_on_cpu,
)

# 3 steps per epoch, 5 steps: both runs simulate epochs 0 and 1 (under DDP each process 4 of the 8 trajectories,
# then all gather them) and stop after step 4, mid-epoch 1 with the buffer holding both epochs' trajectories;
# the single-process resume of step 5 must read that buffer back from the DDP checkpoint
CONFIG = TrainConfig(num_times=5, num_trajectories=8, batch_size=8, steps_per_epoch=3, buffer_size=16, eval_samples=8)


def train(out, steps, opts):
    torch.manual_seed(0)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=8))
    DNFSTrainer(model, GeometricPath(LatticeIsing(3, sigma=0.2, bias=0.1)), CONFIG).fit(steps, out_dir=out, **opts)
    return out / "checkpoints" / "last.ckpt"


def run_tiny_transformer(out, steps, opts):  # module level: the fsdp run loads it by file and name
    """The LE Transformer (nested blocks: 2 streams x 1 causal block x 1 attention block, each an FSDP unit) with
    the learned control (a second root unit); the model is saved as the CLI does (every process gathers)."""
    torch.manual_seed(0)
    model = LocallyEquivariantTransformer(LETransformerConfig(9, 2, hidden_dim=8, head_dim=4, num_blocks=1))
    config = replace(CONFIG, control="learned")
    DNFSTrainer(model, GeometricPath(LatticeIsing(3, sigma=0.2, bias=0.1)), config).fit(steps, out_dir=out, **opts)
    save_rate_model(model, out / "model")
    return out / "checkpoints" / "last.ckpt"


def test_ddp_equals_one_process_and_resumes_mid_epoch_exactly(tmp_path):
    # weights (c_t included), per-step losses and the resumed step agree to 1e-6; on this tiny run they are equal
    check_ddp_matches_single(train, tmp_path, steps=5, atol=1e-6)
    resumed = torch.load(tmp_path / "multi" / "checkpoints" / "last.ckpt", weights_only=False)
    straight = torch.load(train(tmp_path / "straight", 5, dict(CPU_ACCUMULATE)), weights_only=False)
    assert max_weight_diff(resumed["state_dict"], straight["state_dict"]) <= 1e-6


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_resumes_both_ways_and_saves_the_full_model(tmp_path):
    # 5 steps as above: the epoch-1 refresh (sampling with the sharded network) runs under fsdp
    check_fsdp_matches_single(run_tiny_transformer, tmp_path, steps=5, atol=1e-6)
    # the single run's last step ran under fsdp: its saved network holds the full weights of its last.ckpt
    saved = load_rate_model(tmp_path / "single" / "model")
    assert isinstance(saved, LocallyEquivariantTransformer)
    assert_saved_equals_checkpoint(saved.state_dict(), tmp_path / "single" / "checkpoints" / "last.ckpt", only=False)


def test_a_part_of_a_simulation_is_those_rows_of_the_whole(ising3_path):
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=8))
    times = torch.linspace(0, 1, 6)

    def run(part):
        return simulate(
            model, ising3_path, 8, times, keep_trajectory=True, generator=torch.Generator().manual_seed(3), part=part
        )

    whole = run((0, 1))
    for i in range(4):
        piece = run((i, 4))
        assert torch.equal(piece.trajectory, whole.trajectory[:, 2 * i : 2 * i + 2])
        torch.testing.assert_close(piece.log_weights, whole.log_weights[2 * i : 2 * i + 2])
    with pytest.raises(ValueError, match="do not split into 3"):
        run((0, 3))

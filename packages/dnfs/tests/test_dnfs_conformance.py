"""Bad-input conformance (labcore.conformance): save/load contract of the three rate networks, their inputs,
and the CLI's model paths and counts."""

from __future__ import annotations

import torch

from dnfs.__main__ import main
from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer
from labcore.conformance import AS_FLOAT, EXTRA_DIM, NONFINITE, Bad, CallSpec, CliSpec, ModelSpec, conformance_tests

D, S = 4, 3
GRAPH = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]).float()


def _transformer():
    torch.manual_seed(0)
    return LocallyEquivariantTransformer(LETransformerConfig(D, S, hidden_dim=16, head_dim=8, num_blocks=1))


def _mlp():
    torch.manual_seed(0)
    return LocallyEquivariantMLP(LEMLPConfig(D, S, hidden_dim=16))


def _graph():
    torch.manual_seed(0)
    return LocallyEquivariantGraphTransformer(LEGraphConfig(D, S, hidden_dim=16, head_dim=8), GRAPH)


def _inputs() -> dict:
    return {"x": torch.randint(0, S, (2, D)), "t": torch.rand(2)}


OUT_OF_RANGE = Bad("state_out_of_range", lambda x: x + S)
NEGATIVE = Bad("negative_state", lambda x: x - S)

globals().update(
    conformance_tests(
        models=[
            ModelSpec(_transformer, {"hidden_dim": 24}, {"hidden_dim": 2**17}, name="LETransformer"),
            ModelSpec(_mlp, {"hidden_dim": 24}, {"hidden_dim": 2**20}, name="LEMLP"),
            ModelSpec(
                _graph,
                {"hidden_dim": 24},
                {"hidden_dim": 2**17},
                load=lambda p: LocallyEquivariantGraphTransformer.from_pretrained(p, adjacency=GRAPH),
                name="LEGraphTransformer",
            ),
        ],
        calls=[
            CallSpec(
                f"{name}.forward",
                lambda x, t, m=make: m()(x, t),
                _inputs,
                {"x": (OUT_OF_RANGE, NEGATIVE, AS_FLOAT, EXTRA_DIM), "t": (*NONFINITE, EXTRA_DIM)},
                names={"x": "state"},
            )
            for name, make in (("LETransformer", _transformer), ("LEMLP", _mlp), ("LEGraphTransformer", _graph))
        ],
        clis=[
            CliSpec(
                "dnfs",
                main,
                [
                    (["sample", "--model", "{missing}", "--out", "{empty_dir}/s.pt"], "{missing}"),
                    (["evaluate", "--model", "{empty_dir}"], "{empty_dir}"),
                    (["evaluate", "--model", "{corrupt}"], "{corrupt}"),
                ],
            )
        ],
    )
)

"""The named model sizes as plain keyword dicts (``tarflow_lm.configuration`` builds the configs; the CLI lists
the names without importing transformers)."""

PRESET_KWARGS = {
    "tiny": dict(
        vocab_size=27,
        latent_dim=8,
        max_seq_len=32,
        layer_types=["mix1", "affine"],
        num_mixtures=8,
        hidden_size=48,
        layers_per_block=1,
        num_heads=4,
    ),
    "text8": dict(
        vocab_size=27,
        latent_dim=64,
        max_seq_len=256,
        layer_types=["mix1"] + ["affine"] * 5,
        num_mixtures=27,
        hidden_size=768,
        layers_per_block=2,
        num_heads=12,
    ),
    "openwebtext": dict(
        vocab_size=50257,
        latent_dim=64,
        max_seq_len=1024,
        layer_types=["mixd"] + ["affine"] * 5,
        num_mixtures=64,
        hidden_size=768,
        layers_per_block=2,
        num_heads=12,
    ),
}

"""The Dream sampler against an independent per-row re-implementation and against exact enumeration."""

import itertools
import math

import pytest
import torch

from diffucoder import diffusion_generate
from diffucoder.cached import cached_generate
from diffucoder.generation import left_pad, top_k_logits, top_p_logits

ALGS = ["origin", "maskgit_plus", "topk_margin", "entropy"]


@torch.no_grad()
def reference_generate(model, prompts, new, steps, alg, mask_id, hook, uniforms, eps=1e-3):
    """Straightforward Dream sampler, one unpadded prompt at a time, temperature 0."""
    ts = torch.linspace(1, eps, steps + 1)
    width = max(len(p) for p in prompts)
    outs = []
    for r, prompt in enumerate(prompts):
        offset = width - len(prompt)
        x = list(prompt) + [mask_id] * new
        for i in range(steps):
            raw = hook(i, None, model(torch.tensor([x])).logits)[0]
            masked = [j for j, tok in enumerate(x) if tok == mask_id]
            probs = {j: torch.softmax(raw[max(j - 1, 0)], -1) for j in masked}
            t, s = ts[i], ts[i + 1]
            if alg == "origin":
                p = 1 - s / t if i < steps - 1 else 1.0
                for j in masked:
                    if uniforms[i][r, j + offset] < p:
                        x[j] = int(probs[j].argmax())
                continue
            conf = {}
            for j in masked:
                pr = probs[j]
                if alg == "maskgit_plus":
                    conf[j] = float(pr.max())
                elif alg == "topk_margin":
                    top = sorted(pr.tolist(), reverse=True)
                    conf[j] = top[0] - top[1]
                else:
                    conf[j] = float((pr * torch.log(pr + 1e-10)).sum())
            k = int(torch.tensor(float(len(masked))) * (1 - s / t)) if i < steps - 1 else len(masked)
            for j in sorted(masked, key=lambda j: -conf[j])[:k]:
                x[j] = int(probs[j].argmax())
        outs.append(x[len(prompt) :])
    return torch.tensor(outs)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("padded", [False, True])
def test_greedy_sampler_matches_reference(alg, padded, model, mask_hook):
    g = torch.Generator().manual_seed(3)
    lengths = [3, 5, 4] if padded else [4, 4, 4]
    prompts = [torch.randint(0, 13, (n,), generator=g).tolist() for n in lengths]
    width = max(lengths)
    ids = torch.tensor([[14] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    new, steps = 9, 4
    uniforms, gen = [], torch.Generator().manual_seed(7)
    for _ in range(steps):
        uniforms.append(torch.rand(3, width + new, generator=gen))
    hook = mask_hook(15)
    out = diffusion_generate(
        model,
        ids,
        attention_mask=mask,
        max_new_tokens=new,
        steps=steps,
        alg=alg,
        generation_logits_hook_func=hook,
        generator=torch.Generator().manual_seed(7),
    )
    ref = reference_generate(model, prompts, new, steps, alg, 15, hook, uniforms)
    assert torch.equal(out[:, width:], ref)
    assert torch.equal(out[:, :width], ids)


@torch.no_grad()
def exact_origin(model, prompt, new, steps, temperature, hook, mask_id, vocab, eps=1e-3):
    """Exact law of the 'origin' sampler by enumerating every reveal pattern and token."""
    ts = torch.linspace(1, eps, steps + 1)
    dist = {tuple(prompt) + (mask_id,) * new: 1.0}
    for i in range(steps):
        p = float(1 - ts[i + 1] / ts[i]) if i < steps - 1 else 1.0
        nxt = {}
        for x, px in dist.items():
            logits = hook(i, None, model(torch.tensor([x])).logits)[0]
            masked = [j for j, tok in enumerate(x) if tok == mask_id]
            options = []
            for j in masked:
                q = torch.softmax(logits[max(j - 1, 0)] / temperature, -1).double()
                options.append([(mask_id, 1 - p)] + [(v, p * float(q[v])) for v in range(vocab) if v != mask_id])
            for combo in itertools.product(*options):
                y = list(x)
                w = px
                for j, (tok, pr) in zip(masked, combo):
                    y[j] = tok
                    w *= pr
                nxt[tuple(y)] = nxt.get(tuple(y), 0.0) + w
        dist = nxt
    return dist


@torch.no_grad()
def exact_confidence(model, prompt, new, steps, temperature, alg_temp, hook, mask_id, vocab, eps=1e-3):
    """Exact law of 'maskgit_plus' with alg_temp > 0: proposals, then reveals drawn without replacement."""
    ts = torch.linspace(1, eps, steps + 1)
    dist = {tuple(prompt) + (mask_id,) * new: 1.0}
    for i in range(steps):
        nxt = {}
        for x, px in dist.items():
            logits = hook(i, None, model(torch.tensor([x])).logits)[0]
            masked = [j for j, tok in enumerate(x) if tok == mask_id]
            qs = [torch.softmax(logits[max(j - 1, 0)] / temperature, -1).double() for j in masked]
            k = int(torch.tensor(float(len(masked))) * (1 - ts[i + 1] / ts[i])) if i < steps - 1 else len(masked)
            tokens = [v for v in range(vocab) if v != mask_id]
            for proposal in itertools.product(tokens, repeat=len(masked)):
                pp = math.prod(float(q[v]) for q, v in zip(qs, proposal))
                conf = torch.tensor([float(q[v]) for q, v in zip(qs, proposal)])
                w = torch.softmax(conf / alg_temp, -1).tolist()
                for seq in itertools.permutations(range(len(masked)), k):
                    ps, left = 1.0, 1.0
                    for a in seq:
                        ps *= w[a] / left
                        left -= w[a]
                    y = list(x)
                    for a in seq:
                        y[masked[a]] = proposal[a]
                    nxt[tuple(y)] = nxt.get(tuple(y), 0.0) + px * pp * ps
        dist = nxt
    return dist


def empirical(out):
    counts = {}
    for row in out.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    return {k: v / out.shape[0] for k, v in counts.items()}


def total_variation(p, q):
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


@pytest.mark.parametrize("alg", ["origin", "maskgit_plus"])
def test_sampler_matches_exact_distribution(alg, make_model, mask_hook):
    model = make_model(1, vocab_size=4, mask_token_id=3, pad_token_id=2, bos_token_id=2, eos_token_id=2)
    hook, prompt, n = mask_hook(3), [0, 1], 40000
    new, steps = (2, 2) if alg == "origin" else (3, 2)
    if alg == "origin":
        exact = exact_origin(model, prompt, new, steps, 0.8, hook, 3, 4)
    else:
        exact = exact_confidence(model, prompt, new, steps, 0.8, 0.5, hook, 3, 4)
    assert abs(sum(exact.values()) - 1) < 1e-6
    ids = torch.tensor([prompt]).expand(n, -1)
    out = diffusion_generate(
        model,
        ids,
        max_new_tokens=new,
        steps=steps,
        alg=alg,
        temperature=0.8,
        alg_temp=0.5,
        generation_logits_hook_func=hook,
        generator=torch.Generator().manual_seed(0),
    )
    tv = total_variation(empirical(out), exact)
    assert tv < 0.025, tv  # ~27 outcomes, 40k samples: sampling noise TV ≈ 0.01


def test_reveal_counts_and_no_token_changes(model, mask_hook):
    new, steps = 10, 4
    out = diffusion_generate(
        model,
        torch.randint(0, 13, (2, 3)),
        max_new_tokens=new,
        steps=steps,
        alg="entropy",
        temperature=1.0,
        top_p=0.9,
        return_dict_in_generate=True,
        output_history=True,
        generation_logits_hook_func=mask_hook(15),
        generator=torch.Generator().manual_seed(0),
    )
    ts = torch.linspace(1, 1e-3, steps + 1)
    remaining, expected = new, []
    for i in range(steps):
        k = int(torch.tensor(float(remaining)) * (1 - ts[i + 1] / ts[i])) if i < steps - 1 else remaining
        expected.append(k)
        remaining -= k
    prev = torch.cat([out.history[0][:, :3], torch.full((2, new), 15)], dim=1)
    for h, k in zip(out.history, expected):
        revealed = (prev == 15) & (h != 15)
        assert revealed.sum(-1).tolist() == [k, k]
        kept = prev != 15
        assert torch.equal(h[kept], prev[kept])  # once unmasked, a token never changes
        prev = h
    assert not (out.sequences == 15).any()


def test_options_and_errors(model):
    ids = torch.randint(0, 13, (2, 3))
    calls = []
    out = diffusion_generate(
        model,
        ids,
        max_new_tokens=4,
        steps=2,
        num_return_sequences=3,
        generation_tokens_hook_func=lambda i, x, lg: calls.append(i) or x,
    )
    assert out.shape == (6, 7) and calls == [None, 0, 1]
    assert torch.equal(out[:3, :3], ids[:1].expand(3, -1))
    with pytest.raises(ValueError, match="steps"):
        diffusion_generate(model, ids, max_new_tokens=4, steps=5)
    with pytest.raises(ValueError, match="context"):
        diffusion_generate(model, ids, max_new_tokens=62, steps=4)
    with pytest.raises(ValueError, match="alg"):
        diffusion_generate(model, ids, max_new_tokens=4, steps=2, alg="random")
    with pytest.raises(ValueError, match="mask_token_id"):
        model.config.mask_token_id = None
        diffusion_generate(model, ids, max_new_tokens=4, steps=2)


def test_top_p_and_top_k_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = top_p_logits(logits, 0.7) > torch.finfo(logits.dtype).min
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7 ≤ 0.8: the first two
    kept = top_k_logits(logits, 3) > torch.finfo(logits.dtype).min
    assert kept.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("use_cache,dual", [(True, False), (True, True), (False, False)])
def test_cached_sampler_decodes_blocks_in_order(use_cache, dual, model, mask_hook):
    ids = torch.randint(0, 13, (2, 4))
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    out, nfe = cached_generate(
        model,
        ids,
        mask,
        max_new_tokens=8,
        block_length=4,
        threshold=0.5,
        use_cache=use_cache,
        dual_cache=dual,
        output_history=True,
    )
    seqs = out.sequences
    assert torch.equal(seqs[:, :4], ids) and not (seqs == 15).any()
    assert len(out.history) == nfe and 2 <= nfe <= 8
    prev = None
    for h in out.history:
        first_block_done = not (h[:, 4:8] == 15).any()
        assert first_block_done or (h[:, 8:] == 15).all()
        if prev is not None:
            kept = prev != 15
            assert torch.equal(h[kept], prev[kept])
        prev = h


def test_cached_sampler_without_threshold_is_one_token_per_step(model):
    ids = torch.randint(0, 13, (1, 4))
    out, nfe = cached_generate(model, ids, max_new_tokens=8, block_length=4, threshold=2.0, use_cache=False)
    assert nfe == 8


@torch.no_grad()
def test_threshold_schedule_matches_reference_without_cache(model):
    """Per-row re-implementation: in each block, reveal every masked token with p > threshold, at least the best."""
    ids, new, block, thr = torch.randint(0, 13, (3, 4)), 8, 4, 0.3
    out, _ = cached_generate(model, ids, max_new_tokens=new, block_length=block, threshold=thr, use_cache=False)
    for r in range(3):
        x = ids[r].tolist() + [15] * new
        for start in range(4, 4 + new, block):
            while 15 in x[start : start + block]:
                logits = model(torch.tensor([x])).logits[0]
                logits[:, 15] = -torch.inf
                probs = torch.softmax(logits[start - 1 : start + block - 1], -1)
                conf, tok = probs.max(-1)
                masked = [j for j in range(block) if x[start + j] == 15]
                best = max(masked, key=lambda j: conf[j])
                for j in masked:
                    if conf[j] > thr or j == best:
                        x[start + j] = int(tok[j])
        assert out.sequences[r].tolist() == x


@pytest.mark.parametrize("dual", [False, True])
def test_caches_are_exact_with_one_token_blocks(dual, model):
    ids = torch.randint(0, 13, (2, 4))
    exact, _ = cached_generate(model, ids, max_new_tokens=6, block_length=1, use_cache=False)
    cached, _ = cached_generate(model, ids, max_new_tokens=6, block_length=1, dual_cache=dual)
    assert torch.equal(exact.sequences, cached.sequences)


def test_infilling_masks_in_prompts_with_unequal_counts(model, mask_hook):
    ids = torch.randint(0, 13, (2, 6))
    ids[0, 2] = 15  # one row has an extra masked position to fill
    out = diffusion_generate(
        model, ids, max_new_tokens=4, steps=2, alg="maskgit_plus", generation_logits_hook_func=mask_hook(15)
    )
    keep = ids != 15
    assert torch.equal(out[:, :6][keep], ids[keep]) and not (out == 15).any()


def test_left_pad_layout():
    ids, mask = left_pad([[5, 6], [7], [8, 9, 10]], pad_token_id=14)
    assert ids.tolist() == [[14, 5, 6], [14, 14, 7], [8, 9, 10]]
    assert mask.tolist() == [[0, 1, 1], [0, 0, 1], [1, 1, 1]]
    ids, mask = left_pad([[5]], pad_token_id=14, width=3)
    assert ids.tolist() == [[14, 14, 5]] and mask.tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match="shorter than the longest"):
        left_pad([[1, 2, 3]], pad_token_id=14, width=2)


@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy"])
def test_block_schedule_with_one_block_is_dreams_sampler(alg, model, mask_hook):
    """steps=...: Dream's floor schedule inside each block; one block, no cache = diffusion_generate exactly."""
    ids = torch.randint(0, 13, (3, 4))
    out, nfe = cached_generate(model, ids, max_new_tokens=8, block_length=8, steps=5, alg=alg, use_cache=False)
    ref = diffusion_generate(model, ids, max_new_tokens=8, steps=5, alg=alg, generation_logits_hook_func=mask_hook())
    assert nfe == 5 and torch.equal(out.sequences, ref)
    two, nfe = cached_generate(model, ids, max_new_tokens=8, block_length=4, steps=4, alg=alg, output_history=True)
    assert nfe == 4 and not (two.sequences == 15).any()
    assert [int((h[:, 4:] != 15).sum()) for h in two.history] == [3, 12, 15, 24]  # 2 steps/block: 1 then 3


def test_cached_sampler_refuses_unused_options(model):
    ids = torch.randint(0, 13, (1, 4))
    with pytest.raises(ValueError, match="alg"):
        cached_generate(model, ids, max_new_tokens=8, block_length=4, alg="entropy")
    with pytest.raises(ValueError, match="steps"):
        cached_generate(model, ids, max_new_tokens=8, block_length=4, steps=3)
    with pytest.raises(ValueError, match="threshold"):
        cached_generate(model, ids, max_new_tokens=8, block_length=4, threshold=None)


@pytest.mark.parametrize("dual", [False, True])
def test_cached_forward_work_per_block(dual, model):
    """Each block costs one full refresh pass, then in-block passes on ``[start − 1, block end)`` (dual cache) or
    ``[start − 1, total)`` (prefix cache) only; a model confident everywhere (threshold 0) decodes each block in its
    refresh pass, so the calls equal the blocks (Fast-dLLM's refresh reveals one token: never fewer calls there)."""
    ids, new, block = torch.randint(0, 13, (2, 4)), 12, 4
    total = ids.shape[1] + new
    for threshold in (0.0, 0.5, 2.0):
        lengths = []
        handle = model.register_forward_pre_hook(lambda m, args, seen=lengths: seen.append(args[0].shape[1]))
        try:
            _, nfe = cached_generate(
                model, ids, max_new_tokens=new, block_length=block, threshold=threshold, dual_cache=dual
            )
        finally:
            handle.remove()
        assert len(lengths) == nfe
        starts = range(ids.shape[1], total, block)
        refreshes = [i for i, n in enumerate(lengths) if n == total]
        assert len(refreshes) == len(starts) and refreshes[0] == 0
        for (first, nxt), start in zip(zip(refreshes, refreshes[1:] + [len(lengths)]), starts):
            assert 1 <= nxt - first <= block  # every pass reveals at least one token of the block
            in_block = (start + block if dual else total) - (start - 1)
            assert lengths[first + 1 : nxt] == [in_block] * (nxt - first - 1)
        if threshold == 0.0:
            assert nfe == len(starts)
        if threshold == 2.0:  # nothing is confident: one token per pass
            assert nfe == new

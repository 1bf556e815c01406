"""Golden numbers for ``protocol="aitod-r"`` from AI-TOD-R's own loader and evaluator.

Run against a checkout of https://github.com/Chasel-Tsui/AI-TOD-R (nothing of it is copied here; only
its outputs are written)::

    python packages/tinydet/tests/golden/make_golden.py --official /path/to/AI-TOD-R

It loads, from the checkout, ``poly2obb_np_le135`` + ``norm_angle`` (``mmrotate/core/bbox/transforms.py``),
``AITODReval`` (``mmrotate/datasets/aitodr_eval/aitodr_eval.py``), ``eval_rbbox_map``
(``mmrotate/core/evaluation/eval_map.py``) and mmdet's ``average_precision``
(``mmdet/core/evaluation/mean_ap.py``), and runs them on fixed synthetic scenes. Stand-ins for what
cannot be installed here (mmcv's compiled ops): ``mmcv.ops.box_iou_rotated`` is shapely's polygon IoU
(float64, returned as float32 like mmcv's), ``print_log`` prints, ``AsciiTable`` is a no-op, the
multiprocessing pool runs in-process, and ``np.float`` (removed from numpy) is ``float``, ``np.bool`` (absent in
numpy 1.24–1.26) ``bool``.
Writes ``aitodr.safetensors`` (inputs) and ``aitodr.json`` (outputs, commit, command). The VOC mAPs depend on
how numpy's default argsort orders tied scores: they are recorded by that order (``tie_order``); ``--add-voc``
run with another numpy adds its order's mAPs for the written inputs.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
NUM_CLASSES = 8  # AI-TOD-R's


def shapely_iou(d: torch.Tensor, g: torch.Tensor, mode: str = "iou", aligned: bool = False) -> torch.Tensor:
    """Stand-in for ``mmcv.ops.box_iou_rotated`` (N×M IoU of (cx, cy, w, h, a) boxes)."""
    if mode != "iou" or aligned:
        raise NotImplementedError(f"stand-in box_iou_rotated: mode={mode!r}, aligned={aligned}")
    from shapely.geometry import Polygon

    def poly(b):
        x, y, w, h, a = (float(v) for v in b[:5])  # mmcv reads the first 5 values of each row
        c, s = np.cos(a), np.sin(a)
        pts = [
            (x + u * w / 2 * c - v * h / 2 * s, y + u * w / 2 * s + v * h / 2 * c)
            for u, v in ((1, 1), (-1, 1), (-1, -1), (1, -1))
        ]
        return Polygon(pts)

    # mmcv reads each row's first 5 values from memory: (K, 1, 5) inputs (C2FAssigner passes some) are (K, 5)
    d, g = d.reshape(d.shape[0], 5 if d.numel() == 0 else -1), g.reshape(g.shape[0], 5 if g.numel() == 0 else -1)
    dp, gp = [poly(b) for b in d.double()], [poly(b) for b in g.double()]
    out = np.zeros((len(dp), len(gp)))
    for i, p in enumerate(dp):
        for j, q in enumerate(gp):
            inter = p.intersection(q).area
            union = p.area + q.area - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return torch.from_numpy(out.astype(np.float32))


def _functions(path: Path, names: list[str], namespace: dict) -> dict:
    """Exec only the named top-level functions of an official file in ``namespace``."""
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def load_official(root: Path) -> types.SimpleNamespace:
    if not hasattr(np, "float"):
        np.float = float  # removed in numpy 1.24; the evaluator still uses it
    if not hasattr(np, "bool"):
        np.bool = bool  # removed in numpy 1.24, back (as np.bool_) in 2.0; the evaluator uses it
    ap_ns = _functions(root / "mmdet/core/evaluation/mean_ap.py", ["average_precision"], {"np": np})
    tf_ns = _functions(root / "mmrotate/core/bbox/transforms.py", ["norm_angle", "poly2obb_np_le135"], {"np": np})
    stubs = {
        "mmcv": types.ModuleType("mmcv"),
        "mmcv.ops": types.SimpleNamespace(box_iou_rotated=shapely_iou),
        "mmcv.utils": types.SimpleNamespace(print_log=lambda *a, **k: None),
        "mmdet": types.ModuleType("mmdet"),
        "mmdet.core": types.SimpleNamespace(average_precision=ap_ns["average_precision"]),
        "terminaltables": types.SimpleNamespace(AsciiTable=lambda *a, **k: types.SimpleNamespace(table="")),
    }
    sys.modules.update(stubs)
    mods = {}
    for name, rel in (
        ("aitodr_eval", "mmrotate/datasets/aitodr_eval/aitodr_eval.py"),
        ("eval_map", "mmrotate/core/evaluation/eval_map.py"),
    ):
        spec = importlib.util.spec_from_file_location(f"official_{name}", root / rel)
        mods[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[name])

    class SerialPool:
        def __init__(self, *a):
            pass

        def starmap(self, f, args):
            return [f(*a) for a in args]

        def close(self):
            pass

    mods["eval_map"].get_context = lambda *_: types.SimpleNamespace(Pool=SerialPool)
    return types.SimpleNamespace(
        poly2obb=tf_ns["poly2obb_np_le135"],
        AITODReval=mods["aitodr_eval"].AITODReval,
        eval_rbbox_map=mods["eval_map"].eval_rbbox_map,
    )


def _classes(path: Path, names: list[str], namespace: dict) -> dict:
    """Exec the named top-level classes and functions of an official file in ``namespace``, decorators dropped."""
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
    for n in body:
        n.decorator_list = []
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def load_assigner(root: Path):
    """AI-TOD-R's ``C2FAssigner`` with its ``RBboxMetrics2D`` and default ``DeltaXYWHAOBBoxCoder``; stand-ins:
    mmdet's ``AssignResult`` (a record of its arguments), ``BaseAssigner``/``BaseBBoxCoder`` (empty bases),
    ``box_iou_rotated`` (shapely)."""
    bbox = root / "mmrotate/core/bbox"
    ns = {"torch": torch, "np": np, "numpy": np, "math": __import__("math"), "box_iou_rotated": shapely_iou}
    _functions(bbox / "transforms.py", ["norm_angle", "hbb2obb", "hbb2obb_oc", "hbb2obb_le135", "hbb2obb_le90"], ns)
    ns["BaseBBoxCoder"] = type("BaseBBoxCoder", (), {})
    _classes(bbox / "coder/delta_xywha_rbbox_coder.py", ["DeltaXYWHAOBBoxCoder", "bbox2delta", "delta2bbox"], ns)
    names = ["RBboxMetrics2D", "rbbox_metrics", "xy_wh_r_2_xy_sigma", "get_gjsd", "gjsd"]
    _classes(bbox / "iou_calculators/rotate_metric_calculator.py", names, ns)

    class AssignResult:
        def __init__(self, num_gts, gt_inds, max_overlaps, labels=None):
            self.num_gts, self.gt_inds, self.max_overlaps, self.labels = num_gts, gt_inds, max_overlaps, labels

    ns["AssignResult"] = AssignResult
    ns["BaseAssigner"] = object
    ns["build_iou_calculator"] = lambda cfg: ns[cfg["type"]]()
    ns["build_bbox_coder"] = lambda cfg: ns[cfg["type"]](**{k: v for k, v in cfg.items() if k != "type"})
    _classes(bbox / "assigners/coarse2fine_assigner.py", ["C2FAssigner"], ns)
    return ns["C2FAssigner"]


def assigner_cases(rng: np.random.Generator, assigner_cls, n_cases: int = 6) -> dict:
    """Dense priors of a 3-level FPN on a 96-px image (4·stride squares, dynamic-prior shifts up to 3 px),
    random deltas and logits, 3–20 tiny gts; the reference's settings (topk 16, topq 12, gauss_thr 0.8)."""
    assigner = assigner_cls(
        iou_calculator=dict(type="RBboxMetrics2D"),
        assign_metric="gjsd",
        topk=16,
        topq=12,
        constraint="dgmm",
        gauss_thr=0.8,
    )
    out = {}
    for c in range(n_cases):
        priors = []
        for stride in (8, 16, 32):
            ys, xs = np.meshgrid(np.arange(96 // stride), np.arange(96 // stride), indexing="ij")
            n = xs.size
            priors.append(
                np.stack(
                    [
                        xs.ravel() * stride,
                        ys.ravel() * stride,
                        np.full(n, 4.0 * stride),
                        np.full(n, 4.0 * stride),
                        np.zeros(n),
                    ],
                    1,
                )
            )
        priors = np.concatenate(priors).astype(np.float32)
        priors[:, :2] += rng.uniform(-3, 3, (len(priors), 2)).astype(np.float32)
        deltas = (rng.normal(0, 0.3, (len(priors), 5))).astype(np.float32)
        logits = rng.normal(-3, 1.5, (len(priors), 3)).astype(np.float32)
        g = int(rng.integers(3, 21))
        gts = np.stack(
            [
                rng.uniform(4, 92, g),
                rng.uniform(4, 92, g),
                rng.uniform(3, 20, g),
                rng.uniform(2, 10, g),
                rng.uniform(-np.pi / 4, 3 * np.pi / 4, g),
            ],
            1,
        ).astype(np.float32)
        res = assigner.assign(
            torch.from_numpy(logits).T, torch.from_numpy(deltas).T, torch.from_numpy(priors), torch.from_numpy(gts)
        )
        out |= {
            f"c{c}_priors": priors,
            f"c{c}_deltas": deltas,
            f"c{c}_logits": logits,
            f"c{c}_gts": gts,
            f"c{c}_assigned": res.gt_inds.numpy().astype(np.int64),
        }
    return out


def polygons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noisy rectangles of 0.5–70 px sides plus degenerate quadrilaterals (repeated, collinear, bow-tie)."""
    cx, cy = rng.uniform(0, 300, n), rng.uniform(0, 300, n)
    w, h = np.exp(rng.uniform(np.log(0.5), np.log(70), n)), np.exp(rng.uniform(np.log(0.5), np.log(40), n))
    a = rng.uniform(-np.pi, np.pi, n)
    u, v = np.array([1, -1, -1, 1]) / 2, np.array([1, 1, -1, -1]) / 2
    xs = cx[:, None] + u * w[:, None] * np.cos(a)[:, None] - v * h[:, None] * np.sin(a)[:, None]
    ys = cy[:, None] + u * w[:, None] * np.sin(a)[:, None] + v * h[:, None] * np.cos(a)[:, None]
    poly = np.stack([xs, ys], -1) + rng.normal(0, 0.3, (n, 4, 2)) * (rng.random((n, 1, 1)) < 0.5)
    k = n // 10
    poly[:k, 1] = poly[:k, 0]  # repeated point
    poly[k : 2 * k, 2] = (poly[k : 2 * k, 1] + poly[k : 2 * k, 3]) / 2  # collinear p2, p3, p4
    poly[2 * k : 3 * k, [1, 2]] = poly[2 * k : 3 * k, [2, 1]]  # bow-tie
    return np.round(poly.reshape(n, 8), 1).astype(np.float32)  # one decimal, as annotation files hold


def scenes(rng: np.random.Generator, official, n_images: int = 14):
    """Ground truth through the official loader (with bin-edge areas and a duplicated gt); detections: exact and
    jittered hits, duplicates, misses, false positives, scores with ties (two decimals)."""
    gts, dets = [], []
    for i in range(n_images):
        polys = polygons(rng, int(rng.integers(0, 45)))
        if i == 0:  # two plain rectangles first: gt ids 0 and 1
            polys = np.concatenate(
                [np.array([[10, 10, 22, 10, 22, 16, 10, 16], [40, 40, 49, 40, 49, 45, 40, 45]], np.float32), polys]
            )
        # rectangles whose float area lies just above a bin edge (int(area) puts them inside), and a duplicate
        x0, y0 = rng.uniform(20, 250, 2)
        edge = [(8.05, 8.0), (16.02, 16.0), (32.01, 32.0), (2.3, 2.0)]
        extra = [[x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h] for w, h in edge[: int(rng.integers(0, 5))]]
        polys = np.concatenate([polys, np.array(extra, dtype=np.float32).reshape(-1, 8), polys[:1]])
        boxes = [official.poly2obb(p) for p in polys]
        keep = [b is not None for b in boxes]
        gt_boxes = np.array([b for b in boxes if b is not None], dtype=np.float32).reshape(-1, 5)
        gt_labels = rng.integers(0, NUM_CLASSES - 2, len(gt_boxes))  # the last two classes have no gts
        difficult = rng.random(len(gt_boxes)) < 0.2
        rows = []
        if i == 0:  # AITODReval's id quirks: gt 0 and its duplicate tie; det 0 leaves its gt (id 1) free for another
            gt_labels[[0, 1, -1]] = 0
            rows += [[*gt_boxes[1], 0.95, 0], [*gt_boxes[1], 0.94, 0], [*gt_boxes[0], 0.999, 0]]
        for b, lab in zip(gt_boxes, gt_labels):
            if rng.random() < 0.2:  # an exact hit
                rows.append([*b, np.round(rng.random(), 2), lab])
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                jit = b.astype(np.float64) + rng.normal(0, 1, 5) * [
                    0.08 * b[3],
                    0.08 * b[3],
                    0.08 * b[2],
                    0.08 * b[3],
                    0.08,
                ]
                jit[2:4] = np.abs(jit[2:4])
                rows.append(
                    [*jit, np.round(rng.random(), 2), lab if rng.random() < 0.9 else rng.integers(0, NUM_CLASSES)]
                )
        for _ in range(int(rng.integers(0, 15))):  # false positives anywhere, any class
            rows.append(
                [
                    *rng.uniform(0, 300, 2),
                    *np.exp(rng.uniform(0.5, 4, 2)),
                    rng.uniform(-1, 2),
                    np.round(rng.random(), 2),
                    rng.integers(0, NUM_CLASSES),
                ]
            )
        det = np.array(rows, dtype=np.float64).reshape(-1, 7)
        gts.append((gt_boxes, gt_labels, difficult, polys, np.array(keep, dtype=bool)))
        dets.append((det[:, :5].astype(np.float32), det[:, 5].astype(np.float32), det[:, 6].astype(np.int64)))
    return gts, dets


def run_official(official, gts, dets, max_dets: int | None):
    """AITODReval's 12 stats at ``max_dets``; with ``None`` eval_rbbox_map's mAP50 (area) and mAP50_07."""
    annotations = [{"bboxes": b, "labels": lab.astype(np.int64)} for b, lab, *_ in gts]
    results = [
        [np.concatenate([bx[lab == c], sc[lab == c, None]], 1) for c in range(NUM_CLASSES)] for bx, sc, lab in dets
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        if max_dets is None:  # VOC: eval_rbbox_map has no detection cap
            voc = {
                mode: official.eval_rbbox_map(results, annotations, iou_thr=0.5, use_07_metric=mode, nproc=1)[0]
                for mode in (True, False)
            }
            return {"mAP50": float(voc[False]), "mAP50_07": float(voc[True])}
        ev = official.AITODReval(annotations, results, numCats=NUM_CLASSES, nproc=0)
        ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    keys = ["AP", "AP50", "AP75", "AP_vt", "AP_t", "AP_s", "AP_m", "AR", "AR_vt", "AR_t", "AR_s", "AR_m"]
    return dict(zip(keys, map(float, ev.stats)))


def tie_order(scores: list[np.ndarray], labels: list[np.ndarray]) -> str:
    """A digest of the orders numpy's default argsort gives the score arrays ``eval_rbbox_map`` ranks (per class:
    each image's, then all images'). The golden scores tie, and that order depends on numpy (1.x and 2.x differ)
    and can on the CPU; so do the VOC mAPs."""
    h = hashlib.sha1()
    for c in range(NUM_CLASSES):
        per_image = [s[lab == c] for s, lab in zip(scores, labels)]
        for s in [*per_image, np.concatenate(per_image)]:
            h.update(np.argsort(-s).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def add_voc(official, out: Path) -> dict:
    """Run ``eval_rbbox_map`` on the written inputs; record its mAPs under this numpy's ``tie_order``."""
    from safetensors.numpy import load_file

    t, meta = load_file(str(out / "aitodr.safetensors")), json.loads((out / "aitodr.json").read_text())
    n = meta["num_images"]
    gts = [(t[f"gt{i}_boxes"], t[f"gt{i}_labels"]) for i in range(n)]
    dets = [(t[f"det{i}_boxes"], t[f"det{i}_scores"], t[f"det{i}_labels"]) for i in range(n)]
    voc = run_official(official, gts, dets, None)
    order = tie_order([d[1] for d in dets], [d[2] for d in dets])
    meta.setdefault("voc_by_tie_order", {})[order] = {"numpy": np.__version__, **voc}
    (out / "aitodr.json").write_text(json.dumps(meta, indent=1) + "\n")
    return voc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", required=True, help="checkout of Chasel-Tsui/AI-TOD-R")
    p.add_argument("--out", default=str(HERE))
    p.add_argument("--commit", help="the checkout's commit id, when it is not a git work tree")
    p.add_argument("--add-voc", action="store_true", help="only add the VOC mAPs of the written inputs (another numpy)")
    args = p.parse_args()
    root = Path(args.official)
    official = load_official(root)
    if args.add_voc:
        return print(json.dumps(add_voc(official, Path(args.out)), indent=1))
    rng = np.random.default_rng(20)
    # loader: polygons → boxes (None = dropped)
    polys = polygons(rng, 600)
    conv = [official.poly2obb(q) for q in polys]
    poly_keep = np.array([c is not None for c in conv])
    poly_boxes = np.array([c if c is not None else (0, 0, 0, 0, 0) for c in conv], dtype=np.float32)
    gts, dets = scenes(rng, official)
    metrics = {str(m): run_official(official, gts, dets, m) for m in (1500, 7)}
    tensors = {"polys": polys, "poly_boxes": poly_boxes, "poly_keep": poly_keep.astype(np.uint8)}
    for i, ((gb, gl, gd, _, _), (db, ds, dl)) in enumerate(zip(gts, dets)):
        tensors |= {
            f"gt{i}_boxes": gb,
            f"gt{i}_labels": gl.astype(np.int64),
            f"gt{i}_difficult": gd.astype(np.uint8),
            f"det{i}_boxes": db,
            f"det{i}_scores": ds,
            f"det{i}_labels": dl,
        }
    from safetensors.numpy import save_file

    assign = assigner_cases(np.random.default_rng(18), load_assigner(root))
    save_file({k: np.ascontiguousarray(v) for k, v in assign.items()}, str(Path(args.out) / "c2f_assigner.safetensors"))

    out = Path(args.out)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "aitodr.safetensors"))
    commit = (
        args.commit
        or subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    )
    meta = {
        "official": "https://github.com/Chasel-Tsui/AI-TOD-R",
        "commit": commit or "unknown (not a git checkout)",
        "command": "python packages/tinydet/tests/golden/make_golden.py --official <AI-TOD-R checkout> (numpy 2); "
        "the same with --add-voc under numpy 1.24",
        "stand_ins": "mmcv.ops.box_iou_rotated = shapely polygon IoU (float64 -> float32); nothing else replaced",
        "num_images": len(gts),
        "num_classes": NUM_CLASSES,
        "metrics_by_max_dets": metrics,
    }
    (out / "aitodr.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(metrics | {"voc": add_voc(official, out)}, indent=1))


if __name__ == "__main__":
    main()

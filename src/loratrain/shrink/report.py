"""The shrink report as data (for `--json`) and as text lines (the command prints them)."""

from __future__ import annotations

from collections import Counter


def outcome_report(outcome, lora, out_path, out_size: int) -> dict:
    results = outcome.results
    actions = Counter(r.action for r in results)
    lora_rows = [r for r in results if r.action != "copied"]
    params_before = sum(lora.layers[r.name].param_count() for r in lora_rows)
    params_after = 0
    for r in lora_rows:
        for suffix in ("lora_up.weight", "lora_down.weight", "lora_mid.weight"):
            t = outcome.tensors.get(f"{r.name}.{suffix}")
            if t is not None:
                params_after += t.numel()
    return {
        "selection": outcome.selection.text,
        "output": str(out_path),
        "threshold": outcome.threshold,
        "file_size_before": lora.size_bytes,
        "file_size_after": out_size,
        "params_before": params_before,
        "params_after": params_after,
        "layers": len(lora_rows),
        "layers_dropped": actions["dropped"],
        "layers_zero": actions["zero"],
        "layers_kept_whole": actions["kept"] + actions["whole"],
        "layers_resized": actions["resized"],
        "tucker_converted": actions["converted"],
        "tucker_kept_whole": actions["whole"],
        "other_copied": actions["copied"],
        "zero_layers": [r.name for r in results if r.action == "zero"],
        "per_layer": [
            {
                "name": r.name,
                "kind": r.kind,
                "action": r.action,
                "rank_before": r.rank_before,
                "rank_after": r.rank_after,
                "fro_kept": round(r.fro_kept, 6),
                **({"note": r.note} if r.note else {}),
            }
            for r in results
        ],
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def text_lines(report: dict) -> list[str]:
    lines = [f"# {report['selection']} -> {report['output']}"]
    width = max((len(r["name"]) for r in report["per_layer"]), default=10)
    lines.append(f"{'layer':<{width}}  {'kind':<16} {'rank':>9}  {'fro kept':>8}  action")
    for r in report["per_layer"]:
        rank = f"{r['rank_before']}->{r['rank_after']}" if r["action"] != "copied" else "-"
        share = f"{100 * r['fro_kept']:.2f}%" if r["action"] != "copied" else "-"
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(f"{r['name']:<{width}}  {r['kind']:<16} {rank:>9}  {share:>8}  {r['action']}{note}")
    b, a = report["file_size_before"], report["file_size_after"]
    thr = f", threshold {report['threshold']:.4g}" if report["threshold"] is not None else ""
    lines.append(
        f"file {_mib(b)} -> {_mib(a)} ({100 * a / b:.1f}%), params {report['params_before']} -> "
        f"{report['params_after']}{thr}"
    )
    lines.append(
        f"{report['layers']} layers: {report['layers_resized']} resized, {report['layers_kept_whole']} kept whole, "
        f"{report['layers_dropped']} dropped by the selection, {report['layers_zero']} all-zero left out"
        + (f", {report['tucker_converted']} Tucker converted to plain LoCon" if report["tucker_converted"] else "")
        + (f", {report['other_copied']} other LyCORIS layers copied unchanged" if report["other_copied"] else "")
    )
    if report["zero_layers"]:
        lines.append("all-zero layers: " + ", ".join(report["zero_layers"]))
    return lines

"""The sweep's summary: one row per member (test ELBO, log p(x), reconstruction, KL, active
units, I(x;z) bounds, and on data with known factors the five disentanglement metrics'
headline values) in sweep.json and as a markdown table (sweep.md)."""

from __future__ import annotations

import math
import os

from vae_jax.evaluate.disentangle.trained import headline
from vae_jax.files import write_json_atomic, write_text_atomic

COLUMNS = (  # (key, header, format)
    ("test_elbo_nats", "test ELBO", "{:.2f}"),
    ("test_log_likelihood_nats", "log p(x)", "{:.2f}"),
    ("test_log_px_nats", "E log p(x|z)", "{:.2f}"),
    ("test_kl_nats", "KL", "{:.2f}"),
    ("num_active", "active units", "{:d}"),
    ("mi_lower_nats", "I(x;z) ≥", "{:.2f}"),
    ("mi_upper_nats", "I(x;z) ≤", "{:.2f}"),
    # Disentanglement (data sets with known factors; vae_jax/evaluate/disentangle/trained.py)
    ("beta_vae", "BetaVAE", "{:.3f}"),
    ("factor_vae", "FactorVAE", "{:.3f}"),
    ("mig", "MIG", "{:.3f}"),
    ("dci", "DCI dis.", "{:.3f}"),
    ("sap", "SAP", "{:.3f}"),
)


def member_row(member: dict, results: dict | None) -> dict:
    """The member's swept values and headline numbers (None where not measured)."""
    row = {"member": member["name"], **member["values"], "failed": member.get("failed")}
    if results is None:
        return row
    e = results["elbo"]
    row.update(
        num_test_examples=e["num_test_examples"],
        test_elbo_nats=e["test_elbo_nats"],
        test_elbo_stderr=e["test_elbo_stderr"],
        test_log_px_nats=e["test_log_px_nats"],
        test_kl_nats=e["test_kl_nats"],
        kl_estimate=e.get("kl_estimate"),
    )
    if "log_likelihood" in results:
        ll = results["log_likelihood"]
        row["test_log_likelihood_nats"] = ll["log_likelihood_nats"]
        row["num_importance_samples"] = ll["num_importance_samples"]
        row["num_loglik_examples"] = ll["num_examples"]
    if "collapse" in results:
        c = results["collapse"]
        row.update(num_active=c["num_active"], num_dims=c["num_dims"])
        row["kl_per_dim"] = c["kl_per_dim"]
        mi = c.get("mutual_info") or {}
        row.update(mi_lower_nats=mi.get("lower_nats"), mi_upper_nats=mi.get("upper_nats"))
        row["mi_saturated"] = mi.get("saturated")  # the lower bound sits at its log N ceiling
    if "disentanglement" in results:
        d = results["disentanglement"]
        row.update(headline(d))  # beta_vae, factor_vae, mig, dci, sap
        row["disentanglement_protocol"] = d["protocol"]
        row["disentanglement_protocol_name"] = d.get("protocol_name")
    return row


def cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def markdown(rows: list[dict], swept: list[str]) -> str:
    shown = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    header = [f.rsplit(".", 1)[-1] for f in swept] + [h for _, h, _ in shown]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r[f]) for f in swept]
        if r.get("failed"):
            cells += [f"failed: {r['failed']}"] + [""] * max(len(shown) - 1, 0)
        else:
            cells += [row_cell(r, k, fmt) for k, _, fmt in shown]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + " ".join(notes(rows)) + "\n"


def _cell(text: str) -> str:
    """A markdown table cell: a bare | would end it."""
    return text.replace("|", "\\|")


def notes(rows: list[dict]) -> list[str]:
    """What the table's numbers are measured on, as sentences."""
    measured = [r for r in rows if r.get("num_test_examples")]
    if not measured:
        return []
    r = measured[0]
    n = r["num_test_examples"]
    out = [f"Nats per test example; test ELBO (the β = 1 bound) on {n} test images."]
    if r.get("num_importance_samples"):
        out.append(
            f"log p(x): importance sampled, K = {r['num_importance_samples']}, on the first "
            f"{r['num_loglik_examples']} test images."
        )
    estimates = {m["kl_estimate"] for m in measured if m.get("kl_estimate")}
    if len(estimates) > 1:  # e.g. a sweep over priors: some KLs closed form, some sampled
        by = {}
        for m in measured:
            by.setdefault(m.get("kl_estimate"), []).append(m["member"])
        out.append(
            "KL: " + "; ".join(f"{how} for {', '.join(names)}" for how, names in by.items()) + "."
        )
    names = protocol_names(measured)
    if names:
        out.append(
            "BetaVAE, FactorVAE, MIG, DCI disentanglement and SAP of μ(x): "
            + "; ".join(names)
            + " (sizes in sweep.json)."
        )
    if any(m.get("mi_saturated") for m in rows):
        out.append(
            "\\* saturated: the I(x;z) lower bound is at its ceiling log N (N test images), "
            "so I(x;z) may be larger."
        )
    return out


def protocol_names(rows: list[dict]) -> list[str]:
    """The disentanglement protocols the measured rows used (sorted; [] where none)."""
    return sorted(
        {str(r.get("disentanglement_protocol_name")) for r in rows if r.get("mig") is not None}
    )


def row_cell(row: dict, key: str, fmt: str) -> str:
    """A table cell; a saturated I(x;z) lower bound gets a '*'."""
    text = cell(row.get(key), fmt)
    return text + "*" if key == "mi_lower_nats" and row.get("mi_saturated") else text


def write(root: str, rows: list[dict], swept: list[str], extra: dict) -> list[str]:
    """sweep.json and sweep.md in `root`; returns the paths."""
    json_path, md_path = os.path.join(root, "sweep.json"), os.path.join(root, "sweep.md")
    write_json_atomic(json_path, {"swept": swept, **extra, "members": rows})
    write_text_atomic(md_path, markdown(rows, swept))
    return [json_path, md_path]

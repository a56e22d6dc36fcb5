"""report.html: one self-contained page per run, to paste into a lab notebook.

Top: a headline card (what was trained; the test ELBO and log p(x) with ± and units,
bits/dim, active units, I(x; z) with its bounds, sample quality) and the collapse verdict.
Then per-dimension bar charts (inline SVG), the figures with captions saying what was
encoded, and, folded away, every number with a readable label, the config and the raw
eval.json. Figures are embedded as base64 PNG, so the file stands alone.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os

from vae_jax.files import write_text_atomic

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1180px;
color:#1f2328;padding:0 1em;line-height:1.4}
h1{font-size:1.45em;margin:.2em 0}h2{font-size:1.15em;border-bottom:1px solid #d0d7de;
padding-bottom:.2em;margin-top:1.6em}.sub{color:#59636e;margin:0 0 1em}
.card{display:grid;grid-template-columns:repeat(auto-fill,minmax(215px,1fr));gap:.6em;margin:.6em 0}
.stat{border:1px solid #d0d7de;border-radius:6px;padding:.5em .7em;background:#f6f8fa}
.stat .k{font-size:.8em;color:#59636e;text-transform:uppercase;letter-spacing:.03em}
.stat .v{font-size:1.25em;font-weight:600;margin:.1em 0}.stat .n{font-size:.82em;color:#59636e}
.verdict{font-size:1.02em;padding:.6em .8em;border-radius:6px;background:#dafbe1;
border:1px solid #aceebb}.bad{background:#fff1e5;border-color:#ffd8b5}
.warn{background:#ffebe9;border:1px solid #ffcecb;padding:.5em .8em;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.chart figcaption{max-width:540px}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #d0d7de;
padding:.25em .6em;text-align:left;font-size:.9em;vertical-align:top}th{background:#f6f8fa;
font-weight:500}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figcaption{font-size:.9em;color:#3d444d;max-width:1000px}
img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.82em}
"""

# key -> (readable label, unit). Keys not listed are shown as they are.
LABELS = {
    "test_elbo_nats": ("Test ELBO", "nats/example"),
    "test_elbo_stderr": ("Test ELBO, standard error over examples", "nats"),
    "test_log_px_nats": ("Reconstruction term E_q[log p(x|z)]", "nats/example"),
    "test_kl_nats": ("KL(q(z|x) ‖ p(z))", "nats/example"),
    "kl_estimate": ("How the KL is computed", ""),
    "test_bits_per_dim": ("Bits per dimension (−ELBO / D ln 2)", "bits"),
    "num_test_examples": ("Test examples", ""),
    "elbo_samples": ("Samples of z per example (L)", ""),
    "objective": ("Objective", ""),
    "beta": ("β (KL weight in training)", ""),
    "likelihood": ("Likelihood", ""),
    "normalized_likelihood": ("Normalised likelihood", ""),
    "data": ("Data set", ""),
    "binarization": ("Binarization", ""),
    "data_description": ("Data", ""),
    "bits_per_dim_note": ("Bits/dim definition", ""),
    "likelihood_note": ("Warning", ""),
    "note": ("Note", ""),
    "log_likelihood_nats": ("Importance-sampled log p(x)", "nats/example"),
    "log_likelihood_stderr": ("log p(x), standard error over examples", "nats"),
    "nll_nats": ("Negative log-likelihood", "nats/example"),
    "bits_per_dim": ("Bits per dimension (−log p(x) / D ln 2)", "bits"),
    "num_examples": ("Examples", ""),
    "num_importance_samples": ("Importance samples K", ""),
    "elbo_same_examples_nats": ("ELBO on the same examples", "nats/example"),
    "verdict": ("Verdict", ""),
    "num_dims": ("Latent dimensions", ""),
    "num_active": ("Active units", ""),
    "collapsed_dims": ("Inactive dimensions", ""),
    "low_kl_dims": ("Dimensions with KL below threshold", ""),
    "dims_by_kl": ("Dimensions by KL (largest first)", ""),
    "total_kl": ("Sum of per-dimension KL to N(0, I)", "nats"),
    "kl_threshold": ("KL threshold", "nats"),
    "mi_threshold": ("I(x;z) ≈ 0 threshold", "nats"),
    "activity_threshold": ("Activity threshold on Cov_x(μ_d)", ""),
    "activity_relative_to": ("Cov_x(μ_d) measured in units of", ""),
    "lower_nats": ("I(x;z) lower bound (InfoNCE, ≤ log N)", "nats"),
    "lower_stderr_nats": ("lower bound, standard error", "nats"),
    "upper_loo_nats": ("I(x;z) upper bound (leave-one-out)", "nats"),
    "upper_loo_stderr_nats": ("leave-one-out bound, standard error", "nats"),
    "mean_kl_nats": ("Mean KL to the prior (upper bound on I(x;z))", "nats"),
    "upper_nats": ("I(x;z) upper bound used", "nats"),
    "log_n": ("log N (ceiling of the lower bound)", "nats"),
    "saturated": ("Lower bound saturated at log N", ""),
    "summary": ("Reading", ""),
    "fd_samples": ("Fréchet distance, samples vs test", ""),
    "fd_reconstructions": ("Fréchet distance, reconstructions vs test", ""),
    "fd_reference_test_vs_val": ("Fréchet distance, validation vs test (floor)", ""),
    "num_samples": ("Generated samples", ""),
    "num_reference_examples": ("Validation images in the floor", ""),
    "num_reference_pool": ("Validation images available", ""),
    "feature_dim": ("Feature dimensions", ""),
    "decoder_output": ("Decoder output compared", ""),
    "classifier_test_accuracy": ("Feature classifier's test accuracy", ""),
    "final_val_elbo_nats": ("Validation ELBO at the last step", "nats/example"),
    "final_step": ("Last step", ""),
    "best_val_elbo_nats": ("Best validation ELBO", "nats/example"),
    "best_step": ("Step of the best validation ELBO", ""),
    "num_val_examples": ("Validation examples", ""),
    "skipped": ("Skipped", ""),
    "likelihood_kind": ("What log p(x|z) is", ""),
    "bounds_crossed": ("I(x;z) bounds cross (Monte Carlo noise)", ""),
    "mutual_info": ("I(x;z) bounds", ""),
    "layer": ("Latent layer measured", ""),
    "small_sample_note": ("Warning", ""),
}

# Sections whose numbers mean something else: the autoencoder's "ELBO" is log p(x|z=μ(x)).
SECTION_LABELS = {
    "autoencoder_baseline": {
        "test_elbo_nats": ("log p(x | z = μ(x)) (not a bound)", "nats/example"),
        "test_elbo_stderr": ("log p(x | z = μ(x)), standard error over examples", "nats"),
    },
}
SECTION_HIDDEN = {
    "autoencoder_baseline": (
        "test_log_px_nats",
        "test_kl_nats",
        "test_bits_per_dim",
        "elbo_samples",
    ),
}

SECTIONS = {
    "elbo": "Test-set ELBO",
    "log_likelihood": "Importance-sampled log-likelihood",
    "validation": "Validation ELBO during training",
    "collapse": "Posterior collapse",
    "sample_quality": "Sample quality (Fréchet distance, small CNN features; not Inception FID)",
    "autoencoder_baseline": "Plain autoencoder baseline",
}


def _esc(v) -> str:
    return html.escape(str(v))


def _num(v, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _esc(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 10 ** (-digits) or abs(v) >= 1e6):
        return f"{v:.3g}"
    return f"{v:,.{digits}f}"


def _value_cell(key: str, v, labels=LABELS) -> str:
    unit = labels.get(key, ("", ""))[1]
    if isinstance(v, list):
        shown = ", ".join(_num(x, 3) if isinstance(x, float) else _esc(x) for x in v[:24])
        more = f" … ({len(v)} in all)" if len(v) > 24 else ""
        return f"<td>{shown or '—'}{more}</td>"
    if isinstance(v, dict):
        return f"<td>{_table(v)}</td>"
    cls = " class='num'" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
    text = _num(v, 4) if isinstance(v, float) else _esc(v) if not isinstance(v, bool) else str(v)
    return f"<td{cls}>{text}{(' ' + _esc(unit)) if unit and v is not None else ''}</td>"


def _table(values: dict, section: str | None = None) -> str:
    labels = {**LABELS, **SECTION_LABELS.get(section, {})}
    hidden = SECTION_HIDDEN.get(section, ())
    rows = []
    for k, v in values.items():
        if k in hidden:
            continue
        label = labels.get(k, (k, ""))[0]
        rows.append(f"<tr><th>{_esc(label)}</th>{_value_cell(k, v, labels)}</tr>")
    return f"<table>{''.join(rows)}</table>"


def _stat(name: str, value: str, note: str = "") -> str:
    return (
        f"<div class='stat'><div class='k'>{_esc(name)}</div><div class='v'>{value}</div>"
        f"<div class='n'>{note}</div></div>"
    )


def _headline(results: dict) -> str:
    run, e = results["run"], results["elbo"]
    cards = []
    unnorm = not e.get("normalized_likelihood", True)
    tag = " <span title='not a log-likelihood'>⚠</span>" if unnorm else ""
    bpd = e.get("test_bits_per_dim")
    cards.append(
        _stat(
            "Test ELBO" + (" (not a bound on log p(x))" if unnorm else ""),
            f"{_num(e['test_elbo_nats'])} ± {_num(e['test_elbo_stderr'])}{tag}",
            f"nats/example over {e['num_test_examples']:,} test images"
            + (f"; {bpd:.4f} bits/dim" if bpd is not None else ""),
        )
    )
    ll = results.get("log_likelihood")
    if ll:
        cards.append(
            _stat(
                "log p(x), importance sampled",
                f"{_num(ll['log_likelihood_nats'])} ± {_num(ll['log_likelihood_stderr'])}{tag}",
                f"nats/example; K = {ll['num_importance_samples']:,}, {ll['num_examples']:,} "
                f"images (ELBO on them {_num(ll['elbo_same_examples_nats'])})",
            )
        )
    cards.append(
        _stat(
            "Reconstruction / KL",
            f"{_num(e['test_log_px_nats'])} / {_num(e['test_kl_nats'])}",
            "E_q[log p(x|z)] and KL(q(z|x) ‖ p(z)), nats/example",
        )
    )
    v = results.get("validation")
    if v:
        cards.append(
            _stat(
                "Validation ELBO",
                _num(v["final_val_elbo_nats"]),
                f"at step {v['final_step']:,}; best {_num(v['best_val_elbo_nats'])} at step "
                f"{v['best_step']:,} ({v['num_val_examples']:,} images)",
            )
        )
    c = results.get("collapse")
    if c:
        cards.append(
            _stat(
                "Active units",
                f"{c['num_active']} of {c['num_dims']}",
                f"Cov_x(μ_d) > {c['activity_threshold']:g} (Burda et al. 2015)",
            )
        )
        mi = c.get("mutual_info")
        if mi:
            if mi["saturated"]:
                value = f"≥ {_num(mi['lower_nats'])}"
            elif mi.get("bounds_crossed"):
                value = f"≈ {_num(mi['lower_nats'])}"
            else:
                value = f"{_num(mi['lower_nats'])} … {_num(mi['upper_nats'])}"
            note = (
                f"nats; saturated: the lower bound sits at its ceiling log N = "
                f"{_num(mi['log_n'])}; upper bound {_num(mi['upper_nats'])}"
                if mi["saturated"]
                else f"nats; lower (InfoNCE) and upper bounds, N = {mi['num_examples']:,}"
            )
            cards.append(_stat("I(x; z)", value, note))
    sq = results.get("sample_quality", {})
    if "fd_samples" in sq:
        floor = sq.get("fd_reference_test_vs_val")
        cards.append(
            _stat(
                "Fréchet distance (small CNN)",
                f"{_num(sq['fd_samples'])} / {_num(sq['fd_reconstructions'])}",
                "samples / reconstructions vs test"
                + (f"; real-vs-real floor {_num(floor)}" if floor is not None else "")
                + "; not Inception FID",
            )
        )
    ae = results.get("autoencoder_baseline")
    if ae:
        cards.append(
            _stat(
                "Autoencoder baseline",
                _num(ae["test_elbo_nats"]),
                "log p(x | z = μ(x)), nats/example; not a bound",
            )
        )
    described = (
        f"{_esc(run['data'])} ({_esc(run['data_description'])}); {_esc(run['net'])} net, "
        f"{run['latent_dim']}-d latent, {_esc(run['likelihood'])} likelihood, "
        f"{_esc(run['prior'])} prior, {_esc(run['objective'])} objective, β = {run['beta']:g}; "
        f"{run['steps']:,} steps of batch {run['batch_size']}, seed {run['seed']}."
    )
    p = run.get("platform")
    if p:
        described += (
            f" Evaluated on {_esc(p['backend'])} ({p['device_count']} × {_esc(p['device_kind'])}), "
            f"jax {_esc(p['jax'])}, flax {_esc(p['flax'])}."
        )
    return f"<p class='sub'>{described}</p><div class='card'>{''.join(cards)}</div>"


def bar_chart_svg(
    values,
    *,
    title: str,
    unit: str,
    highlight=None,
    threshold: float | None = None,
    log: bool = False,
    width: int = 540,
    height: int = 190,
) -> str:
    """A small inline SVG bar chart of one value per latent dimension. `highlight` [D] bools
    colour bars (True: blue, False: grey); `threshold` draws a dashed line; `log` uses a
    log10 axis (values ≤ 0 are drawn at the axis floor)."""
    vals = [float(v) for v in values]
    n = len(vals)
    left, bottom, top = 46, 26, 22
    plot_w, plot_h = width - left - 8, height - bottom - top
    if log:
        floor = min([v for v in vals if v > 0] + ([threshold] if threshold else []) or [1e-6])
        lo = math.floor(math.log10(floor)) if floor > 0 else -6
        hi = math.ceil(math.log10(max(vals + [threshold or 0, 10 ** (lo + 1)])))
        scale = lambda v: (math.log10(v) - lo) / max(hi - lo, 1) if v > 0 else 0.0
        ticks = [(10.0**e, f"1e{e}") for e in range(lo, hi + 1)]
    else:
        hi = max(vals + [threshold or 0, 1e-12])
        scale = lambda v: max(v, 0.0) / hi
        ticks = [(hi * f, _num(hi * f)) for f in (0, 0.5, 1)]
    bar_w = plot_w / max(n, 1)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{_esc(title)}' style='font:11px system-ui,sans-serif'>",
        f"<text x='{left}' y='14' font-weight='600'>{_esc(title)} ({_esc(unit)})</text>",
    ]
    for value, label in ticks:
        y = top + plot_h * (1 - scale(value))
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e7eb'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end' fill='#59636e'>{label}</text>"
        )
    for i, v in enumerate(vals):
        h = plot_h * scale(v)
        on = True if highlight is None else bool(highlight[i])
        colour = "#0969da" if on else "#b6bcc3"
        x = left + i * bar_w + 1
        parts.append(
            f"<rect x='{x:.1f}' y='{top + plot_h - h:.1f}' width='{max(bar_w - 2, 1):.1f}' "
            f"height='{h:.1f}' fill='{colour}'><title>z{i}: {_num(v, 4)} {_esc(unit)}</title>"
            "</rect>"
        )
        if n <= 40 or i % 5 == 0:
            parts.append(
                f"<text x='{x + bar_w / 2 - 1:.1f}' y='{height - 10}' text-anchor='middle' "
                f"fill='#59636e'>{i}</text>"
            )
    if threshold:
        y = top + plot_h * (1 - scale(threshold))
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='#cf222e' stroke-dasharray='4 3'><title>threshold {threshold:g}</title></line>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _per_dimension(c: dict) -> str:
    active = [d not in c["collapsed_dims"] for d in range(c["num_dims"])]
    kl = bar_chart_svg(c["kl_per_dim"], title="KL per dimension", unit="nats", highlight=active)
    au = bar_chart_svg(
        c["au_variances"],
        title="Activity Cov_x(μ_d)",
        unit="log scale",
        highlight=active,
        threshold=c["activity_threshold"],
        log=True,
    )
    inactive = c["collapsed_dims"]
    line = (
        f"{len(inactive)} inactive dimensions (grey): {', '.join(map(str, inactive))}."
        if inactive
        else "Every dimension is active."
    )
    return (
        "<h2>Latent dimensions</h2><div class='charts'>"
        f"<figure class='chart'>{kl}<figcaption>Average KL of each dimension to N(0, 1) over "
        "the test set. Blue: active, grey: inactive.</figcaption></figure>"
        f"<figure class='chart'>{au}<figcaption>Variance over test inputs of each posterior "
        f"mean; the dashed line is the activity threshold {c['activity_threshold']:g}."
        f"</figcaption></figure></div><p>{_esc(line)}</p>"
    )


def _disentanglement(d: dict) -> str:
    """The five metrics (every value each returns) and the protocol they followed."""
    rows = []
    for name in ("beta_vae", "factor_vae", "mig", "dci", "sap"):
        values = d.get(name, {})
        cells = ", ".join(f"{_esc(k)} {_num(v, 3)}" for k, v in values.items())
        sizes = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in d["protocol"].get(name, {}).items())
        rows.append(f"<tr><th>{_esc(name)}</th><td>{cells}</td><td>{sizes}</td></tr>")
    captured = ", ".join(
        f"z{f['dim']}: {_esc(f['factor'])} ({f['normalized_mi']:.2f})"
        for f in d.get("latent_factors", [])
    )
    return (
        f"<h2>Disentanglement</h2><p>{_esc(d.get('representation', ''))}; "
        f"{_esc(d.get('protocol_name', ''))}, seed {_esc(d.get('seed'))}.</p>"
        f"<table><tr><th>metric</th><th>values</th><th>protocol</th></tr>{''.join(rows)}</table>"
        f"<p>Factor each dimension shares most information with (I/H): {captured}</p>"
    )


def figure_html(path: str, caption: str) -> str:
    """A PNG embedded in the page (base64) with its caption."""
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    name = html.escape(os.path.basename(path))
    return (
        f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{name}</b>. {html.escape(caption)}</figcaption></figure>"
    )


def render(results: dict, figures: list[tuple[str, str]], config_json: str) -> str:
    """The report page as a string."""
    run = results["run"]
    title = f"vae_jax run: {run['data']}, {run['net']}, {run['likelihood']}, β = {run['beta']:g}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
    ]
    note = results["elbo"].get("likelihood_note")
    if note:
        parts.append(f"<p class='warn'>⚠ {_esc(note)}</p>")
    c = results.get("collapse")
    if c:
        cls = "verdict bad" if c["num_active"] < c["num_dims"] else "verdict"
        parts.append(f"<p class='{cls}'>{_esc(c['verdict'])}</p>")
    parts.append(_headline(results))
    history = results.get("config_history")
    if history:
        rows = "".join(
            f"<tr><td class='num'>{h['step']:,}</td><td>"
            + "; ".join(
                f"{_esc(k)}: {_esc(v['saved'])} → {_esc(v['new'])}" for k, v in h["changes"].items()
            )
            + (f" ({_esc(h['note'])})" if h.get("note") else "")
            + "</td></tr>"
            for h in history
        )
        parts.append(
            "<p class='warn'>The config was changed while this run trained "
            "(train.allow_resume_changes):</p><table><tr><th>from step</th><th>changes "
            f"(saved → new)</th></tr>{rows}</table>"
        )
    if c:
        parts.append(_per_dimension(c))
    if results.get("disentanglement"):
        parts.append(_disentanglement(results["disentanglement"]))
    parts.append("<h2>Figures</h2>")
    parts += [figure_html(p, cap) for p, cap in figures if os.path.exists(p)]
    parts.append("<h2>Details</h2>")
    for key, name in SECTIONS.items():
        values = results.get(key)
        if values:
            shown = {k: v for k, v in values.items() if k not in ("kl_per_dim", "au_variances")}
            table = _table(shown, key)
            parts.append(f"<details><summary>{_esc(name)}</summary>{table}</details>")
    parts.append(f"<details><summary>Config</summary><pre>{_esc(config_json)}</pre></details>")
    raw = json.dumps(results, indent=2)
    parts.append(f"<details><summary>Raw eval.json</summary><pre>{_esc(raw)}</pre></details>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(path: str, results: dict, figures: list[tuple[str, str]], config) -> str:
    """Write report.html for `results` (eval.json's dict), `figures` [(png path, caption)]
    and the run's config. Returns `path`."""
    write_text_atomic(path, render(results, figures, config.to_json(indent=2)))
    return path

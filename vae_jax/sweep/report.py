"""sweep_report.html: the sweep's table, its rate–distortion plane and KL heat map, and a
link to each member's own report.html. One self-contained page (figures embedded)."""

from __future__ import annotations

import html
import os

from vae_jax.files import write_text_atomic
from vae_jax.report import STYLE, figure_html
from vae_jax.sweep.summary import COLUMNS, notes, row_cell


def render(rows: list[dict], swept: list[str], figures: list[tuple[str, str]]) -> str:
    shown = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    head = [f.rsplit(".", 1)[-1] for f in swept] + [h for _, h, _ in shown] + ["report"]
    body = []
    for r in rows:
        cells = [html.escape(str(r[f])) for f in swept]
        if r.get("failed"):
            cells += [f"<td colspan='{len(shown)}'>failed: {html.escape(r['failed'])}</td>"]
            cells = [f"<td>{c}</td>" for c in cells[:-1]] + cells[-1:]
        else:
            cells = [f"<td>{c}</td>" for c in cells]
            cells += [f"<td>{html.escape(row_cell(r, k, fmt))}</td>" for k, _, fmt in shown]
        link = f"{r['member']}/report.html"
        cells.append(f"<td><a href='{html.escape(link)}'>{html.escape(r['member'])}</a></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = "vae_jax sweep over " + ", ".join(swept)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(' '.join(notes(rows)).replace(chr(92), ''))} Active units and "
        "the I(x;z) bounds come from each member's collapse diagnostics.</p>"
        "<table><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join(body)
        + "</table>"
        + "".join(figure_html(p, cap) for p, cap in figures if os.path.exists(p))
        + "</body></html>"
    )


def write_report(path: str, rows, swept, figures) -> str:
    write_text_atomic(path, render(rows, swept, figures))
    return path

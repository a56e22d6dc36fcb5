"""report.html: one self-contained page per run (figures embedded as base64 PNG).

It holds the collapse verdict first, then the numbers, the figures, and the config, so
that someone opening it knows how the run went without reading the logs.
"""

from __future__ import annotations

import base64
import html
import json
import os

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;font-size:.92em}th{background:#f4f4f4}.verdict{font-size:1.1em;padding:.6em;
border-radius:4px;background:#eef6ee}.bad{background:#fbeaea}figure{margin:1em 0}
figcaption{font-size:.9em;color:#555}img{max-width:100%;image-rendering:pixelated}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}.note{color:#666;font-size:.9em}
"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")
    if isinstance(v, list) and len(v) > 12:
        return html.escape(json.dumps(v[:12])[:-1] + ", …]")
    return html.escape(json.dumps(v) if isinstance(v, (list, dict)) else str(v))


def _table(title: str, values: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in values.items()
    )
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def _figure(path: str, caption: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    name = html.escape(os.path.basename(path))
    return (
        f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{name}</b>: {html.escape(caption)}</figcaption></figure>"
    )


def write_report(
    path: str,
    *,
    title: str,
    verdict: str,
    collapsed: bool,
    sections: dict[str, dict],
    figures: list[tuple[str, str]],
    config_json: str,
    notes: list[str] = (),
) -> str:
    """Write the report. sections: title -> {metric: value}; figures: (png path, caption)."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p class='verdict{' bad' if collapsed else ''}'>{html.escape(verdict)}</p>",
    ]
    parts += [_table(name, values) for name, values in sections.items() if values]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts.append("<h2>Figures</h2>")
    parts += [_figure(p, c) for p, c in figures if os.path.exists(p)]
    parts.append(f"<h2>Config</h2><pre>{html.escape(config_json)}</pre></body></html>")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(parts))
    os.replace(tmp, path)
    return path

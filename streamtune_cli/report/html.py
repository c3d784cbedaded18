"""Self-contained HTML building blocks: inline CSS, escaped text, tables, and matplotlib figures as data URIs.

Reports built from these open offline: no scripts, no stylesheets or images fetched from anywhere, and a
Content-Security-Policy in the page itself tells the browser to refuse any other load, so a mistake (or a
hostile name in a spec) can never make a report fetch something.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any, Sequence

__all__ = ["esc", "html_table", "html_page", "html_banner", "figure_data_uri", "img_tag", "new_figure", "CONTENT_SECURITY_POLICY", "BANNER_STATUSES"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .8em; overflow-x: auto; font-size: .85em; }
.meta td:first-child { font-weight: 600; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: .9em; }
img { max-width: 100%; }
.ok { color: #1a7f37; } .bad { color: #cf222e; }
.banner { margin: 1em 0 1.4em; padding: .8em 1.1em; border-radius: 6px; border: 2px solid; font-size: 1.05em; }
.banner strong.status { display: inline-block; margin-right: .6em; padding: .1em .55em; border-radius: 4px;
       color: #fff; letter-spacing: .04em; }
.banner ul { margin: .4em 0 0; padding-left: 1.4em; }
.banner.failed { background: #ffebe9; border-color: #cf222e; color: #82071e; }
.banner.failed strong.status { background: #cf222e; }
.banner.warning { background: #fff8c5; border-color: #bf8700; color: #4d2d00; }
.banner.warning strong.status { background: #9a6700; }
.banner.ok { background: #dafbe1; border-color: #1a7f37; color: #044f1e; }
.banner.ok strong.status { background: #1a7f37; }
.banner.info { background: #ddf4ff; border-color: #0969da; color: #0a3069; }
.banner.info strong.status { background: #0969da; }
footer { margin-top: 2.5em; color: #666; font-size: .8em; border-top: 1px solid #eee; padding-top: .5em; }
"""

# Inline styles and embedded PNGs only: anything else the page might try to load is refused by the browser.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"

# Banner status -> the word shown in its badge.
BANNER_STATUSES = {"failed": "FAILED", "warning": "WARNING", "ok": "OK", "info": "NOTE"}


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context (quotes included)."""
    return escape("" if value is None else str(value), quote=True)


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[bool] | None = None, css_class: str = ""
) -> str:
    """A table of escaped cells; `numeric` columns are right-aligned."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    cls = f' class="{esc(css_class)}"' if css_class else ""
    parts = [f"<table{cls}>", "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>", "<tbody>"]
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if flag else f"<td>{esc(c)}</td>" for c, flag in zip(row, numeric)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def html_page(title: str, body: Sequence[str]) -> str:
    """A complete document; `body` parts are trusted HTML fragments (built with esc/html_table/img_tag)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def html_banner(status: str, headline: str, details: Sequence[str] = ()) -> str:
    """The outcome at the top of a page: a coloured box with a status badge, so a failure cannot pass for a
    success at a glance; `id="outcome"` and `data-outcome` let tools (and tests) read it from the DOM."""
    if status not in BANNER_STATUSES:
        raise ValueError(f"banner status must be one of {', '.join(BANNER_STATUSES)}, got {status!r}")
    items = "".join(f"<li>{esc(line)}</li>" for line in details)
    listing = f"<ul>{items}</ul>" if items else ""
    role = "alert" if status == "failed" else "status"
    return (
        f'<div id="outcome" class="banner {status}" role="{role}" data-outcome="{status}">'
        f'<strong class="status">{BANNER_STATUSES[status]}</strong>{esc(headline)}{listing}</div>'
    )


def new_figure(width_in: float = 8.0, height_in: float = 3.6):  # noqa: ANN201 - matplotlib types stay lazy
    """A figure on the Agg canvas, created without pyplot so no GUI backend or global state is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_data_uri(fig) -> str:  # noqa: ANN001
    """PNG bytes of a figure as a data: URI, so the image travels inside the HTML file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def img_tag(data_uri: str, alt: str, caption: str = "") -> str:
    if not data_uri.startswith("data:image/png;base64,"):
        raise ValueError("only embedded PNG data URIs keep a report self-contained")
    figcaption = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri}" alt="{esc(alt)}">{figcaption}</figure>'

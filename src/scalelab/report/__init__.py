"""What a stored study shows people: the per-level summary table (``_summary``), one answer
sentence per level (``_answers``), the figures (``_figures``), the self-contained HTML report
(``_html``), a cross-validated study's table and report (``_cv``, ``_cv_html``) and the
store's listings (``_listing``). Everything here reads the store; nothing trains, and
nothing imports torch."""

from .._lazy import lazy_exports

# loaded on first use: `scalelab ls` reads the listing without the answers' scipy
_EXPORTS = {"Answer": "_answers", "answer_views": "_answers", "answers": "_answers", "Figure": "_figures",
            "figures": "_figures", "write_report": "_html", "summarize": "_summary"}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

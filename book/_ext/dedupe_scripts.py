"""Drop repeated inline <script> blocks from every page.

With Jupyter Book 1.0.4 on Sphinx 7.4, sphinx-thebe's inline configuration script (which
declares ``const THEBE_JS_URL``) is emitted twice per page, and the second declaration is a
JavaScript SyntaxError in every reader's console. Removing exact duplicates, before the page is
written, is the narrowest fix: nothing else about the scripts changes.
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # Inline scripts come once with filename None and once with "": treat both as inline.
        filename = getattr(script, "filename", str(script)) or ""
        key = (filename, tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

#!/usr/bin/env python3
"""Lints and renders the Helm charts under deploy/helm offline (helm-python-sdk embeds
Helm; no cluster, no helm binary) and prints every rendered manifest as JSON:

    {"<chart>/<values>": [<object>, ...], ...}

<values> is "default" or the name of a file in the chart's ci/ directory (rendered
with those values on top of the defaults). Exits 1 with the findings on stderr when a
chart has a lint warning or error, or fails to render.

Run with the venv of scripts/setup-test-deps.sh: .venv/bin/python scripts/check-charts.py
"""

import json
import pathlib
import sys

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHARTS = ROOT / "deploy" / "helm"
RELEASE = "kar"
NAMESPACE = "kar-system"
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def value_sets(chart_dir):
    yield "default", {}
    for path in sorted((chart_dir / "ci").glob("*.yaml")):
        yield path.stem, helm.values_from_yaml(path.read_text())


def main():
    failed = False
    rendered = {}
    for chart_dir in sorted(p for p in CHARTS.iterdir() if (p / "Chart.yaml").is_file()):
        chart = helm.Chart.load(chart_dir)
        for name, values in value_sets(chart_dir):
            report = helm.lint(chart_dir, values, strict=True, namespace=NAMESPACE)
            findings = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
            for message in findings + [{"severity": 3, "error": e} for e in report.get("errors") or []]:
                failed = True
                print(f"{chart_dir.name} ({name}): {SEVERITY.get(message.get('severity'), '?')} "
                      f"{message.get('path', '')} {message.get('error')}", file=sys.stderr)
            try:
                manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            except helm.HelmError as e:
                failed = True
                print(f"{chart_dir.name} ({name}): render failed: {e}", file=sys.stderr)
                continue
            objects = []
            for path in sorted(manifests):
                if not path.endswith((".yaml", ".yml")):
                    continue
                for doc in yaml.safe_load_all(manifests[path]):
                    if doc:
                        objects.append({"template": path, "object": doc})
            rendered[f"{chart_dir.name}/{name}"] = objects
    json.dump(rendered, sys.stdout, indent=1, sort_keys=True)
    print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Render the example suite's Allure results with the real Allure command line (Allure 3, a Node
# CLI from the npm registry, installed locally into .tools/) and check that the report holds the
# smoke tests, their attachments and steps, the verification re-run and the rollback result.
# Exits non-zero if installing, running, rendering or any check fails.
#
#   tools/render_allure.sh [OUT_DIR]      (default: build/allure-example)
set -euo pipefail
cd "$(dirname "$0")/.."

ALLURE_VERSION="3.18.0"
ALLURE=".tools/node_modules/.bin/allure"
OUT="${1:-build/allure-example}"
PYTHON="${PYTHON:-.venv/bin/python}"

if [[ ! -x "$ALLURE" ]] || ! "$ALLURE" --version 2>/dev/null | grep -qF "$ALLURE_VERSION"; then
    echo "render_allure: installing allure@$ALLURE_VERSION into .tools/" >&2
    npm install --prefix .tools --no-audit --no-fund --silent "allure@$ALLURE_VERSION" >&2
fi

rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# The example's candidate v4 is a regression: the gate fails, rolls back to v3 and verifies it.
# Exit code 1 is that expected outcome; anything else means the example did not behave.
set +e
"$PYTHON" -m pytest example_suites/invoice_parser -p no:cacheprovider -q \
    --scriptum-version=4 --scriptum-incident=INC-EXAMPLE \
    --junitxml="$OUT/junit.xml" --alluredir="$OUT/allure-results" --clean-alluredir \
    --scriptum-evidence="$OUT/scriptum.json" > "$OUT/pytest.log" 2>&1
code=$?
set -e
if [[ $code -ne 1 ]]; then
    echo "render_allure: the example suite exited $code, expected 1 (gate failed, rollback verified)" >&2
    tail -n 40 "$OUT/pytest.log" >&2
    exit 1
fi

"$ALLURE" generate "$OUT/allure-results" --output "$OUT/allure-report" \
    --report-name "pytest-scriptum example: invoice-parser v4" > "$OUT/allure-generate.log" 2>&1 || {
    echo "render_allure: allure generate failed" >&2
    cat "$OUT/allure-generate.log" >&2
    exit 1
}

"$PYTHON" tools/check_allure_report.py "$OUT/allure-report"
echo "render_allure: report in $OUT/allure-report/index.html"

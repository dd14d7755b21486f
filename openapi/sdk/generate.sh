#!/usr/bin/env bash
# Generates the client SDKs from openapi/openapi.json into openapi/sdk/out/ (not committed):
#   - Python: openapi-python-client (pinned below) → out/python/despacio_client
#   - TypeScript: openapi-typescript types (package.json, pinned) → out/typescript/schema.d.ts,
#     used with openapi-fetch
# Tools come from PyPI and npm (a virtualenv under ~/.cache/despacio, node_modules here).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON_CLIENT_VERSION=0.29.1
venv="${SDK_VENV:-$HOME/.cache/despacio/sdk-venv}"
if ! "$venv/bin/openapi-python-client" --version 2>/dev/null \
  | grep -qxF "openapi-python-client version: $PYTHON_CLIENT_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "openapi-python-client==$PYTHON_CLIENT_VERSION"
fi
if [ ! -x node_modules/.bin/openapi-typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
fi
rm -rf out
mkdir -p out/python out/typescript
# The only warnings expected are the WebP variant answers (binary bodies: the generated
# functions return the raw response).
"$venv/bin/openapi-python-client" generate --path ../openapi.json --config python-client.yaml \
  --output-path out/python/despacio_client --meta none >out/python/generate.log 2>&1 || {
  cat out/python/generate.log >&2
  exit 1
}
unexpected=$(grep '^WARNING' out/python/generate.log | grep -v 'GET /v1/photos/{id}/{variant}' || true)
if [ -n "$unexpected" ]; then
  echo "openapi-python-client could not map part of the spec:" >&2
  cat out/python/generate.log >&2
  exit 1
fi
npx --no-install openapi-typescript ../openapi.json -o out/typescript/schema.d.ts >/dev/null
echo "sdk: generated out/python/despacio_client and out/typescript/schema.d.ts"

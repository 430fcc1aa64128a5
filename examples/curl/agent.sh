#!/bin/sh
# A FortiGate / FortiManager agent in POSIX sh and curl, classifying failures into the agent error
# families: 202000 connection, 202001 authentication, 202002 authorization, 202003 TLS certificate,
# 202004 timed out; "ok" when every call worked. Its settings come from MOCKFGT_* variables, as
# `mockfgt check` sets them:
#
#   mockfgt check -- sh examples/curl/agent.sh
#
# It prints what it did on stderr and its verdict as the last line of stdout. With no JSON parser at
# hand it leaves out what needs one (rewriting an admin's trusted hosts) and says so with "skip:".
set -u

work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT
jar="$work/cookies"
: > "$jar"

verdict() { echo "$1"; exit 0; }

# curl's exit code (man curl, EXIT CODES), refined by its message: a reset during the handshake is
# still a connection failure, and a TLS alert while reading (TLS 1.3 sends "certificate required"
# after the handshake) is a TLS failure.
from_curl() {
    case "$1:$(cat "$work/err")" in
        *"reset by peer"*|*"Connection reset"*) echo 202000 ;;
        56:*alert*|56:*SSL*) echo 202003 ;;
        6:*|7:*|52:*|55:*|56:*) echo 202000 ;;   # no such host, refused, empty reply, send/receive failed
        28:*) echo 202004 ;;                      # timed out
        35:*|51:*|53:*|54:*|58:*|59:*|60:*|64:*|66:*|77:*|80:*|82:*|83:*|90:*|91:*) echo 202003 ;;
        *) echo 202000 ;;
    esac
}

# send METHOD PATH [curl options...]: sets $status and $body; reports and exits on a transport failure.
send() {
    method=$1 path=$2; shift 2
    if [ "${MOCKFGT_INSECURE:-false}" = true ]; then set -- --insecure "$@"
    elif [ -n "${MOCKFGT_CA:-}" ]; then set -- --cacert "$MOCKFGT_CA" "$@"
    fi
    if [ -n "${MOCKFGT_CERT:-}" ]; then set -- --cert "$MOCKFGT_CERT" --key "$MOCKFGT_KEY" "$@"; fi
    status=$(curl -s -S --max-time "${MOCKFGT_TIMEOUT:-10}" -X "$method" -o "$work/body" -w '%{http_code}' \
                  -b "$jar" -c "$jar" "$@" "$MOCKFGT_URL$path" 2> "$work/err")
    rc=$?
    body=$(cat "$work/body" 2>/dev/null)
    echo "$method ${path%%\?*} -> ${status:-nothing} (curl $rc)" >&2
    if [ "$rc" -ne 0 ]; then cat "$work/err" >&2; verdict "$(from_curl "$rc")"; fi
}

by_status() {
    case "$status" in
        401|429) verdict 202001 ;;
        403) verdict 202002 ;;
    esac
}

# -- FortiGate ---------------------------------------------------------------------------------------
fortigate() {
    auth_header="" query="" csrf=""
    case "$MOCKFGT_AUTH" in
        token)
            if [ "$MOCKFGT_TOKEN_IN" = query ]; then query="access_token=$MOCKFGT_TOKEN"
            else auth_header="Authorization: Bearer $MOCKFGT_TOKEN"; fi ;;
        session) auth_header="Authorization: Bearer $MOCKFGT_SESSION" ;;
        password) fortigate_login ;;
    esac
    [ -n "$MOCKFGT_VDOM" ] && query="${query:+$query&}vdom=$MOCKFGT_VDOM"
    q=${query:+?$query}
    api GET /api/v2/monitor/system/status; by_status
    api GET /api/v2/cmdb/firewall/address; by_status
    if [ "$MOCKFGT_WRITE" = true ]; then
        name="agent-probe-$$"
        api POST /api/v2/cmdb/firewall/address -H 'Content-Type: application/json' \
            --data "{\"name\": \"$name\", \"subnet\": \"192.0.2.1/32\"}"; by_status
        api DELETE "/api/v2/cmdb/firewall/address/$name"; by_status
    fi
    verdict ok
}

api() {
    m=$1 p=$2; shift 2
    if [ -n "$csrf" ] && [ "$MOCKFGT_CSRF" = true ] && [ "$m" != GET ]; then set -- -H "X-CSRFTOKEN: $csrf" "$@"; fi
    if [ -n "$auth_header" ]; then set -- -H "$auth_header" "$@"; fi
    send "$m" "$p$q" "$@"
}

fortigate_login() {
    if [ "$MOCKFGT_LOGIN" = authentication ]; then
        send POST /api/v2/authentication -H 'Content-Type: application/json' --data \
            "{\"username\": \"$MOCKFGT_USER\", \"secretkey\": \"$MOCKFGT_PASSWORD\", \"password\": \"$MOCKFGT_PASSWORD\", \"request_key\": true, \"ack_pre_disclaimer\": true, \"ack_post_disclaimer\": $MOCKFGT_ACCEPT_BANNER}"
        if [ "$status" != 401 ] && [ "$status" != 404 ]; then  # 401/404: no such API before 6.4.2
            by_status
            key=$(printf '%s' "$body" | tr -d '\n' | sed -n 's/.*"session_key"[^"]*"\([^"]*\)".*/\1/p')
            case "$body" in *LOGIN_SUCCESS*) ;; *) key="" ;; esac
            [ -n "$key" ] || verdict 202001
            auth_header="Authorization: Bearer $key"
            return
        fi
    fi
    send POST /logincheck --data-urlencode "username=$MOCKFGT_USER" --data-urlencode "secretkey=$MOCKFGT_PASSWORD" --data ajax=1
    by_status
    case "$status:$body" in 2??:1*) ;; *) verdict 202001 ;; esac
    # The CSRF cookie: ccsrftoken before 7.0, ccsrftoken_<port>[_<suffix>] after.
    csrf=$(awk '$6 ~ /^(ccsrftoken|ccsrf_token_)/ && $7 != "0%260" {gsub(/"/, "", $7); print $7}' "$jar" | tail -n 1)
    if [ "$MOCKFGT_ACCEPT_BANNER" = true ]; then send POST /logindisclaimer --data confirm=1; fi
}

# -- FortiManager --------------------------------------------------------------------------------------
fortimanager() {
    [ -z "$MOCKFGT_TRUSTHOST_USER" ] || verdict "skip: rewriting trusted hosts needs a JSON parser"
    rpc_headers=""; rpc_query=""; session=""; verified=false
    case "$MOCKFGT_AUTH" in
        token)
            if [ "$MOCKFGT_TOKEN_IN" = query ]; then rpc_query="?access_token=$MOCKFGT_TOKEN"
            else rpc_headers="Authorization: Bearer $MOCKFGT_TOKEN"; fi ;;
        session) session=$MOCKFGT_SESSION ;;
        password)
            rpc login exec /sys/login/user ", \"data\": {\"user\": \"$MOCKFGT_USER\", \"passwd\": \"$MOCKFGT_PASSWORD\"}"
            session=$(printf '%s' "$body" | tr -d '\n' | sed -n 's/.*"session" *: *"\([^"]*\)".*/\1/p') ;;
    esac
    adom=${MOCKFGT_ADOM:-root}
    rpc status get /sys/status; verified=true
    rpc mode get /cli/global/system/global ', "fields": ["workspace-mode"]'
    workspace=false
    case "$(printf '%s' "$body" | tr -d ' \n')" in *'"workspace-mode":"disabled"'*|*'"workspace-mode":0'*) ;; *'"workspace-mode"'*) workspace=true ;; esac
    address="/pm/config/adom/$adom/obj/firewall/address"
    rpc read get "$address"
    if [ "$MOCKFGT_WRITE" = true ]; then
        name="agent-probe-$$"
        locking=false; [ "$workspace" = true ] && [ "$MOCKFGT_WORKSPACE_LOCK" = true ] && locking=true
        [ "$locking" = true ] && rpc lock exec "/dvmdb/adom/$adom/workspace/lock"
        rpc write add "$address" ", \"data\": {\"name\": \"$name\", \"subnet\": [\"192.0.2.1\", \"255.255.255.255\"]}"
        rpc cleanup delete "$address/$name"
        if [ "$locking" = true ]; then
            rpc commit exec "/dvmdb/adom/$adom/workspace/commit"
            rpc unlock exec "/dvmdb/adom/$adom/workspace/unlock"
        fi
    fi
    [ "$MOCKFGT_AUTH" = password ] && rpc_quiet exec /sys/logout
    verdict ok
}

# rpc ROLE METHOD URL [EXTRA-PARAMS-JSON]: one JSON-RPC call, judged; a failure reports and exits.
rpc() {
    role=$1 rmethod=$2 url=$3 extra=${4:-}
    rpc_quiet "$rmethod" "$url" "$extra"
    by_status
    code=$(printf '%s' "$body" | tr -d '\n' | sed -n 's/.*"code" *: *\(-\{0,1\}[0-9]*\).*/\1/p' | head -n 1)
    case "${code:-0}" in
        0) return ;;
        -22) verdict 202001 ;;
        -10147|-20055) verdict 202002 ;;
        -11)
            # The same -11 is a refused credential on /sys/status (open to every admin) and a missing
            # permission once the credential worked, unless /sys/status refuses it now too.
            if [ "$role" = login ]; then verdict 202002; fi
            if [ "$verified" = true ]; then
                rpc_quiet get /sys/status
                case "$(printf '%s' "$body" | tr -d ' \n')" in *'"code":-11'*) verdict 202001 ;; esac
                verdict 202002
            fi
            if [ "$rmethod" = get ]; then verdict 202001; fi
            verdict 202002 ;;
        *) return ;;  # -2, -3, -6...: the device took the credential
    esac
}

rpc_quiet() {
    rmethod=$1 url=$2 extra=${3:-}
    data="{\"id\": 1, \"method\": \"$rmethod\", \"params\": [{\"url\": \"$url\"$extra}]${session:+, \"session\": \"$session\"}}"
    if [ -n "$rpc_headers" ]; then
        send POST "/jsonrpc$rpc_query" -H "$rpc_headers" -H 'Content-Type: application/json' --data "$data"
    else
        send POST "/jsonrpc$rpc_query" -H 'Content-Type: application/json' --data "$data"
    fi
}

if [ "$MOCKFGT_KIND" = fortimanager ]; then fortimanager; else fortigate; fi

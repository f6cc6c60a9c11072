#!/usr/bin/env bash
# Smoke test with the real grpcurl (1.8.6 speaks reflection v1alpha only): start
# `pronet up --demo` on free ports, list and describe over reflection, check health, and make
# a GetFeed call that must return items. Stops the suite with SIGTERM and expects a clean exit.
set -euo pipefail
bin=${1:?usage: smoke-grpcurl.sh PATH_TO_PRONET}
work=$(mktemp -d)
log="$work/up.log"
# Four consecutive ports below the kernel's ephemeral range (32768+ here), so no outgoing
# connection can hold one; checked free first, and the start is retried on a lost bind race.
free4() {
  python3 - <<'PY'
import random, socket
while True:
    base = random.randrange(12000, 30000)
    socks = []
    try:
        for p in range(base, base + 4):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); break
PY
}
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
for attempt in 1 2 3 4 5; do
  base=$(free4)
  profile=127.0.0.1:$base post=127.0.0.1:$((base + 1))
  engagement=127.0.0.1:$((base + 2)) feed=127.0.0.1:$((base + 3))
  rm -rf "$work/data"
  "$bin" up --demo --data-dir "$work/data" \
    --profile-listen "$profile" --post-listen "$post" \
    --engagement-listen "$engagement" --feed-listen "$feed" >"$log" 2>"$work/up.err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "pronet is ready" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  grep -q "pronet is ready" "$log" && break
  if ! kill -0 "$pid" 2>/dev/null && grep -q "binding the" "$work/up.err" && [ "$attempt" -lt 5 ]; then
    echo "port $base was taken meanwhile; trying other ports"
    continue
  fi
  kill -0 "$pid" 2>/dev/null || { echo "pronet up died"; cat "$log" "$work/up.err"; exit 1; }
  break
done
grep -q "pronet is ready" "$log" || { echo "pronet up not ready in 300s"; tail -20 "$work/up.err"; exit 1; }
cat "$log"
member=$(sed -n 's/^try member @[^ ]* (member_id \([0-9a-f]*\)).*/\1/p' "$log")
[ -n "$member" ] || { echo "no demo member printed"; exit 1; }

fail() { echo "smoke: $*"; exit 1; }
services=$(grpcurl -plaintext "$feed" list)
echo "$services"
for s in pronet.feed.v1.FeedService grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection; do
  grep -qx "$s" <<<"$services" || fail "feed server does not list $s"
done
for addr_svc in "$profile pronet.profile.v1.ProfileService" "$post pronet.post.v1.PostService" \
                "$engagement pronet.engagement.v1.EngagementService"; do
  set -- $addr_svc
  grpcurl -plaintext "$1" list | grep -qx "$2" || fail "$1 does not list $2"
  grpcurl -plaintext -d "{\"service\":\"$2\"}" "$1" grpc.health.v1.Health/Check | grep -q SERVING \
    || fail "$2 is not SERVING"
done
grpcurl -plaintext "$feed" describe pronet.feed.v1.FeedService | grep -q "rpc GetFeed" \
  || fail "describe FeedService"
grpcurl -plaintext "$feed" describe pronet.feed.v1.GetFeedResponse >/dev/null \
  || fail "describe GetFeedResponse"
grpcurl -plaintext "$profile" describe pronet.profile.v1.UpdateProfileRequest | grep -q FieldMask \
  || fail "describe a message with a well-known type"

token=$("$bin" token --data-dir "$work/data" --member-id "$member")
denied=$(grpcurl -plaintext -d "{\"member_id\":\"$member\"}" "$feed" \
  pronet.feed.v1.FeedService/GetFeed 2>&1 || true)
grep -q "Unauthenticated" <<<"$denied" || { echo "$denied"; fail "GetFeed without a token was not UNAUTHENTICATED"; }
resp=$(grpcurl -plaintext -H "authorization: Bearer $token" \
  -d "{\"member_id\":\"$member\",\"page_size\":5}" "$feed" pronet.feed.v1.FeedService/GetFeed)
items=$(grep -c '"post": {' <<<"$resp" || true)
echo "GetFeed returned $items items; first reasons:"
grep -m3 '"text": ".*\(posted\|reacted\|commented\|shared\|follow\)' <<<"$resp" || true
[ "$items" -ge 1 ] || { echo "$resp"; fail "GetFeed returned no items"; }

bad=$(grpcurl -plaintext -H "authorization: Bearer $token" -d '{"member_id":"","page_size":-1}' \
  "$feed" pronet.feed.v1.FeedService/GetFeed 2>&1 || true)
grep -q "InvalidArgument" <<<"$bad" || { echo "$bad"; fail "bad input was not INVALID_ARGUMENT"; }
grep -q '"fieldViolations"' <<<"$bad" || { echo "$bad"; fail "grpcurl could not decode the BadRequest"; }

kill -TERM "$pid"
wait "$pid" || fail "pronet up did not exit cleanly on SIGTERM"
trap 'rm -rf "$work"' EXIT
echo "smoke test passed"

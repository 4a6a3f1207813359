#!/usr/bin/env bash
# The test command. On a Debian machine it installs the packages the tests
# drive when they are missing, checks that go.mod, go.sum and the code are
# tidy, formatted and vetted, and runs every test of the servers' module and
# of bench's module with the race detector. CI is set, so a test whose tool,
# privilege or platform is missing fails instead of skipping, and a test that
# skips all the same fails the run.
#
# It runs as root (and asks sudo when started by another user): besides
# apt-get, the tests make network namespaces (the system-resolver test), open
# raw sockets (the spoofing test) and bind port 53.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
	why="the tests need root (network namespaces, raw sockets, port 53, apt-get)"
	if ! command -v sudo >/dev/null; then
		echo "test.sh: $why: run it as root" >&2
		exit 1
	fi
	echo "test.sh: $why: running under sudo" >&2
	# Go's own settings go along; the caches stay root's, so none of the
	# user's files become root's.
	keep=("PATH=$PATH")
	for v in GOPROXY GOFLAGS GOTOOLCHAIN GOPRIVATE GONOSUMDB; do
		[ -z "${!v:-}" ] || keep+=("$v=${!v}")
	done
	exec sudo env "${keep[@]}" bash "$PWD/test.sh" "$@"
fi

export CI=true
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

# Debian packages the tests drive: Redis shards (redis-cli builds the test
# Redis Cluster), nsd as the authoritative server, dig and kdig as clients,
# dnsperf for floods, curl for the REST API, headless chromium for the status
# page, ip and getent for the system-resolver test in a network namespace,
# systemd-analyze for the unit files; gcc and the C library's headers for
# the race detector (cgo), CA certificates to fetch Go modules, ldns-keygen
# and ldns-signzone to sign zones for the DNSSEC validator.
pkgs=(redis-server redis-tools nsd bind9-dnsutils knot-dnsutils dnsperf curl
	chromium fonts-liberation iproute2 libc-bin systemd gcc libc6-dev ca-certificates
	ldnsutils)
# Without Go, Debian's: from Go 1.21 on it fetches the release go.mod names.
command -v go >/dev/null || pkgs+=(golang-go)
if command -v dpkg-query >/dev/null; then
	missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if ((${#missing[@]})); then
		echo "== apt-get install ${missing[*]}"
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
else
	echo "test.sh: not a Debian system: install ${pkgs[*]} (or their equivalents) yourself" >&2
fi
if ! go version >/dev/null; then
	echo "test.sh: go cannot build this module; Go 1.21 or later fetches the release go.mod names (https://go.dev/doc/install)" >&2
	exit 1
fi

modules=(. bench)

echo "== gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"
	echo "$unformatted"
	exit 1
fi
for m in "${modules[@]}"; do
	echo "== go mod tidy -diff, go vet ($m)"
	(cd "$m" && go mod tidy -diff && go vet ./...)
done
logs="$(mktemp -d /tmp/shardns-test.XXXXXX)"

# gotest DIR LOG ARGS... runs go test -v ARGS in DIR with its whole output
# in LOG. The terminal gets each package's result and every skip as they
# come, and a failed package's whole output at the end.
gotest() {
	local dir=$1 log=$2 rc
	shift 2
	set +e
	(cd "$dir" && go test -v "$@" 2>&1) | tee "$log" | grep --line-buffered -E '^(ok|FAIL)[[:space:]]|^[[:space:]]*--- SKIP'
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" -ne 0 ]; then
		# go test prints each package's output in one piece, ending in its
		# ok or FAIL line.
		awk '/^(ok|FAIL|\?)[ \t]/ { if ($1 == "FAIL") printf "%s%s\n", buf, $0; buf = ""; next } { buf = buf $0 "\n" }' "$log"
		echo "test.sh: tests failed; every test's output: $log" >&2
		exit "$rc"
	fi
}

for m in "${modules[@]}"; do
	echo "== go test -race ($m)"
	gotest "$m" "$logs/race-${m/#./root}.log" -race -count=1 ./...
done

# Allocation counts mean nothing under the race detector, so the tests that
# assert them (in packages declaring raceEnabled, false without -race) run
# again without it.
mapfile -t alloc < <(grep -rlE --include='*_test.go' --exclude-dir=bench '^const raceEnabled = false' . | xargs -r -n1 dirname | sort -u)
echo "== go test without -race: ${alloc[*]}"
gotest . "$logs/norace.log" -count=1 "${alloc[@]}"

# No test may skip: one skipped under -race must pass without it.
names() { sed -nE "s/^[[:space:]]*--- $1: ([^ ]+) .*/\1/p" "${@:2}" | sort -u; }
skipped="$(comm -23 <(names SKIP "$logs"/race-*.log) <(names PASS "$logs/norace.log"))"
if [ -n "$skipped" ]; then
	echo "test.sh: tests skipped (each with its first line of output, which says why):" >&2
	while read -r n; do
		grep -hxF -A1 -- "=== RUN   $n" "$logs"/race-*.log >&2
	done <<<"$skipped"
	exit 1
fi
rm -rf "$logs"
echo "== every test passed, none skipped"

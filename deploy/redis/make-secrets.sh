#!/bin/sh
# Makes the fleet's secrets on the first `docker compose up`, into the
# "secrets" volume that the Redis services and the shardns daemons mount:
#
#   redis-password  the password of the Redis user "shardns"
#   users.acl       the Redis ACL: the default user off, "shardns" on
#   api-token       the bearer token of cacheapi's state-changing calls
#
# Existing files are kept, so the secrets survive `docker compose down`
# (not `down -v`). Read the token with:
#   docker compose run --rm secrets cat /secrets/api-token
set -eu
dir=${1:-/secrets}
umask 077

# random prints 32 bytes from the kernel's CSPRNG as 64 hex digits.
random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# keep NAME VALUE writes VALUE to NAME unless NAME already holds something.
keep() {
	[ -s "$dir/$1" ] && return 0
	printf '%s\n' "$2" >"$dir/$1.tmp"
	mv "$dir/$1.tmp" "$dir/$1"
}

keep redis-password "$(random)"
keep api-token "$(random)"
password=$(cat "$dir/redis-password")
printf 'user default off\nuser shardns on >%s ~* &* +@all\n' "$password" >"$dir/users.acl.tmp"
mv "$dir/users.acl.tmp" "$dir/users.acl"

# The Redis containers run as the redis user (999), the shardns ones as
# 65532: the volume is mounted read-only into those services alone.
chmod 0444 "$dir/redis-password" "$dir/api-token" "$dir/users.acl"

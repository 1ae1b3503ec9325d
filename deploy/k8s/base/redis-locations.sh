#!/bin/sh
# Starts one pod of the location cache's Redis (redis-locations.yaml):
#   redis-locations.sh redis      a Redis: the replica of the set's primary, or the primary
#                                 itself when the set has none yet (its first start)
#   redis-locations.sh sentinel   a Redis Sentinel watching that primary
# The configuration is written at every start into $DATA_DIR (an emptyDir: nothing persists),
# from the environment:
#   ANNOUNCE_HOST    this pod's stable name, <pod>.<headless Service>, by which the others
#                    reach it (pod addresses change when a pod is replaced; names do not)
#   REDIS_HOSTS      the Redis pods' names, the set's first primary first
#   SENTINEL_HOSTS   the sentinels' names
#   PRIMARY_NAME     the name the sentinels monitor the primary under (in GEO_REDIS_URL)
#   MAXMEMORY        the Redis pods' maxmemory, below the container's memory limit
#   REDIS_PASSWORD   the Secret geo-redis: the login of every Redis of the set
# and REDIS_PORT, SENTINEL_PORT, BIND, DATA_DIR, DOWN_AFTER_MS (6379, 26379, every interface,
# /data, 2000: how long a silent primary is left before the sentinels vote).
set -eu

data=${DATA_DIR:-/data}
redis_port=${REDIS_PORT:-6379}
sentinel_port=${SENTINEL_PORT:-26379}
bind=${BIND:-* -::*}
first=${REDIS_HOSTS%% *}

# The primary as the sentinels know it ("host port"), else the Redis that says it is one,
# else nothing: the set is starting for the first time. The sentinels are asked without a
# login (they have none); the Redis pods with the password, through the environment rather
# than redis-cli's command line.
find_primary() {
    for host in $SENTINEL_HOSTS; do
        [ "$host" = "$ANNOUNCE_HOST" ] && continue
        reply=$(timeout 3 redis-cli --raw -h "$host" -p "$sentinel_port" \
            sentinel get-master-addr-by-name "$PRIMARY_NAME" 2>/dev/null) || continue
        # shellcheck disable=SC2086 # two words: host and port
        set -- $reply
        if [ $# -eq 2 ]; then
            echo "$1 $2"
            return
        fi
    done
    for host in $REDIS_HOSTS; do
        [ "$host" = "$ANNOUNCE_HOST" ] && continue
        role=$(REDISCLI_AUTH=$REDIS_PASSWORD timeout 3 redis-cli --raw -h "$host" -p "$redis_port" \
            role 2>/dev/null | head -n 1) || continue
        if [ "$role" = master ]; then
            echo "$host $redis_port"
            return
        fi
    done
}

redis() {
    # shellcheck disable=SC2046 # two words, or none
    set -- $(find_primary)
    if [ $# -eq 0 ] && [ "$ANNOUNCE_HOST" != "$first" ]; then
        set -- "$first" "$redis_port"
    fi
    umask 077
    {
        echo "port $redis_port"
        echo "bind $bind"
        echo "dir $data"
        echo "requirepass $REDIS_PASSWORD"
        echo "masterauth $REDIS_PASSWORD"
        echo "replica-announce-ip $ANNOUNCE_HOST"
        # Every key has a TTL (GEO_LOCATION_TTL_S), which bounds the memory; a full Redis
        # refuses writes (clients see `unavailable`) rather than drop a live position.
        echo "maxmemory $MAXMEMORY"
        echo "maxmemory-policy noeviction"
        echo 'save ""'
        echo "appendonly no"
        # A pod the sentinels still name as primary (restarted before they noticed) starts as
        # the primary, empty: the next updates write the positions again.
        if [ $# -eq 2 ] && [ "$1" != "$ANNOUNCE_HOST" ]; then
            echo "replicaof $1 $2"
        fi
    } >"$data/redis.conf"
    exec redis-server "$data/redis.conf"
}

sentinel() {
    # shellcheck disable=SC2046 # two words, or none
    set -- $(find_primary)
    if [ $# -eq 0 ]; then
        set -- "$first" "$redis_port"
    fi
    umask 077
    {
        echo "port $sentinel_port"
        echo "bind $bind"
        echo "dir $data"
        echo "sentinel resolve-hostnames yes"
        echo "sentinel announce-hostnames yes"
        echo "sentinel announce-ip $ANNOUNCE_HOST"
        echo "sentinel monitor $PRIMARY_NAME $1 $2 2"
        echo "sentinel auth-pass $PRIMARY_NAME $REDIS_PASSWORD"
        echo "sentinel down-after-milliseconds $PRIMARY_NAME ${DOWN_AFTER_MS:-2000}"
        echo "sentinel failover-timeout $PRIMARY_NAME ${FAILOVER_TIMEOUT_MS:-10000}"
        echo "sentinel parallel-syncs $PRIMARY_NAME 1"
    } >"$data/sentinel.conf"
    # Sentinel rewrites its file as the set changes: a copy of its own, on the emptyDir.
    exec redis-server "$data/sentinel.conf" --sentinel
}

case ${1:-} in
    redis) redis ;;
    sentinel) sentinel ;;
    *)
        echo "usage: $0 redis|sentinel" >&2
        exit 2
        ;;
esac

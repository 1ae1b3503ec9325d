#!/bin/sh
# The streaming replica: cloned from the primary on its first start (pg_basebackup -R writes
# standby.signal and primary_conninfo), then run as a hot standby. Runs as postgres.
set -eu
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup --host=pg-primary --username=replicator --pgdata="$PGDATA" \
        --wal-method=stream --write-recovery-conf --checkpoint=fast; do
        echo "replica: waiting for the primary"
        rm -rf "${PGDATA:?}"/*
        sleep 2
    done
    chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on

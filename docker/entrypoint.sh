#!/bin/sh
# Sidecar entrypoint: serve the repository at $ARGONFS_MOUNTPOINT in the foreground.
# The ready file appears once the mount answers (a readiness probe checks it) and is
# removed at unmount; SIGTERM (pod shutdown) finishes requests in flight and unmounts.
set -eu
: "${ARGONFS_MOUNTPOINT:=/mnt/argon}"
: "${ARGONFS_READY_FILE:=/tmp/argonfs.ready}"
mkdir -p "$ARGONFS_MOUNTPOINT"
# -o allow_other lets the application container's user read the files.
exec argonfs mount --foreground --ready-file "$ARGONFS_READY_FILE" ${ARGONFS_MOUNT_OPTIONS:+-o "$ARGONFS_MOUNT_OPTIONS"} "$@" "$ARGONFS_MOUNTPOINT"

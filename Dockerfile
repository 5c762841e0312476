# argonfs as a sidecar: mounts a repository for the other containers of a pod.
# Build: docker build -t argonfs .    Kubernetes example: docs/sidecar.md
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 libfuse3-dev pkg-config gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY argonfs ./argonfs
# the console extra: `argonfs serve` beside the mount (docs/console.md, "As a sidecar beside the mount")
RUN pip install --no-cache-dir '.[console]' \
 && apt-get purge -y gcc libc6-dev pkg-config && apt-get autoremove -y

COPY docker/entrypoint.sh /usr/local/bin/argonfs-sidecar
# Set ARGONFS_MONGO_URI (and ARGONFS_REPO) in the pod spec; without a URI the embedded
# server keeps its data in the container, which only suits a demo.
ENV ARGONFS_MOUNTPOINT=/mnt/argon \
    ARGONFS_READY_FILE=/tmp/argonfs.ready \
    ARGONFS_MOUNT_OPTIONS=allow_other \
    ARGONFS_HOME=/var/lib/argonfs
STOPSIGNAL SIGTERM
ENTRYPOINT ["argonfs-sidecar"]

# syntax=docker/dockerfile:1
# The mongorelay image: the static binary of `make release` on distroless, as a non-root user.
# Build the binaries first, then the image for one or both architectures:
#   make release
#   docker buildx build --platform linux/amd64,linux/arm64 -t mongorelay:latest .
# Checked offline by deploy/check (BuildKit's own parser), as part of make test.

# layout makes the data directory owned by the non-root user: distroless has no shell to do it.
FROM busybox:1.37 AS layout
RUN mkdir -p /var/lib/mongorelay && chown 65532:65532 /var/lib/mongorelay

FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETARCH
LABEL org.opencontainers.image.title="mongorelay" \
      org.opencontainers.image.description="MongoDB change streams to Kafka as Avro records, with a Kafka Connect-compatible REST API" \
      org.opencontainers.image.source="https://github.com/mongorelay/mongorelay"
COPY --from=layout --chown=65532:65532 /var/lib/mongorelay /var/lib/mongorelay
COPY --chmod=0755 dist/mongorelay-linux-${TARGETARCH} /usr/local/bin/mongorelay
ENV MONGORELAY_DATA_DIR=/var/lib/mongorelay
VOLUME ["/var/lib/mongorelay"]
# 8083: REST API (Kafka Connect's port); 8081: schema registry; 8300: Raft between nodes.
EXPOSE 8083 8081 8300
USER 65532:65532
# The node's own GET /health on loopback, over HTTPS when MONGORELAY_HTTP_TLS_CERT is set;
# distroless has no curl, so the binary asks itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/mongorelay", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mongorelay"]
CMD ["worker"]

# goaiot: one static binary with the dashboard embedded.
# docker build -t goaiot . && docker run -p 8080:8080 -p 5683:5683/udp -p 1885:1885/udp -p 1883:1883 goaiot

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# the built dashboard (webapp/dist/app) is committed and embedded: no Node stage
COPY . .
# goaiot's version (semantic: micro services announce it), see internal/version
ARG VERSION=0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/goaiot/goaiot/internal/version.Version=${VERSION}" -o /out/aiot ./cmd/aiot

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/aiot /aiot
VOLUME /data
EXPOSE 8080 4222 1883 5683/udp 1885/udp 7422
# NATS is published on 4222, so clients sign in: keys are made in the data
# volume on first start (or mount your own auth.json and seeds there); the
# log line "nats keys generated" says where. Get one out with
#   docker cp CONTAINER:/data/keys/viewer.nk .
ENV AIOT_DATA=/data AIOT_NATS_LISTEN=0.0.0.0:4222 AIOT_AUTH_DIR=/data/keys
# New goroutines start with 2 KiB of stack instead of the process's average
# (Go's adaptive start): about 2 KB less per idle browser and 1 KB less per
# idle websocket node, no throughput cost measured (BENCHMARKS.md).
ENV GODEBUG=adaptivestackstart=0
ENTRYPOINT ["/aiot"]
CMD ["run"]

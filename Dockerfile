# syntax=docker/dockerfile:1
# Build: docker build -t tailguard .
# The final image holds the static binary only and runs as a non-root user.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/tailguard .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tailguard /tailguard
# 8000: proxy. 9901: admin (bind it with admin: ":9901" or -admin :9901 so
# that kubelet probes can reach it; the default is loopback only).
EXPOSE 8000 9901
USER 65532:65532
ENTRYPOINT ["/tailguard"]
CMD ["run", "-config", "/etc/tailguard/tailguard.yaml"]

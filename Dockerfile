# The agent image for hosts with Docker or BuildKit. Without a Docker engine,
# "make image" builds an equivalent image (same user, entrypoint and command)
# from scratch.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t kubechat .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v1.2.3 -t REPO/kubechat:v1.2.3 --push .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
# Set by BuildKit from --platform; a default here would override it. Empty
# (the classic builder) means the builder's own platform.
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=devel
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X github.com/kubechat/kubechat/internal/buildinfo.Version=$VERSION" \
	-o /out/kubechat ./cmd/kubechat

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), a writable /tmp, and no shell.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kubechat /kubechat
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/kubechat"]
CMD ["run"]
